package http

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/router"
	"switchboard/sinks"
	"switchboard/sinks/sinktest"
)

// build decodes raw the way the host does and builds the sink.
func build(t *testing.T, raw map[string]any) *Sink {
	t.Helper()
	return sinktest.MustBuild[*Sink](t, "http", "crm", raw)
}

func event() *router.Event { return sinktest.Event("e1") }

type request struct {
	method string
	header http.Header
	body   []byte
}

// receiver records every request and answers with answer (200 when nil).
func receiver(t *testing.T, answer http.HandlerFunc) (*httptest.Server, <-chan request) {
	t.Helper()
	got := make(chan request, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- request{method: r.Method, header: r.Header.Clone(), body: b}
		if answer != nil {
			answer(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func status(code int, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
	}
}

func TestBodyModes(t *testing.T) {
	eventJSON, _ := event().MarshalJSON()
	withBody := func(body, ctype string) *router.Event {
		e := event()
		e.Body = []byte(body)
		e.Headers = map[string]string{"content-type": ctype}
		return e
	}
	tests := []struct {
		name      string
		settings  map[string]any
		event     *router.Event
		wantBody  string
		wantCType string
	}{
		{"event mode sends the normalized event", map[string]any{}, event(),
			string(eventJSON), "application/json"},
		{"raw mode sends the provider's body as received", map[string]any{"body": "raw"},
			withBody(`{"service":"voice", "event":"voice.inbound"}`, "application/json; charset=utf-8"),
			`{"service":"voice", "event":"voice.inbound"}`, "application/json; charset=utf-8"},
		{"raw mode keeps a form body and its content type", map[string]any{"body": "raw"},
			withBody("cmiuid=abc&status=answered", "application/x-www-form-urlencoded"),
			"cmiuid=abc&status=answered", "application/x-www-form-urlencoded"},
		{"raw mode with content_type set overrides the provider's", map[string]any{"body": "raw", "content_type": "text/plain"},
			withBody("cmiuid=abc", "application/x-www-form-urlencoded"), "cmiuid=abc", "text/plain"},
		{"raw mode without a body sends the raw payload", map[string]any{"body": "raw"}, event(),
			`{"to":"+31612345678","duration":0}`, "application/json"},
		{"json mode encodes the rendered strings", map[string]any{
			"body": "json", "json": map[string]any{"text": "{{ .event }} {{ .status }} to {{ .to }}"},
		}, event(), `{"text":"voice.inbound failed to +31612345678"}`, "application/json"},
		{"json mode keeps the structure and non-string values", map[string]any{
			"body": "json", "json": map[string]any{
				"z": []any{"{{ .id }}", 2, true, nil, 1.5, map[string]any{"n": "{{ .duration }}"}},
				"a": map[string]any{"missing": "{{ .nope }}", "plain": "no template"},
			},
		}, event(), `{"a":{"missing":"","plain":"no template"},"z":["e1",2,true,null,1.5,{"n":"0"}]}`, "application/json"},
		{"template mode sends the rendered template", map[string]any{
			"body": "template", "template": `{"text":"{{ .event }} {{ .status }} to {{ .to }}"}`,
		}, event(), `{"text":"voice.inbound failed to +31612345678"}`, "application/json"},
		{"content_type applies to templates", map[string]any{
			"body": "template", "template": "{{ .id }}", "content_type": "text/plain; charset=utf-8",
		}, event(), "e1", "text/plain; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := receiver(t, nil)
			tt.settings["url"] = srv.URL + "/hooks"
			s := build(t, tt.settings)
			if err := s.Send(context.Background(), tt.event); err != nil {
				t.Fatalf("Send: %v", err)
			}
			r := <-got
			if string(r.body) != tt.wantBody {
				t.Errorf("body\n got %s\nwant %s", r.body, tt.wantBody)
			}
			if ct := r.header.Get("Content-Type"); ct != tt.wantCType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantCType)
			}
			preview, err := s.Preview(tt.event)
			if err != nil || string(preview) != tt.wantBody {
				t.Errorf("Preview = %s, %v; want the sent body", preview, err)
			}
		})
	}
}

