package email

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"switchboard/router"
	"switchboard/sinks"
	"switchboard/sinks/sinktest"
)

// build decodes raw the way the host does and builds the sink.
func build(t *testing.T, raw map[string]any) *Sink {
	t.Helper()
	return sinktest.MustBuild[*Sink](t, "email", "digest", raw)
}

// settings are a sink's settings for ts with the given smtp extras.
func settings(ts *testServer, smtpExtra map[string]any, more ...any) map[string]any {
	m := map[string]any{
		"smtp": ts.smtp(smtpExtra),
		"from": "Switchboard <alerts@example.com>",
		"to":   []any{"oncall@example.com", "Ops Lead <lead@example.com>"},
		"cc":   []any{"noc@example.com"},
	}
	for i := 0; i+1 < len(more); i += 2 {
		m[more[i].(string)] = more[i+1]
	}
	return m
}

const birdCall = `{"id":"3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11","from":"+31612345678","to":"+31687654321","status":"failed","reason":"call-rejected","duration":0}`

// birdFailedCall is a Bird voice call that failed, as the bird source
// normalizes it.
func birdFailedCall(t *testing.T) *router.Event {
	t.Helper()
	p, err := router.DecodeObject([]byte(birdCall))
	if err != nil {
		t.Fatal(err)
	}
	return &router.Event{
		ID: "3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11", Source: "bird", Event: "voice.outbound", Status: "failed",
		Time:       time.Date(2026, 11, 23, 7, 0, 0, 123e6, time.UTC),
		ReceivedAt: time.Date(2026, 11, 23, 7, 0, 0, 125e6, time.UTC),
		Payload:    p, RawPayload: []byte(birdCall),
	}
}

const wantDefaultBody = `voice.outbound failed from bird

id:          3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11
time:        2026-11-23 07:00:00.123 UTC
received at: 2026-11-23 07:00:00.125 UTC

payload:
{
  "id": "3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11",
  "from": "+31612345678",
  "to": "+31687654321",
  "status": "failed",
  "reason": "call-rejected",
  "duration": 0
}

-- 
Sent by switchboard, sink digest.
`

// parsed is a received message, decoded.
type parsed struct {
	header mail.Header
	text   string // the text/plain body
	html   string // the text/html alternative, if any
	ctype  string // the top-level media type
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a message: %v\n%s", err, data)
	}
	p := parsed{header: m.Header}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	p.ctype = mt
	if !strings.HasPrefix(mt, "multipart/") {
		p.text = decodePart(t, m.Header.Get("Content-Transfer-Encoding"), m.Body)
		return p
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// multipart decodes quoted-printable parts itself.
		body := decodePart(t, part.Header.Get("Content-Transfer-Encoding"), part)
		switch pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); pt {
		case "text/plain":
			p.text = body
		case "text/html":
			p.html = body
		}
	}
	return p
}

