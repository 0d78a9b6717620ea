package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"text/template"
	"text/template/parse"
)

// Escape says what a template's output is, and so how every value it
// prints is escaped.
type Escape int

const (
	// EscapeNone prints values as they are.
	EscapeNone Escape = iota
	// EscapeSlack is Slack mrkdwn text: &, < and > of every value become
	// &amp;, &lt; and &gt;, so that no event turns into a mention
	// (<!channel>, <@U123>) or a disguised link (<https://evil|click>).
	EscapeSlack
	// EscapeSlackJSON is a JSON document of Slack text (Block Kit blocks):
	// values are escaped for Slack and then as the inside of a JSON
	// string, so that a value placed in "..." can neither end the string
	// nor decode back to markup.
	EscapeSlackJSON
)

// Trusted is text a template author vouches for: the `trusted` and `link`
// helpers return it, and it is not escaped for Slack (in a JSON document
// it is still escaped as JSON).
type Trusted string

// jsonText is a complete JSON value whose strings are already escaped for
// Slack: what `json` returns in an escaping template.
type jsonText string

// escaperFunc is the function escapeActions adds at the end of every
// printing action; its name cannot clash with a helper.
const escaperFunc = "_escape"

// escapeFuncs are the helpers of a template that escapes for esc.
func escapeFuncs(esc Escape) template.FuncMap {
	funcs := maps.Clone(TemplateFuncs)
	// Helpers that transform text take Trusted values as the text they
	// hold; what they return is escaped like any other value.
	for _, name := range []string{"upper", "lower"} {
		f := TemplateFuncs[name].(func(any) string)
		funcs[name] = func(v any) string { return f(plainText(v)) }
	}
	trunc := TemplateFuncs["trunc"].(func(int, any) string)
	funcs["trunc"] = func(n int, v any) string { return trunc(n, plainText(v)) }
	// json escapes the strings inside for Slack before encoding: Slack
	// decodes JSON's \u003c back to <.
	funcs["json"] = func(v any) (jsonText, error) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(slackDeep(v)); err != nil {
			return "", err
		}
		return jsonText(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
	}
	// trusted prints a value without Slack escaping: {{ trusted .x }}, for
	// a value that is meant to hold markup.
	funcs["trusted"] = func(v any) Trusted { return Trusted(printed(v)) }
	// link makes a Slack link: {{ link "https://crm.example/calls" "open" }}.
	funcs["link"] = slackLink
	funcs[escaperFunc] = func(v any) string {
		switch x := v.(type) {
		case jsonText:
			return string(x)
		case Trusted:
			if esc == EscapeSlackJSON {
				return jsonInside(string(x))
			}
			return string(x)
		}
		s := SlackEscape(printed(v))
		if esc == EscapeSlackJSON {
			s = jsonInside(s)
		}
		return s
	}
	return funcs
}

// escapeActions adds the escaper at the end of every action that prints,
// as html/template does: {{ .from }} runs as {{ .from | _escape }}.
// Actions that only set a variable print nothing and are left alone.
func escapeActions(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			escapeActions(c)
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) == 0 {
			id := parse.NewIdentifier(escaperFunc).SetPos(n.Pos)
			n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pos, Args: []parse.Node{id}})
		}
	case *parse.IfNode:
		escapeActions(n.List)
		escapeActions(n.ElseList)
	case *parse.RangeNode:
		escapeActions(n.List)
		escapeActions(n.ElseList)
	case *parse.WithNode:
		escapeActions(n.List)
		escapeActions(n.ElseList)
	}
}

// plainText turns the escaper's own types back into strings.
func plainText(v any) any {
	switch x := v.(type) {
	case Trusted:
		return string(x)
	case jsonText:
		return string(x)
	}
	return v
}

// printed is a value as a template prints it, nothing for nil.
func printed(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case Trusted:
		return string(x)
	case jsonText:
		return string(x)
	}
	return fmt.Sprint(v)
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// SlackEscape escapes text for Slack mrkdwn: the three characters Slack
// reads as markup.
func SlackEscape(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	return slackEscaper.Replace(s)
}

// slackDeep copies a decoded JSON value with every string (keys too)
// escaped for Slack.
func slackDeep(v any) any {
	switch x := v.(type) {
	case string:
		return SlackEscape(x)
	case Trusted:
		return string(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[SlackEscape(k)] = slackDeep(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = slackDeep(e)
		}
		return out
	}
	return v
}

// jsonInside is s encoded as a JSON string, without the quotes.
func jsonInside(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return string(b[1 : len(b)-1])
}

// slackLink makes <url|label>. The URL must be http, https or mailto, or
// only the label is printed; characters that would end the URL (|, >) or
// start markup are escaped, and the label is escaped like any value.
func slackLink(target, label any) Trusted {
	u, l := printed(target), SlackEscape(printed(label))
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https" && p.Scheme != "mailto") {
		return Trusted(l)
	}
	u = strings.NewReplacer("&", "&amp;", "<", "%3C", ">", "%3E", "|", "%7C", " ", "%20", "\n", "%0A").Replace(u)
	if l == "" {
		return Trusted("<" + u + ">")
	}
	return Trusted("<" + u + "|" + l + ">")
}