// The README's old example built JSON by hand: '{"to": "{{ .to }}"}' let a
// payload add fields. With body: json, event content stays inside its
// string, whatever it holds.
func TestJSONBodyCannotBeForgedByEventContent(t *testing.T) {
	srv, got := receiver(t, nil)
	s := build(t, map[string]any{"url": srv.URL, "body": "json",
		"json": map[string]any{"to": "{{ .to }}", "note": "call to {{ .to }} ({{ .status }})", "admin": false}})
	e := event()
	const inject = `", "admin": true, "x": "`
	e.Payload["to"] = inject
	e.Status = "\\\"}\n\x00</script>\xff"
	if err := s.Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	r := <-got
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("%s: %v", r.body, err)
	}
	want := map[string]any{"to": inject, "note": "call to " + inject + " (\\\"}\n\x00</script>\ufffd)", "admin": false}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("body %s\n got %#v\nwant %#v", r.body, body, want)
	}
}

func TestMethodAndHeaders(t *testing.T) {
	srv, got := receiver(t, nil)
	s := build(t, map[string]any{
		"url":    srv.URL,
		"method": "put",
		"headers": map[string]any{
			"X-Api-Key":     "k-123",
			"authorization": "Bearer t0ken",
			"User-Agent":    "crm-bridge/2",
		},
	})
	if err := s.Send(context.Background(), event()); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.method != "PUT" {
		t.Errorf("method = %s, want PUT", r.method)
	}
	for k, want := range map[string]string{
		"X-Api-Key": "k-123", "Authorization": "Bearer t0ken", "User-Agent": "crm-bridge/2",
		"Content-Type": "application/json",
	} {
		if v := r.header.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if r.header.Get("Webhook-Signature") != "" {
		t.Error("unsigned sink sent webhook-signature")
	}
}

// The default request: POST, User-Agent switchboard, and no
// Accept-Encoding (answers are read only for a short error text).
func TestDefaultUserAgentIsSwitchboard(t *testing.T) {
	srv, got := receiver(t, nil)
	s := build(t, map[string]any{"url": srv.URL})
	if err := s.Send(context.Background(), event()); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.method != "POST" || r.header.Get("User-Agent") != "switchboard" || r.header.Get("Accept-Encoding") != "" {
		t.Errorf("method %s, User-Agent %q, Accept-Encoding %q; want POST, switchboard, none",
			r.method, r.header.Get("User-Agent"), r.header.Get("Accept-Encoding"))
	}
}

// The vector of the Standard Webhooks specification's test suite.
func TestSignMatchesTheStandardWebhooksVector(t *testing.T) {
	key, err := signingKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestSignatureHeaders(t *testing.T) {
	whsecKey, _ := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	tests := []struct {
		name   string
		secret string
		key    []byte
	}{
		{"whsec_ secret is base64 of the key", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", whsecKey},
		{"other secret is the key itself", "hunter2-but-longer", []byte("hunter2-but-longer")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := receiver(t, nil)
			s := build(t, map[string]any{"url": srv.URL, "signing_secret": tt.secret})
			before := time.Now().Unix()
			if err := s.Send(context.Background(), event()); err != nil {
				t.Fatal(err)
			}
			r := <-got
			id, ts := r.header.Get("webhook-id"), r.header.Get("webhook-timestamp")
			if id != "e1" {
				t.Errorf("webhook-id = %q, want the event id e1", id)
			}
			n, err := strconv.ParseInt(ts, 10, 64)
			if err != nil || n < before || n > time.Now().Unix() {
				t.Errorf("webhook-timestamp = %q, want unix seconds of the send", ts)
			}
			mac := hmac.New(sha256.New, tt.key)
			mac.Write([]byte(id + "." + ts + "."))
			mac.Write(r.body)
			want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
			if sig := r.header.Get("webhook-signature"); sig != want {
				t.Errorf("webhook-signature = %q, want %q", sig, want)
			}
		})
	}
}

type outcome int

const (
	success outcome = iota
	transient
	permanent
)

func classOf(err error) outcome {
	switch {
	case err == nil:
		return success
	case router.IsPermanent(err):
		return permanent
	}
	return transient
}

func (o outcome) String() string { return [...]string{"success", "transient", "permanent"}[o] }

func TestStatusClassification(t *testing.T) {
	tests := []struct {
		name       string
		answer     http.HandlerFunc
		want       outcome
		retryAfter bool          // want a *router.RetryAfterError
		after      time.Duration // with this wait
	}{
		{"200 is success", status(200), success, false, 0},
		{"204 is success", status(204), success, false, 0},
		{"400 is permanent", status(400), permanent, false, 0},
		{"404 is permanent", status(404), permanent, false, 0},
		{"422 is permanent", status(422), permanent, false, 0},
		{"301 is permanent", status(301, "Location", "/elsewhere"), permanent, false, 0},
		{"408 is transient", status(408), transient, false, 0},
		{"429 is transient", status(429), transient, false, 0},
		{"500 is transient", status(500), transient, false, 0},
		{"503 is transient", status(503), transient, false, 0},
		{"429 with Retry-After seconds waits that long", status(429, "Retry-After", "7"), transient, true, 7 * time.Second},
		{"503 with Retry-After 0 is a floor of zero", status(503, "Retry-After", "0"), transient, true, 0},
		{"400 ignores Retry-After", status(400, "Retry-After", "7"), permanent, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := receiver(t, tt.answer)
			err := build(t, map[string]any{"url": srv.URL}).Send(context.Background(), event())
			if got := classOf(err); got != tt.want {
				t.Fatalf("outcome = %v (%v), want %v", got, err, tt.want)
			}
			var ra *router.RetryAfterError
			if errors.As(err, &ra) != tt.retryAfter {
				t.Fatalf("RetryAfterError = %v, want one only with a Retry-After", err)
			}
			if ra != nil && ra.After != tt.after {
				t.Errorf("After = %s, want %s", ra.After, tt.after)
			}
		})
	}
}

func TestRetryAfterAsHTTPDate(t *testing.T) {
	when := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	srv, _ := receiver(t, status(503, "Retry-After", when))
	err := build(t, map[string]any{"url": srv.URL}).Send(context.Background(), event())
	var ra *router.RetryAfterError
	if !errors.As(err, &ra) {
		t.Fatalf("err = %v, want a *router.RetryAfterError", err)
	}
	if ra.After <= 28*time.Second || ra.After > 30*time.Second {
		t.Errorf("After = %s, want about 30s", ra.After)
	}
}

func TestErrorNamesStatusAndBodyButNoSecrets(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name   string
		answer http.HandlerFunc
		want   string // after "POST <url>: "
	}{
		{"status and body", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Echo", "Bearer s3cret")
			w.WriteHeader(503)
			io.WriteString(w, "busy\nretry later\n")
		}, "503 Service Unavailable: busy retry later"},
		{"status without body", status(404), "404 Not Found"},
		{"body cut at 200 bytes", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(400)
			io.WriteString(w, long)
		}, "400 Bad Request: " + long[:200] + "…"},
		{"redirect says what to fix", status(308, "Location", "https://new.example/x"),
			"308 Permanent Redirect (the receiver redirects; set url to the address it redirects to)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := receiver(t, tt.answer)
			s := build(t, map[string]any{
				"url":     "http://user:pw@" + strings.TrimPrefix(srv.URL, "http://") + "/hooks?token=qs-secret",
				"headers": map[string]any{"Authorization": "Bearer s3cret"},
			})
			err := s.Send(context.Background(), event())
			shown := "http://user:xxxxx@" + strings.TrimPrefix(srv.URL, "http://") + "/hooks"
			if err == nil || err.Error() != "POST "+shown+": "+tt.want {
				t.Errorf("err = %v\nwant POST %s: %s", err, shown, tt.want)
			}
			for _, secret := range []string{"s3cret", "qs-secret", ":pw@"} {
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks %q", err, secret)
				}
			}
		})
	}
}