func decodePart(t *testing.T, cte string, r io.Reader) string {
	t.Helper()
	if strings.EqualFold(cte, "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

func (p parsed) subject(t *testing.T) string {
	s, err := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPlainSMTPSendsOneMessageToEveryRecipient(t *testing.T) {
	ts := startServer(t, plainServer, &backend{})
	s := build(t, settings(ts, map[string]any{"tls": "none"}))
	if err := s.Send(context.Background(), birdFailedCall(t)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := ts.next(t)
	if r.from != "alerts@example.com" {
		t.Errorf("MAIL FROM %s, want alerts@example.com", r.from)
	}
	if got := strings.Join(r.rcpts, " "); got != "oncall@example.com lead@example.com noc@example.com" {
		t.Errorf("RCPT TO %s, want every address of to and cc", got)
	}
	if r.tls || r.user != "" {
		t.Errorf("tls %v, user %q; want neither with tls: none", r.tls, r.user)
	}
	m := parse(t, r.data)
	for k, want := range map[string]string{
		"From":                   `"Switchboard" <alerts@example.com>`,
		"To":                     `<oncall@example.com>, "Ops Lead" <lead@example.com>`,
		"Cc":                     `<noc@example.com>`,
		"Auto-Submitted":         "auto-generated",
		"X-Switchboard-Sink":     "digest",
		"X-Switchboard-Event-Id": "3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11",
	} {
		if got := m.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if got := m.subject(t); got != "[switchboard] voice.outbound failed from bird" {
		t.Errorf("Subject %q", got)
	}
	if m.ctype != "text/plain" || m.text != wantDefaultBody {
		t.Errorf("%s body\n%s\nwant\n%s", m.ctype, m.text, wantDefaultBody)
	}
	if d, err := m.header.Date(); err != nil || time.Since(d) > time.Minute {
		t.Errorf("Date %v, %v; want the time of sending", d, err)
	}
	if id := m.header.Get("Message-Id"); !strings.HasSuffix(id, ".switchboard@example.com>") {
		t.Errorf("Message-ID %q, want one derived from the event, at the sender's domain", id)
	}
}

func TestMessageIDIsStableAcrossRetries(t *testing.T) {
	ts := startServer(t, plainServer, &backend{})
	s := build(t, settings(ts, map[string]any{"tls": "none"}))
	var ids []string
	for range 2 {
		if err := s.Send(context.Background(), birdFailedCall(t)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, parse(t, ts.next(t).data).header.Get("Message-Id"))
	}
	other := birdFailedCall(t)
	other.ID = "another"
	if err := s.Send(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, parse(t, ts.next(t).data).header.Get("Message-Id"))
	if ids[0] != ids[1] || ids[0] == ids[2] {
		t.Errorf("Message-IDs %q: want one per event, the same on a resend", ids)
	}
}

func TestStartTLSWithAuthAndTemplates(t *testing.T) {
	ts := startServer(t, startTLSServer, &backend{user: "switchboard", pass: "s3cret-pw"})
	s := build(t, settings(ts,
		map[string]any{"username": "switchboard", "password": "s3cret-pw", "ca_file": ts.ca},
		"subject", "Call {{ .status }}:\n{{ .from }} → {{ .to }}",
		"body", "{{ .from }} called {{ .to }}: {{ .reason }} at {{ time \"DateTime\" .time }} UTC\n",
	))
	if err := s.Send(context.Background(), birdFailedCall(t)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := ts.next(t)
	if !r.tls || r.user != "switchboard" {
		t.Errorf("tls %v, user %q; want STARTTLS then AUTH as switchboard", r.tls, r.user)
	}
	m := parse(t, r.data)
	if got := m.subject(t); got != "Call failed: +31612345678 → +31687654321" {
		t.Errorf("Subject %q: want the template on one line", got)
	}
	if want := "+31612345678 called +31687654321: call-rejected at 2026-11-23 07:00:00 UTC\n"; m.text != want {
		t.Errorf("body %q, want %q", m.text, want)
	}
}

func TestWrongPasswordIsTransientAndNamesTheSettings(t *testing.T) {
	ts := startServer(t, startTLSServer, &backend{user: "switchboard", pass: "right"})
	s := build(t, settings(ts, map[string]any{"username": "switchboard", "password": "wrong-pw", "ca_file": ts.ca}))
	err := s.Send(context.Background(), birdFailedCall(t))
	if err == nil || router.IsPermanent(err) {
		t.Fatalf("err = %v, want transient: a credential fix lets queued messages through", err)
	}
	if !strings.Contains(err.Error(), "535") || !strings.HasSuffix(err.Error(), "(check smtp.username and smtp.password)") {
		t.Errorf("err = %v, want the 535 reply and a hint", err)
	}
	if strings.Contains(err.Error(), "wrong-pw") {
		t.Errorf("err = %v leaks the password", err)
	}
	ts.be.waitLoggedOut(t, 1) // a failed set-up leaves no connection behind
}

func TestUntrustedCertificateIsTransientWithAHint(t *testing.T) {
	ts := startServer(t, startTLSServer, &backend{})
	s := build(t, settings(ts, nil))
	err := s.Send(context.Background(), birdFailedCall(t))
	if err == nil || router.IsPermanent(err) {
		t.Fatalf("err = %v, want transient", err)
	}
	if !strings.HasSuffix(err.Error(), "(the server's certificate is not trusted; set smtp.ca_file to the CA that signed it)") {
		t.Errorf("err = %v, want a hint at ca_file", err)
	}
}

func TestImplicitTLS(t *testing.T) {
	ts := startServer(t, implicitServer, &backend{user: "switchboard", pass: "pw"})
	s := build(t, settings(ts, map[string]any{"tls": "tls", "insecure_skip_verify": true, "username": "switchboard", "password": "pw"}))
	if err := s.Send(context.Background(), birdFailedCall(t)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if r := ts.next(t); !r.tls || r.user != "switchboard" || len(r.rcpts) != 3 {
		t.Errorf("tls %v, user %q, %d recipients; want an encrypted session, AUTH PLAIN, 3 recipients", r.tls, r.user, len(r.rcpts))
	}
}

func TestHTMLMakesAMultipartAlternative(t *testing.T) {
	ts := startServer(t, plainServer, &backend{})
	s := build(t, settings(ts, map[string]any{"tls": "none"},
		"body", "Call {{ .status }}: {{ .reason }}",
		"html", `<p>Call <b>{{ .status }}</b>: {{ .reason }}</p><a href="https://crm.example/calls?id={{ .id }}">open</a>`,
	))
	e := birdFailedCall(t)
	e.Payload["reason"] = "<script>x</script> & co"
	if err := s.Send(context.Background(), e); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := parse(t, ts.next(t).data)
	if m.ctype != "multipart/alternative" {
		t.Fatalf("Content-Type %s, want multipart/alternative", m.ctype)
	}
	if want := "Call failed: <script>x</script> & co"; m.text != want {
		t.Errorf("text part %q, want %q", m.text, want)
	}
	// html/template escapes event values for where they land.
	want := `<p>Call <b>failed</b>: &lt;script&gt;x&lt;/script&gt; &amp; co</p><a href="https://crm.example/calls?id=3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11">open</a>`
	if m.html != want {
		t.Errorf("html part\n%s\nwant\n%s", m.html, want)
	}
}

func TestOneConnectionCarriesManyMessages(t *testing.T) {
	ts := startServer(t, plainServer, &backend{})
	s := build(t, settings(ts, map[string]any{"tls": "none"}))
	for i := range 3 {
		if err := s.Send(context.Background(), birdFailedCall(t)); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		ts.next(t)
	}
	if n := ts.be.sessionCount(); n != 1 {
		t.Errorf("the server saw %d sessions for 3 messages, want 1", n)
	}
}

func TestAConnectionTheServerDroppedIsRedialled(t *testing.T) {
	ts := startServer(t, plainServer, &backend{})
	s := build(t, settings(ts, map[string]any{"tls": "none"}))
	if err := s.Send(context.Background(), birdFailedCall(t)); err != nil {
		t.Fatal(err)
	}
	ts.next(t)
	ts.be.dropConnections()
	if err := s.Send(context.Background(), birdFailedCall(t)); err != nil {
		t.Fatalf("Send after the server hung up: %v", err)
	}
	ts.next(t)
	if n := ts.be.sessionCount(); n != 2 {
		t.Errorf("sessions = %d, want 2", n)
	}
}

func TestAnIdleConnectionIsClosed(t *testing.T) {
	ts := startServer(t, plainServer, &backend{})
	s := build(t, settings(ts, map[string]any{"tls": "none"}))
	if err := s.Send(context.Background(), birdFailedCall(t)); err != nil {
		t.Fatal(err)
	}
	ts.next(t)
	s.mu.Lock()
	s.lastUsed = time.Now().Add(-idleTimeout)
	s.mu.Unlock()
	s.closeIdle() // what the idle timer runs
	s.mu.Lock()
	open := s.conn != nil
	s.mu.Unlock()
	if open {
		t.Fatal("the connection is still open after idleTimeout without a message")
	}
	if err := s.Send(context.Background(), birdFailedCall(t)); err != nil {
		t.Fatalf("Send after an idle close: %v", err)
	}
	ts.next(t)
	if n := ts.be.sessionCount(); n != 2 {
		t.Errorf("sessions = %d, want 2", n)
	}
}

func TestReplies(t *testing.T) {
	tests := []struct {
		name      string
		be        *backend
		permanent bool
		contains  string
	}{
		{"451 on RCPT is transient", &backend{rcptReply: map[string]error{
			"lead@example.com": smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Mailbox temporarily unavailable"),
		}}, false, `sending SMTP RCPT TO command: 451 "4.3.0 Mailbox temporarily unavailable", affected recipient(s): <lead@example.com>`},
		{"550 on RCPT is permanent", &backend{rcptReply: map[string]error{
			"noc@example.com": smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user"),
		}}, true, `sending SMTP RCPT TO command: 550 "5.1.1 No such user", affected recipient(s): <noc@example.com>`},
		{"554 after DATA is permanent", &backend{dataReply: smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "Message rejected as spam")},
			true, `closing SMTP DATA writer: 554 "5.6.0 Message rejected as spam"`},
		{"452 after DATA is transient", &backend{dataReply: smtpErr(452, smtp.EnhancedCode{4, 3, 1}, "Insufficient system storage")},
			false, `closing SMTP DATA writer: 452 "4.3.1 Insufficient system storage"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, plainServer, tt.be)
			s := build(t, settings(ts, map[string]any{"tls": "none"}))
			err := s.Send(context.Background(), birdFailedCall(t))
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if router.IsPermanent(err) != tt.permanent {
				t.Errorf("permanent = %v, want %v: %v", router.IsPermanent(err), tt.permanent, err)
			}
			if !strings.HasPrefix(err.Error(), "smtp "+ts.addr()+": ") || !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("err = %v\nwant smtp %s: ...%s...", err, ts.addr(), tt.contains)
			}
			// The next message goes out on a new connection.
			tt.be.rcptReply, tt.be.dataReply = nil, nil
			if err := s.Send(context.Background(), birdFailedCall(t)); err != nil {
				t.Errorf("Send after a refusal: %v", err)
			}
		})
	}
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := build(t, map[string]any{
		"smtp": map[string]any{"host": "127.0.0.1", "port": port, "tls": "none"},
		"from": "alerts@example.com", "to": "oncall@example.com",
	})
	err = s.Send(context.Background(), birdFailedCall(t))
	if err == nil || router.IsPermanent(err) {
		t.Fatalf("err = %v, want transient", err)
	}
	if !strings.HasPrefix(err.Error(), "smtp "+ln.Addr().String()+": cannot connect: ") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v, want it to name the server and say connection refused", err)
	}
}

func TestCancelDuringTheConversationReturnsPromptly(t *testing.T) {
	ts := startServer(t, plainServer, &backend{dataHang: make(chan struct{})})
	s := build(t, settings(ts, map[string]any{"tls": "none", "timeout": "1m"}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, birdFailedCall(t)) }()
	time.AfterFunc(50*time.Millisecond, cancel)
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not return after its context was cancelled")
	}
}

func TestCancelWhileConnectingReturnsPromptly(t *testing.T) {
	// A server that takes the connection and never greets.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Read(make([]byte, 1)) // returns when the client hangs up
		c.Close()
		close(closed)
	}()
	s := build(t, map[string]any{
		"smtp": map[string]any{"host": "127.0.0.1", "port": ln.Addr().(*net.TCPAddr).Port, "tls": "none", "timeout": "1m"},
		"from": "alerts@example.com", "to": "oncall@example.com",
	})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, birdFailedCall(t)) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not return after its context was cancelled")
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Error("the abandoned connection was left open")
	}
}

func TestTemplateFailuresArePermanentAndSendNothing(t *testing.T) {
	tests := []struct {
		name string
		key  string
		text string
		want string
	}{
		{"subject", "subject", `{{ time "RFC3339" .to }}`,
			`subject template of sink digest failed on event 3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11: template: digest.subject:1:3: executing "digest.subject" at <time "RFC3339" .to>: error calling time: time: "+31687654321" is not an RFC 3339 time`},
		{"body", "body", `{{ .payload.nope.x }}`,
			`body template of sink digest failed on event 3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11: template: digest.body:1:11: executing "digest.body" at <.payload.nope.x>: nil pointer evaluating interface {}.x`},
		{"html", "html", `<p>{{ time "Kitchen" .reason }}</p>`,
			`html template of sink digest failed on event 3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11: template: digest.html:1:6: executing "digest.html" at <time "Kitchen" .reason>: error calling time: time: "call-rejected" is not an RFC 3339 time`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, plainServer, &backend{})
			s := build(t, settings(ts, map[string]any{"tls": "none"}, tt.key, tt.text))
			err := s.Send(context.Background(), birdFailedCall(t))
			if !router.IsPermanent(err) || err.Error() != tt.want {
				t.Errorf("err = %v\nwant permanent: %s", err, tt.want)
			}
			if _, perr := s.Preview(birdFailedCall(t)); perr == nil || perr.Error() != tt.want {
				t.Errorf("Preview error = %v, want the same", perr)
			}
			if n := ts.be.sessionCount(); n != 0 {
				t.Errorf("the sink connected (%d sessions) for a message that failed to render", n)
			}
		})
	}
}

func TestPreviewIsTheMessageAsSent(t *testing.T) {
	s := build(t, map[string]any{
		"smtp": map[string]any{"host": "smtp.example.com"},
		"from": "alerts@example.com", "to": []any{"oncall@example.com"},
		"html": "<p>{{ .status }}</p>",
	})
	b, err := s.Preview(birdFailedCall(t))
	if err != nil {
		t.Fatal(err)
	}
	m := parse(t, b)
	if m.subject(t) != "[switchboard] voice.outbound failed from bird" || m.header.Get("To") != "<oncall@example.com>" {
		t.Errorf("headers %v", m.header)
	}
	if m.text != wantDefaultBody || m.html != "<p>failed</p>" {
		t.Errorf("text %q, html %q", m.text, m.html)
	}
}

func TestDefaultBodyWithoutRawPayload(t *testing.T) {
	e := birdFailedCall(t)
	e.RawPayload, e.Status = nil, ""
	e.Payload = map[string]any{"b": "<2>", "a": 1}
	want := "voice.outbound from bird\n\n" +
		"id:          3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11\n" +
		"time:        2026-11-23 07:00:00.123 UTC\n" +
		"received at: 2026-11-23 07:00:00.125 UTC\n\n" +
		"payload:\n{\n  \"a\": 1,\n  \"b\": \"<2>\"\n}\n\n-- \nSent by switchboard, sink x.\n"
	if got := string(defaultBody("x", e)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestDefaultPorts(t *testing.T) {
	for mode, want := range map[string]string{"none": "smtp.example.com:25", "starttls": "smtp.example.com:587", "tls": "smtp.example.com:465"} {
		s := build(t, map[string]any{
			"smtp": map[string]any{"host": "smtp.example.com", "tls": mode},
			"from": "alerts@example.com", "to": "oncall@example.com",
		})
		if s.server != want {
			t.Errorf("tls %s: server %s, want %s", mode, s.server, want)
		}
	}
	f, _ := sinks.Lookup("email")
	o := f().(*Options)
	if o.SMTP.TLS != "starttls" || o.SMTP.Timeout != 10*time.Second || o.DefaultConcurrency() != 1 {
		t.Errorf("defaults %+v, concurrency %d", o, o.DefaultConcurrency())
	}
}

func TestAddressListsInOneEntry(t *testing.T) {
	s := build(t, map[string]any{
		"smtp": map[string]any{"host": "smtp.example.com"},
		"from": "alerts@example.com", "to": "a@example.com, B <b@example.com>",
	})
	if len(s.to) != 2 || s.to[1].Name != "B" {
		t.Errorf("to = %v, want two addresses from one entry", s.to)
	}
}

func TestBuildProblems(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	ok := func(extra ...any) map[string]any {
		m := map[string]any{"smtp": map[string]any{"host": "smtp.example.com"}, "from": "alerts@example.com", "to": []any{"oncall@example.com"}}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	smtpWith := func(kv ...any) map[string]any {
		m := map[string]any{"host": "smtp.example.com"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"host, from and to are required", map[string]any{},
			"smtp.host: is required: the SMTP server's name, e.g. smtp.example.com\n" +
				`from: is required: the sender address, e.g. alerts@example.com or "Switchboard <alerts@example.com>"` + "\n" +
				"to: is required: the addresses to send to, e.g. [oncall@example.com]"},
		{"host is a name, not a URL", ok("smtp", smtpWith("host", "smtp://smtp.example.com")),
			`smtp.host: "smtp://smtp.example.com" is not a host name; write the name alone, e.g. smtp.example.com (the port goes in smtp.port)`},
		{"host carries no port", ok("smtp", smtpWith("host", "smtp.example.com:587")),
			`smtp.host: "smtp.example.com:587" includes a port; write the name alone and set smtp.port`},
		{"port in range", ok("smtp", smtpWith("port", 70000)),
			"smtp.port: 70000 is not a port; use 1-65535, or leave it out for 587 (starttls), 465 (tls) or 25 (none)"},
		{"tls mode known", ok("smtp", smtpWith("tls", "ssl")),
			`smtp.tls: "ssl" is not a TLS mode; use starttls (the default, port 587), tls (TLS from the first byte, port 465) or none (port 25)`},
		{"timeout positive", ok("smtp", smtpWith("timeout", "0s")),
			"smtp.timeout: must be a positive duration, e.g. 10s"},
		{"password needs a username", ok("smtp", smtpWith("password", "pw")),
			"smtp.username: is required with smtp.password"},
		{"username needs a password", ok("smtp", smtpWith("username", "u")),
			"smtp.password: is required with smtp.username, e.g. ${SMTP_PASSWORD}"},
		{"no password in clear text", ok("smtp", smtpWith("username", "u", "password", "pw", "tls", "none")),
			"smtp.username: is set but smtp.tls is none, so the password would cross the network in clear text; use tls: starttls or tls"},
		{"ca_file must exist", ok("smtp", smtpWith("ca_file", filepath.Join(dir, "missing.pem"))),
			"smtp.ca_file: cannot be read: open " + filepath.Join(dir, "missing.pem") + ": no such file or directory"},
		{"ca_file must be PEM", ok("smtp", smtpWith("ca_file", notPEM)),
			"smtp.ca_file: holds no PEM certificate; it must be the CA certificate(s) that signed the server's, in PEM (-----BEGIN CERTIFICATE-----)"},
		{"ca_file means nothing without TLS", ok("smtp", smtpWith("ca_file", notPEM, "tls", "none")),
			"smtp.ca_file: is set but smtp.tls is none, so no certificate is checked; use tls: starttls or tls, or remove it"},
		{"insecure_skip_verify means nothing without TLS", ok("smtp", smtpWith("insecure_skip_verify", true, "tls", "none")),
			"smtp.insecure_skip_verify: is set but smtp.tls is none, so no certificate is checked; remove it"},
		{"insecure_skip_verify and ca_file", ok("smtp", smtpWith("insecure_skip_verify", true, "ca_file", notPEM)),
			"smtp.insecure_skip_verify: is set with smtp.ca_file, which it would make pointless; keep ca_file and remove insecure_skip_verify\n" +
				"smtp.ca_file: holds no PEM certificate; it must be the CA certificate(s) that signed the server's, in PEM (-----BEGIN CERTIFICATE-----)"},
		{"from must be an address", ok("from", "alerts"),
			`from: "alerts" is not an email address (mail: missing '@' or angle-addr); write it like alerts@example.com or "Switchboard <alerts@example.com>"`},
		{"every to must be an address", ok("to", []any{"oncall@example.com", "ops@", ""}),
			`to[1]: "ops@" is not an email address (mail: missing '@' or angle-addr); write it like oncall@example.com or "On-call <oncall@example.com>"` + "\n" +
				"to[2]: is empty; write an address like oncall@example.com, or remove the entry"},
		{"every cc must be an address", ok("cc", []any{"noc"}),
			`cc[0]: "noc" is not an email address (mail: missing '@' or angle-addr); write it like oncall@example.com or "On-call <oncall@example.com>"`},
		{"subject must parse", ok("subject", "{{ .event "),
			"subject: does not parse: template: digest.subject:1: unclosed action"},
		{"body must parse", ok("body", "{{ nope }}"),
			`body: does not parse: template: digest.body:1: function "nope" not defined`},
		{"html must parse", ok("html", "<p>{{ if .status }}</p>"),
			"html: does not parse: template: digest.html:1: unexpected EOF"},
		{"html must escape cleanly", ok("html", `<a href="{{ .url }}`),
			"html: does not parse: it ends inside a tag, an attribute value or a quote; close it"},
		{"a typo is an unknown setting", ok("smtp", smtpWith("passwd", "x")),
			`smtp.passwd: unknown setting; did you mean "password"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sinktest.WantProblems(t, "email", "digest", tt.settings, tt.want)
		})
	}
}
