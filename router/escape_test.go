package router

import (
	"encoding/json"
	"strings"
	"testing"
)

func render(t *testing.T, esc Escape, text string, payload map[string]any) (string, error) {
	t.Helper()
	tmpl, err := ParseTemplateFor("t", text, esc)
	if err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	b, err := tmpl.Execute(&Event{ID: "e1", Source: "s", Event: "ev", Payload: payload})
	return string(b), err
}

func TestSlackEscapingReachesEveryPrintedValue(t *testing.T) {
	p := map[string]any{"v": "<!channel> & <@U1>", "list": []any{"<a>", "<b>"}, "n": 3, "m": map[string]any{"k": "<x>"}}
	tests := []struct{ text, want string }{
		{"{{ .v }}", "&lt;!channel&gt; &amp; &lt;@U1&gt;"},
		{"{{ if .v }}{{ .v }}{{ else }}no{{ end }}", "&lt;!channel&gt; &amp; &lt;@U1&gt;"},
		{"{{ with .missing }}{{ . }}{{ else }}{{ $.v }}{{ end }}", "&lt;!channel&gt; &amp; &lt;@U1&gt;"},
		{"{{ range .list }}[{{ . }}]{{ end }}", "[&lt;a&gt;][&lt;b&gt;]"},
		{`{{ define "p" }}<{{ . }}>{{ end }}{{ template "p" .v }}`, "<&lt;!channel&gt; &amp; &lt;@U1&gt;>"},
		{"{{ $x := .v }}{{ $x = printf \"%s!\" $x }}{{ $x }}", "&lt;!channel&gt; &amp; &lt;@U1&gt;!"},
		{"{{ .n }} {{ .missing }}|", "3 |"},
		{"{{ .m }}", "map[k:&lt;x&gt;]"},
		{"{{ json .m }}", `{"k":"&lt;x&gt;"}`},
		{"{{ json .list }}", `["&lt;a&gt;","&lt;b&gt;"]`},
		{"{{ trusted .v }}", "<!channel> & <@U1>"},
		{"{{ trusted .v | upper }}", "&lt;!CHANNEL&gt; &amp; &lt;@U1&gt;"},
		{`{{ link "https://x.example/a?b=1&c=2" .v }}`, "<https://x.example/a?b=1&amp;c=2|&lt;!channel&gt; &amp; &lt;@U1&gt;>"},
		{`{{ link "https://x.example/" "" }}`, "<https://x.example/>"},
		{`{{ link "ftp://x.example/" "label" }}`, "label"},
		{`{{ link (printf "https://x.example/%s" .v) "l" }}`, "<https://x.example/%3C!channel%3E%20&amp;%20%3C@U1%3E|l>"},
	}
	for _, tt := range tests {
		got, err := render(t, EscapeSlack, tt.text, p)
		if err != nil || got != tt.want {
			t.Errorf("%s:\n got %q (%v)\nwant %q", tt.text, got, err, tt.want)
		}
	}
}

func TestSlackJSONEscapingKeepsDocumentsValid(t *testing.T) {
	p := map[string]any{"v": `a"b\c <!here>` + "\n", "n": 42}
	tests := []struct{ text, want string }{
		{`{"t": "{{ .v }}"}`, `{"t": "a\"b\\c &lt;!here&gt;\n"}`},
		{`{"t": {{ json .v }}}`, `{"t": "a\"b\\c &lt;!here&gt;\n"}`},
		{`{"t": "{{ trusted .v }}"}`, `{"t": "a\"b\\c <!here>\n"}`},
		{`{"n": {{ .n }}}`, `{"n": 42}`},
	}
	for _, tt := range tests {
		got, err := render(t, EscapeSlackJSON, tt.text, p)
		if err != nil || got != tt.want || !json.Valid([]byte(got)) {
			t.Errorf("%s:\n got %s (%v)\nwant %s", tt.text, got, err, tt.want)
		}
	}
}

func TestUnescapedTemplatesAreUnchanged(t *testing.T) {
	got, err := render(t, EscapeNone, "{{ .v }} {{ json .v }} {{ .missing }}|", map[string]any{"v": "<a&b>"})
	if err != nil || got != `<a&b> "\u003ca\u0026b\u003e" |` {
		t.Errorf("got %q %v", got, err)
	}
	if _, err := ParseTemplate("t", "{{ trusted .v }}"); err == nil {
		t.Error("trusted exists outside escaping templates")
	}
}

func FuzzSlackTemplate(f *testing.F) {
	f.Add(`<!channel> & <@U123> <https://evil.example|click>`)
	f.Add("\"\\\x00\u2028")
	f.Fuzz(func(t *testing.T, v string) {
		text, err := render(t, EscapeSlack, "<{{ .v }}>", map[string]any{"v": v})
		if err != nil {
			t.Fatal(err)
		}
		inner := text[1 : len(text)-1]
		if strings.ContainsAny(inner, "<>") {
			t.Fatalf("markup in %q", text)
		}
		if strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(inner) != v {
			t.Fatalf("%q does not decode back to %q", inner, v)
		}
		doc, err := render(t, EscapeSlackJSON, `{"a": "{{ .v }}", "b": {{ json .v }}}`, map[string]any{"v": v})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(doc), &m); err != nil || len(m) != 2 {
			t.Fatalf("%q: %s is not the document: %v", v, doc, err)
		}
		if m["a"] != inner && strings.ToValidUTF8(v, "\ufffd") == v {
			t.Fatalf("%q: %q, want %q", v, m["a"], inner)
		}
		if m["a"] != m["b"] {
			t.Fatalf("%q: quoted %q, json %q", v, m["a"], m["b"])
		}
	})
}