func TestTimeoutIsTransientAndNotRetriedAtOnce(t *testing.T) {
	var calls atomic.Int32
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
	s := build(t, map[string]any{"url": srv.URL, "timeout": "50ms"})
	start := time.Now()
	err := s.Send(context.Background(), event())
	if classOf(err) != transient {
		t.Fatalf("err = %v, want transient", err)
	}
	if !strings.Contains(err.Error(), "no answer within timeout 50ms") {
		t.Errorf("err = %v, want it to name the timeout", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Send took %s with timeout 50ms", took)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("receiver saw %d requests, want 1: a timed-out attempt is left to the router's schedule", n)
	}
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := build(t, map[string]any{"url": url}).Send(context.Background(), event())
	if classOf(err) != transient {
		t.Fatalf("err = %v, want transient", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v, want it to say connection refused", err)
	}
}

func TestDroppedConnectionIsRetriedTwiceQuickly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			// Read the request, then hang up without an answer.
			buf := make([]byte, 4096)
			c.SetReadDeadline(time.Now().Add(time.Second))
			c.Read(buf)
			c.Close()
		}
	}()
	err = build(t, map[string]any{"url": "http://" + ln.Addr().String()}).Send(context.Background(), event())
	if classOf(err) != transient {
		t.Fatalf("err = %v, want transient", err)
	}
	if n := accepted.Load(); n != 3 {
		t.Errorf("receiver saw %d connections, want 3 (one try and two quick retries)", n)
	}
}

