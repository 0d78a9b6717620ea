package router

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	// time formats a time (or an RFC 3339 string) with a Go layout or one
	// of the names RFC3339, RFC1123, Kitchen, DateTime:
	// {{ time "DateTime" .time }}.
	"time": func(layout string, v any) (string, error) {
		var t time.Time
		switch x := v.(type) {
		case time.Time:
			t = x
		case string:
			var err error
			if t, err = time.Parse(time.RFC3339Nano, x); err != nil {
				return "", fmt.Errorf("time: %q is not an RFC 3339 time", x)
			}
		case int:
			// Provider epochs: milliseconds when too large for seconds.
			if x > 1e11 {
				t = time.UnixMilli(int64(x))
			} else {
				t = time.Unix(int64(x), 0)
			}
		default:
			return "", fmt.Errorf("time: cannot format %T", v)
		}
		switch layout {
		case "RFC3339":
			layout = time.RFC3339
		case "RFC1123":
			layout = time.RFC1123
		case "Kitchen":
			layout = time.Kitchen
		case "DateTime":
			layout = time.DateTime
		}
		return t.UTC().Format(layout), nil
	},
}

// ParseTemplate parses text once, at load. Referencing a missing field
// renders "<no value>" only for maps' absent keys, never an error; a call
// that fails (json of a channel) is an execution error.
func ParseTemplate(name, text string) (*Template, error) {
	t, err := template.New(name).Option("missingkey=zero").Funcs(TemplateFuncs).Parse(text)
	if err != nil {
		return nil, err
	}
	return &Template{t: t}, nil
}

// Execute renders the template for e.
func (t *Template) Execute(e *Event) ([]byte, error) {
	var buf bytes.Buffer
	if err := t.t.Execute(&buf, TemplateData(e)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// TemplateData is the data a template sees for e.
func TemplateData(e *Event) map[string]any {
	m := make(map[string]any, len(e.Payload)+8)
	for k, v := range e.Payload {
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
	m["payload"] = e.Payload
	m["headers"] = e.Headers
	return m
}
