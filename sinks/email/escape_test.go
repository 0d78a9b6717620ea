package email

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// Event content lands in an email's headers, its HTML part and its
// links: none of it can add a header, a recipient, markup or a script,
// through a real SMTP server.
func TestEventContentCannotForgeTheEmail(t *testing.T) {
	ts := startServer(t, plainServer, &backend{})
	s := build(t, settings(ts, map[string]any{"tls": "none"},
		"subject", "[{{ .status }}] {{ .from }}",
		"html", `<p>From {{ .from }}</p><a href="{{ .link }}">open</a><a href="https://crm.example/c?id={{ .id }}">crm</a>`,
	))
	e := birdFailedCall(t)
	const hijack = `<!channel> & <@U123> <https://evil.example|click>`
	e.ID = "id-1\r\nBcc: thief@evil.example"
	e.Status = "failed\r\nBcc: thief@evil.example"
	e.Payload["from"] = hijack + `<script>alert(1)</script>` + "\r\nX-Injected: yes"
	e.Payload["link"] = "javascript:alert(1)"
	if err := s.Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	got := ts.next(t)
	if slices.Contains(got.rcpts, "thief@evil.example") || len(got.rcpts) != 3 {
		t.Errorf("recipients %v", got.rcpts)
	}
	m := parse(t, got.data)
	for _, h := range []string{"Bcc", "X-Injected"} {
		if v := m.header.Get(h); v != "" {
			t.Errorf("header %s: %q was added", h, v)
		}
	}
	if subj := m.subject(t); strings.ContainsAny(subj, "\r\n") || !strings.Contains(subj, "Bcc: thief") {
		t.Errorf("subject %q: want one line holding the text", subj)
	}
	if strings.Contains(m.html, "<script>") || strings.Contains(m.html, "<!channel>") || strings.Contains(m.html, "javascript:") {
		t.Errorf("html part carries markup from the event:\n%s", m.html)
	}
	if !strings.Contains(m.html, "&lt;!channel&gt; &amp; &lt;@U123&gt;") || !strings.Contains(m.html, `href="#ZgotmplZ"`) {
		t.Errorf("html part:\n%s", m.html)
	}
	if !strings.Contains(m.html, "id=id-1%0d%0aBcc%3a%20thief%40evil.example") {
		t.Errorf("the id in a URL is not URL-escaped:\n%s", m.html)
	}
}