func TestCancelledContextStopsTheSend(t *testing.T) {
	srv, _ := receiver(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	err := build(t, map[string]any{"url": srv.URL}).Send(ctx, event())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestTemplateExecutionErrorIsPermanent(t *testing.T) {
	srv, got := receiver(t, nil)
	s := build(t, map[string]any{"url": srv.URL, "body": "template", "template": `{{ time "RFC3339" .to }}`})
	err := s.Send(context.Background(), event())
	if !router.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	want := `template of sink crm failed on event e1: template: crm:1:3: executing "crm" at <time "RFC3339" .to>: error calling time: time: "+31612345678" is not an RFC 3339 time`
	if err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	select {
	case <-got:
		t.Error("a request was sent for a template that failed")
	default:
	}
}

func TestBuildProblems(t *testing.T) {
	const ok = "https://crm.example/hooks"
	tests := []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"url is required", map[string]any{},
			"url: is required: the URL to POST events to"},
		{"url needs http or https", map[string]any{"url": "ftp://crm.example/hooks"},
			`url: scheme "ftp" is not supported; write an http:// or https:// URL`},
		{"url needs a scheme", map[string]any{"url": "crm.example/hooks"},
			"url: has no scheme; write it like https://example.com/hooks"},
		{"url needs a host", map[string]any{"url": "https:///hooks"},
			"url: has no host; write it like https://example.com/hooks"},
		{"url must parse, and is not echoed", map[string]any{"url": "https://crm.example/%zz?token=t"},
			"url: is not a valid URL; write it like https://example.com/hooks"},
		{"method must carry a body", map[string]any{"url": ok, "method": "GET"},
			`method: "GET" is not supported; use POST, PUT or PATCH (the event travels in the request body)`},
		{"body mode must be known", map[string]any{"url": ok, "body": "xml"},
			`body: "xml" is not a body mode; use event (the normalized event JSON), raw (the provider's body as received), json (an object built from the json setting) or template`},
		{"template mode needs a template", map[string]any{"url": ok, "body": "template"},
			`template: is required when body is template: the request body as a Go template, e.g. 'event={{ .event }}' (for JSON, use body: json, which encodes event values safely)`},
		{"template must parse", map[string]any{"url": ok, "body": "template", "template": "{{ .event "},
			"template: does not parse: template: crm:1: unclosed action"},
		{"json mode needs json", map[string]any{"url": ok, "body": "json"},
			`json: is required when body is json: the object to send, each string a template, e.g. {text: "{{ .event }} to {{ .to }}", id: "{{ .id }}"}`},
		{"json is an object", map[string]any{"url": ok, "body": "json", "json": []any{"{{ .id }}"}},
			`json: is required when body is json: the object to send, each string a template, e.g. {text: "{{ .event }} to {{ .to }}", id: "{{ .id }}"}`},
		{"json templates must parse, each named by its path", map[string]any{"url": ok, "body": "json",
			"json": map[string]any{"a": map[string]any{"b": []any{"ok", "{{ .x "}}}},
			"json.a.b[1]: does not parse: template: crm.json.a.b[1]:1: unclosed action"},
		{"json without json mode would be ignored", map[string]any{"url": ok, "json": map[string]any{"a": "b"}},
			"json: is set but body is event, so it would be ignored; set body: json to send it, or remove it"},
		{"template without template mode would be ignored", map[string]any{"url": ok, "template": "{{ .event }}"},
			"template: is set but body is event, so it would be ignored; set body: template to send it, or remove it"},
		{"content_type must be a media type", map[string]any{"url": ok, "content_type": "json"},
			`content_type: "json" is not a media type; write it like application/json or text/plain; charset=utf-8`},
		{"timeout must be positive", map[string]any{"url": ok, "timeout": "0s"},
			"timeout: must be a positive duration, e.g. 10s"},
		{"whsec_ secret must be base64", map[string]any{"url": ok, "signing_secret": "whsec_not*base64"},
			"signing_secret: is not valid base64 after whsec_; paste the secret exactly as the receiver shows it"},
		{"header names are tokens", map[string]any{"url": ok, "headers": map[string]any{"X Api Key": "k"}},
			"headers.X Api Key: is not a valid header name; use letters, digits and - (e.g. X-Api-Key)"},
		{"header values are one line, and not echoed", map[string]any{"url": ok, "headers": map[string]any{"X-Api-Key": "k\r\nX-Evil: 1"}},
			"headers.X-Api-Key: value contains a line break or NUL; a header value is one line"},
		{"Content-Type belongs in content_type", map[string]any{"url": ok, "headers": map[string]any{"content-type": "text/plain"}},
			"headers.content-type: set content_type instead"},
		{"signature headers belong to signing_secret", map[string]any{"url": ok, "signing_secret": "s", "headers": map[string]any{"Webhook-Id": "x"}},
			"headers.Webhook-Id: is set by signing_secret; remove it"},
		{"every problem is reported at once", map[string]any{"method": "DELETE", "body": "xml", "timeout": "-1s"},
			"url: is required: the URL to POST events to\n" +
				`method: "DELETE" is not supported; use POST, PUT or PATCH (the event travels in the request body)` + "\n" +
				`body: "xml" is not a body mode; use event (the normalized event JSON), raw (the provider's body as received), json (an object built from the json setting) or template` + "\n" +
				"timeout: must be a positive duration, e.g. 10s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sinktest.WantProblems(t, "http", "crm", tt.settings, tt.want)
		})
	}
}

