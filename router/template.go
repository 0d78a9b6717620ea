package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Template is a parsed Go text/template over a normalized event. The data
// is the event's fields (.id, .source, .event, .status, .time,
// .received_at, .payload, .headers) with every payload field also at top
// level unless it collides with one of those.
type Template struct {
	t *template.Template
}

// TemplateFuncs are the helpers every template has.
var TemplateFuncs = template.FuncMap{
	// json renders a value as JSON: {{ json .payload }}.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	// default returns def when v is empty: {{ default "unknown" .status }}.
	"default": func(def, v any) any {
		if v == nil || v == "" {
			return def
		}
		return v
	},
	"upper": func(v any) string { return strings.ToUpper(String(v)) },
	"lower": func(v any) string { return strings.ToLower(String(v)) },
	// trunc cuts v to n characters, marking the cut with "…".
	"trunc": func(n int, v any) string {
		s := []rune(String(v))
		if n < 0 || len(s) <= n {
			return string(s)
		}
		if n == 0 {
			return ""
		}
		return string(s[:n-1]) + "…"
	},
	// time formats a time with a Go layout or one of the names RFC3339,
	// RFC1123, Kitchen, DateTime, or Unix (epoch seconds, for Slack's
	// <!date^…> tokens): {{ time "DateTime" .time }}. It reads the times
	// providers send: time values, RFC 3339 strings, "2006-01-02 15:04:05"
	// strings (UTC, as MOBtexting writes them), and epoch seconds or
	// milliseconds as numbers or strings of digits (TeleCMI, form bodies).
	// Output is always in UTC.
	"time": func(layout string, v any) (string, error) {
		t, err := asTime(v)
		if err != nil {
			return "", err
		}
		t = t.UTC()
		switch layout {
		case "RFC3339":
			layout = time.RFC3339
		case "RFC1123":
			layout = time.RFC1123
		case "Kitchen":
			layout = time.Kitchen
		case "DateTime":
			layout = time.DateTime
		case "Unix":
			return strconv.FormatInt(t.Unix(), 10), nil
		}
		return t.Format(layout), nil
	},
}

// asTime reads a template value as a time (see the time helper).
func asTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		s := strings.TrimSpace(x)
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
		if t, err := time.ParseInLocation(time.DateTime, s, time.UTC); err == nil {
			return t, nil
		}
		if s != "" && len(s) <= 16 && strings.Trim(s, "0123456789") == "" {
			n, _ := strconv.ParseInt(s, 10, 64)
			return epoch(n), nil
		}
		return time.Time{}, fmt.Errorf("time: %q is not an RFC 3339 time", x)
	case int:
		return epoch(int64(x)), nil
	case int64:
		return epoch(x), nil
	case float64:
		// Whole numbers too large for int arrive as float64.
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return epoch(int64(x)), nil
		}
	}
	return time.Time{}, fmt.Errorf("time: cannot format %T", v)
}

// epoch reads provider epochs: milliseconds when too large for seconds.
func epoch(n int64) time.Time {
	if n > 1e11 || n < -1e11 {
		return time.UnixMilli(n)
	}
	return time.Unix(n, 0)
}

// ParseTemplate parses text once, at load. A field the event lacks renders
// empty, never an error (use default for a placeholder); a helper that
// fails is an execution error. Values are printed as they are: for output
// that is a format of its own, see ParseTemplateFor.
func ParseTemplate(name, text string) (*Template, error) {
	return ParseTemplateFor(name, text, EscapeNone)
}

// ParseTemplateFor parses a template whose every printed value is escaped
// for where the output goes (see Escape): event content cannot turn into
// markup, only the template's own text can.
func ParseTemplateFor(name, text string, esc Escape) (*Template, error) {
	funcs := TemplateFuncs
	if esc != EscapeNone {
		funcs = escapeFuncs(esc)
	}
	t, err := template.New(name).Option("missingkey=zero").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, err
	}
	if esc != EscapeNone {
		for _, tt := range t.Templates() {
			if tt.Tree != nil {
				escapeActions(tt.Tree.Root)
			}
		}
	}
	return &Template{t: t}, nil
}

// Execute renders the template for e.
func (t *Template) Execute(e *Event) ([]byte, error) {
	var buf bytes.Buffer
	if err := t.t.Execute(&buf, TemplateData(e)); err != nil {
		return nil, err
	}
	// text/template prints a field the event lacks as "<no value>"; people
	// reading an alert are better served by nothing.
	return bytes.ReplaceAll(buf.Bytes(), []byte("<no value>"), nil), nil
}

// TemplateData is the data a template sees for e.
func TemplateData(e *Event) map[string]any {
	payload := e.Fields()
	m := make(map[string]any, len(payload)+8)
	for k, v := range payload {
		m[k] = v
	}
	tm := e.Time
	if tm.IsZero() {
		tm = e.ReceivedAt
	}
	m["id"] = e.ID
	m["source"] = e.Source
	m["event"] = e.Event
	m["status"] = e.Status
	m["time"] = tm
	m["received_at"] = e.ReceivedAt
	m["payload"] = payload
	m["headers"] = e.Headers
	return m
}