func TestDefaults(t *testing.T) {
	f, _ := sinks.Lookup("http")
	o := f().(*Options)
	if o.Method != "POST" || o.Body != "event" || o.Timeout != 10*time.Second || o.DefaultConcurrency() != 8 {
		t.Errorf("defaults = %+v, concurrency %d", o, o.DefaultConcurrency())
	}
}

func TestTransportKeepsConnectionsForConcurrentSends(t *testing.T) {
	s := build(t, map[string]any{"url": "https://crm.example/hooks"})
	if s.transport.MaxIdleConnsPerHost < 64 {
		t.Errorf("MaxIdleConnsPerHost = %d, want at least 64", s.transport.MaxIdleConnsPerHost)
	}
}

func FuzzJSONBody(f *testing.F) {
	f.Add(`", "admin": true, "x": "`)
	f.Add("{{ .id }}\x00\xff\u2028")
	s := sinktest.MustBuild[*Sink](f, "http", "crm", map[string]any{"url": "http://127.0.0.1:1", "body": "json",
		"json": map[string]any{"to": "{{ .to }}", "list": []any{"<{{ .to }}>", 1}}})
	f.Fuzz(func(t *testing.T, v string) {
		e := event()
		e.Payload["to"] = v
		b, err := s.Preview(e)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			To   string `json:"to"`
			List []any  `json:"list"`
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil || len(got.List) != 2 {
			t.Fatalf("%q: body %s: %v", v, b, err)
		}
		if want := strings.ToValidUTF8(v, "\ufffd"); got.To != want && v == want {
			t.Fatalf("%q: to %q", v, got.To)
		}
	})
}

// TestSendStatusReportsTheAnswer checks what the delivery history shows
// of an attempt: the receiver's status on success and failure, 0 when no
// answer came, with the same outcome Send gives.
func TestSendStatusReportsTheAnswer(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer http.HandlerFunc
		want   int
		class  outcome
	}{
		{"202", status(202), 202, success},
		{"503", status(503), 503, transient},
		{"422", status(422), 422, permanent},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := receiver(t, tt.answer)
			code, err := build(t, map[string]any{"url": srv.URL}).SendStatus(context.Background(), event())
			if code != tt.want || classOf(err) != tt.class {
				t.Errorf("SendStatus = %d, %v; want %d and %v", code, err, tt.want, tt.class)
			}
		})
	}
	t.Run("no answer", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		code, err := build(t, map[string]any{"url": "http://" + addr + "/in"}).SendStatus(context.Background(), event())
		if code != 0 || err == nil {
			t.Errorf("SendStatus = %d, %v; want 0 and an error", code, err)
		}
	})
}
