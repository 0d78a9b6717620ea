package mobtexting

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/router"
	"switchboard/sources"
	"switchboard/sources/sourcetest"
)

// received is the fixed receipt time of every test request.
var received = time.Date(2026, 11, 23, 7, 0, 0, 125e6, time.UTC)

// request describes one test request.
type request struct {
	method string // default POST
	path   string // default /hooks/mob
	query  string // raw query string
	ctype  string // Content-Type; default application/json when there is a body
	body   string
	header []string // name, value pairs
}

func (r request) build() *sources.Request {
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	target := r.path
	if target == "" {
		target = "/hooks/mob"
	}
	if r.query != "" {
		target += "?" + r.query
	}
	header := r.header
	switch {
	case r.ctype != "":
		header = append([]string{"Content-Type", r.ctype}, header...)
	case r.body != "":
		header = append([]string{"Content-Type", "application/json"}, header...)
	}
	req := sourcetest.Request(method, target, []byte(r.body), header...)
	sub, _ := strings.CutPrefix(req.HTTP.URL.Path, "/hooks/mob/")
	if sub == req.HTTP.URL.Path {
		sub = ""
	}
	req.ReceivedAt, req.Source, req.Subpath = received, "mob", sub
	return req
}

func newSource(t testing.TB, o Options) *Source {
	t.Helper()
	built, err := o.Build(sources.Info{Name: "mob"})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return built.(*Source)
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	return string(sourcetest.ReadFile(t, filepath.Join("testdata", name)))
}

// multipartOf re-encodes a form body as multipart/form-data.
func multipartOf(t testing.TB, form string) (body, ctype string) {
	vals, err := url.ParseQuery(form)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.SetBoundary("switchboard-test-boundary")
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		w.WriteField(k, vals.Get(k))
	}
	w.Close()
	return buf.String(), w.FormDataContentType()
}

// goldenCase is one sample payload sent one way.
type goldenCase struct {
	name   string // golden file: testdata/golden/<golden or name>.json
	file   string // sample in testdata/
	golden string // another case's golden, when the outcome must be the same
	req    request
	opts   Options
	// same names a case whose event this one must equal, key order and
	// spacing aside: the docs' verbatim (relaxed JSON) sample and its
	// strict form.
	same string
}

func goldenCases(t testing.TB) []goldenCase {
	form := readFile(t, "sms-message-status-form.txt")
	mp, mpType := multipartOf(t, form)
	formType := "application/x-www-form-urlencoded"
	return []goldenCase{
		// SMS delivery reports: by shape, path segment and setting.
		{name: "sms-message-status", file: "sms-message-status.json"},
		{name: "sms-message-status-path", file: "sms-message-status.json", golden: "sms-message-status", req: request{path: "/hooks/mob/sms:message:status"}},
		{name: "sms-message-status-setting", file: "sms-message-status.json", golden: "sms-message-status", opts: Options{Event: "sms:message:status"}},
		{name: "sms-message-status-doc", file: "doc-sms-message-status.json", same: "sms-message-status"},
		{name: "sms-message-status-undeliv", file: "sms-message-status-undeliv.json"},
		{name: "sms-message-status-form", file: "sms-message-status-form.txt", req: request{ctype: formType}},
		{name: "sms-message-status-form-put", file: "sms-message-status-form.txt", golden: "sms-message-status-form", req: request{method: http.MethodPut, ctype: formType}},
		{name: "sms-message-status-form-path", file: "sms-message-status-form.txt", golden: "sms-message-status-form", req: request{path: "/hooks/mob/sms:message:status", ctype: formType}},
		{name: "sms-message-status-multipart", golden: "sms-message-status-form", req: request{body: mp, ctype: mpType}},
		{name: "sms-message-status-query", file: "sms-message-status-query.txt", req: request{method: http.MethodGet}},
		{name: "sms-unsubscription-path", file: "sms-unsubscription.json", req: request{path: "/hooks/mob/sms:unsubscription"}},
		{name: "sms-unsubscription-setting", file: "sms-unsubscription.json", golden: "sms-unsubscription-path", opts: Options{Event: "sms:unsubscription"}},

		// WhatsApp: wrapped, the envelope names the event.
		{name: "whatsapp-message-status", file: "whatsapp-message-status.json"},
		{name: "whatsapp-message-status-doc", file: "doc-whatsapp-message-status.json"},
		// The envelope wins over a path segment and the setting.
		{name: "whatsapp-message-status-other-path", file: "whatsapp-message-status.json", golden: "whatsapp-message-status", req: request{path: "/hooks/mob/whatsapp:unsubscription"}},
		{name: "whatsapp-message-status-other-setting", file: "whatsapp-message-status.json", golden: "whatsapp-message-status", opts: Options{Event: "sms:message:status"}},
		{name: "whatsapp-message-in-text", file: "whatsapp-message-in-text.json"},
		{name: "whatsapp-message-in-media", file: "whatsapp-message-in-media.json"},
		{name: "whatsapp-unsubscription-path", file: "whatsapp-unsubscription.json", req: request{path: "/hooks/mob/whatsapp:unsubscription"}},

		// RCS.
		{name: "rcs-message-status", file: "rcs-message-status.json"},
		{name: "rcs-message-in-text", file: "rcs-message-in-text.json"},
		{name: "rcs-message-in-media", file: "rcs-message-in-media.json"},
		{name: "rcs-unsubscription-path", file: "rcs-unsubscription.json", req: request{path: "/hooks/mob/rcs:unsubscription"}},

		// Voice CDRs: by shape and path; the doc's verbatim sample.
		{name: "voice-message-out", file: "voice-message-out.json"},
		{name: "voice-message-out-path", file: "voice-message-out.json", golden: "voice-message-out", req: request{path: "/hooks/mob/voice:message:out"}},
		{name: "voice-message-out-doc", file: "doc-voice-message-out.json"},
		{name: "voice-message-out-query", file: "voice-message-out-query.txt", req: request{method: http.MethodGet}},
		{name: "voice-unsubscription-path", file: "voice-unsubscription.json", req: request{path: "/hooks/mob/voice:unsubscription"}},
		{name: "voice-unsubscription-setting", file: "voice-unsubscription.json", golden: "voice-unsubscription-path", opts: Options{Event: "voice:unsubscription"}},

		// Viber.
		{name: "viber-message-status", file: "viber-message-status.json"},
		{name: "viber-message-in-text", file: "viber-message-in-text.json"},
		{name: "viber-message-in-media", file: "viber-message-in-media.json"},
		{name: "viber-message-in-media-doc", file: "doc-viber-message-in-media.json", same: "viber-message-in-media"},
		{name: "viber-unsubscription-path", file: "viber-unsubscription.json", req: request{path: "/hooks/mob/viber:unsubscription"}},

		// VMN.
		{name: "vmn-message-in", file: "vmn-message-in.json"},

		// Contacts: by shape and path.
		{name: "contacts-created", file: "contacts-created.json"},
		{name: "contacts-updated", file: "contacts-updated.json"},
		{name: "contacts-created-path", file: "contacts-created.json", golden: "contacts-created", req: request{path: "/hooks/mob/contacts:subscriber:subscription"}},
	}
}

func TestGolden(t *testing.T) {
	used := map[string]bool{}
	for _, tc := range goldenCases(t) {
		used[tc.file] = true
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req
			if tc.file != "" {
				content := readFile(t, tc.file)
				if r.method == http.MethodGet {
					r.query = strings.TrimSpace(content)
				} else {
					r.body = content
				}
			}
			got := sourcetest.EventJSON(t, sourcetest.ParseOne(t, newSource(t, tc.opts), r.build()))
			if tc.same != "" {
				sameAs(t, got, filepath.Join("testdata", "golden", tc.same+".json"))
			}
			if tc.golden != "" {
				// Another case owns the file: -update does not rewrite it.
				sourcetest.SameAsGolden(t, filepath.Join("testdata", "golden", tc.golden+".json"), got)
				return
			}
			sourcetest.Golden(t, filepath.Join("testdata", "golden", tc.name+".json"), got)
		})
	}
	entries, _ := os.ReadDir("testdata")
	for _, e := range entries {
		if !e.IsDir() && !used[e.Name()] && e.Name() != "README.md" {
			t.Errorf("testdata/%s has no golden case", e.Name())
		}
	}
}

// sameAs checks that got and the golden file at path are the same JSON.
func sameAs(t *testing.T, got []byte, path string) {
	t.Helper()
	want := sourcetest.ReadFile(t, path)
	var g, w any
	json.Unmarshal(got, &g)
	json.Unmarshal(want, &w)
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("event differs from %s beyond key order:\n got: %s\nwant: %s", path, gb, wb)
	}
}

func TestRejections(t *testing.T) {
	unsub := readFile(t, "sms-unsubscription.json")
	tests := []struct {
		name   string
		opts   Options
		req    request
		status int
		reason string
		msg    string // exact, unless prefix is set
		prefix bool
	}{
		{
			name: "unsubscription without path or setting", req: request{body: unsub},
			status: 400, reason: "ambiguous_event",
			msg: "ambiguous event: the body is an unsubscription, but every product (sms, whatsapp, rcs, voice, viber) sends the same one and nothing in it says which; give each product's webhook its own URL with the event in the path (e.g. /hooks/mob/whatsapp:unsubscription) or set event: on the source",
		},
		{
			name: "body matching two shapes", req: request{body: `{"mobile":"91","status":"DELIVRD","units":1,"credits":"1","bridge":91}`},
			status: 400, reason: "ambiguous_event",
			msg: "ambiguous event: the body looks like sms:message:status and voice:message:out at once; give each webhook its own URL with the event in the path (e.g. /hooks/mob/sms:message:status) or set event: on the source",
		},
		{
			name: "no event", req: request{body: `{"id":"x","status":"ok"}`},
			status: 400, reason: "no_event",
			msg: "no event name: the body is not an {event, payload} envelope and its fields match no MOBtexting event; give each webhook its own URL with the event in the path (e.g. /hooks/mob/sms:message:status) or set event: on the source. Events: " + strings.Join(eventNames, ", "),
		},
		{
			name: "unknown event in the path", req: request{path: "/hooks/mob/sms:message:stauts", body: `{"id":"x"}`},
			status: 400, reason: "unknown_event",
			msg: `unknown event "sms:message:stauts" in the path /hooks/mob/sms:message:stauts; the last path segment must be one of: ` + strings.Join(eventNames, ", "),
		},
		{
			name: "unknown event in the path is refused before the handshake", req: request{path: "/hooks/mob/nope", body: `{"challenge":"c"}`},
			status: 400, reason: "unknown_event", msg: `unknown event "nope" in the path`, prefix: true,
		},
		{
			name: "not JSON", req: request{body: `{"id":`},
			status: 400, reason: "bad_json", msg: "body is not JSON: line 1, column 7: expected a value, found end of input",
		},
		{
			name: "JSON array", req: request{body: `[{"event":"a"}]`},
			status: 400, reason: "bad_json", msg: "body is not a JSON object: it is an array",
		},
		{
			name: "bad form", req: request{body: "id=%zz", ctype: "application/x-www-form-urlencoded"},
			status: 400, reason: "bad_form", msg: `form body is not valid x-www-form-urlencoded: invalid URL escape "%zz"`,
		},
		{
			name: "multipart without boundary", req: request{body: "--x\r\n", ctype: "multipart/form-data"},
			status: 400, reason: "bad_form", msg: "multipart/form-data body without a boundary in its Content-Type",
		},
		{
			name: "bad multipart", req: request{body: "garbage", ctype: "multipart/form-data; boundary=xyz"},
			status: 400, reason: "bad_form", msg: "multipart/form-data body is not valid: ", prefix: true,
		},
		{
			name: "bad query", req: request{method: "GET", query: "id=%zz"},
			status: 400, reason: "bad_query", msg: `query string is not valid: invalid URL escape "%zz"`,
		},
		{
			name: "empty GET", req: request{method: "GET"},
			status: 400, reason: "empty",
			msg: "empty request: no body and no query string; MOBtexting sends a JSON body, or for a composed webhook a form body or query parameters",
		},
		{
			name: "GET with only the verification token", opts: Options{VerifyToken: "vt"}, req: request{method: "GET", query: "token=vt"},
			status: 400, reason: "empty", msg: "empty request: ", prefix: true,
		},
		{
			name: "missing bearer", opts: Options{Secret: "s3cret"}, req: request{body: readFile(t, "whatsapp-message-status.json")},
			status: 401, reason: "auth",
			msg: "missing or wrong bearer token: this source has a secret, so requests must carry Authorization: Bearer <the webhook's secret>",
		},
		{
			name: "wrong bearer", opts: Options{Secret: "s3cret"},
			req:    request{body: readFile(t, "whatsapp-message-status.json"), header: []string{"Authorization", "Bearer s3cre"}},
			status: 401, reason: "auth", msg: "missing or wrong bearer token: ", prefix: true,
		},
		{
			name: "basic instead of bearer", opts: Options{Secret: "s3cret"},
			req:    request{body: readFile(t, "whatsapp-message-status.json"), header: []string{"Authorization", "Basic s3cret"}},
			status: 401, reason: "auth", msg: "missing or wrong bearer token: ", prefix: true,
		},
		{
			name: "auth is checked before the body", opts: Options{Secret: "s3cret"}, req: request{body: `{"id":`},
			status: 401, reason: "auth", msg: "missing or wrong bearer token: ", prefix: true,
		},
		{
			name: "handshake with a wrong token", opts: Options{VerifyToken: "vt-123"},
			req:    request{query: "token=vt-12", body: `{"validation_key":"vk","challenge":"c-1"}`},
			status: 401, reason: "verify_token",
			msg: "verification request refused: its token query parameter is missing or does not match verify_token; give the webhook the same validation token as the source's verify_token",
		},
		{
			name: "handshake without a token", opts: Options{VerifyToken: "vt-123"},
			req:    request{body: `{"validation_key":"vk","challenge":"c-1"}`},
			status: 401, reason: "verify_token", msg: "verification request refused: ", prefix: true,
		},
		{
			name: "query handshake with a wrong token", opts: Options{VerifyToken: "vt-123"},
			req:    request{method: "GET", query: "challenge=c-1&token=nope"},
			status: 401, reason: "verify_token", msg: "verification request refused: ", prefix: true,
		},
		{
			name: "handshake with an object challenge", req: request{body: `{"challenge":{"a":1}}`},
			status: 400, reason: "bad_challenge", msg: "verification request with a challenge that is not a string or a number; nothing to echo",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newSource(t, tc.opts).Parse(tc.req.build())
			re := sourcetest.Rejection(t, err)
			okMsg := re.Msg == tc.msg || tc.prefix && strings.HasPrefix(re.Msg, tc.msg)
			if re.Status != tc.status || re.Reason != tc.reason || !okMsg {
				t.Errorf("got %d %s %q\nwant %d %s %q", re.Status, re.Reason, re.Msg, tc.status, tc.reason, tc.msg)
			}
			if strings.Contains(re.Msg, "s3cret") || strings.Contains(re.Msg, "vt-123") {
				t.Errorf("message leaks a secret: %q", re.Msg)
			}
		})
	}
}

func TestHandshake(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		req  request
		want string
	}{
		{"JSON body", Options{}, request{query: "token=anything", body: `{"validation_key":"vk","challenge":"c-1"}`}, `{"challenge":"c-1"}`},
		{"JSON body, verify_token matches", Options{VerifyToken: "vt-123"}, request{query: "token=vt-123", body: `{"validation_key":"vk","challenge":"c-1"}`}, `{"challenge":"c-1"}`},
		{"numeric challenge stays a number", Options{}, request{body: `{"challenge":918921269123}`}, `{"challenge":918921269123}`},
		{"query, GET", Options{VerifyToken: "vt-123"}, request{method: "GET", query: "challenge=c%202&token=vt-123"}, `{"challenge":"c 2"}`},
		{"query, POST with a body", Options{}, request{query: "challenge=c-3", body: `{"id":"x"}`}, `{"challenge":"c-3"}`},
		{"form body", Options{}, request{body: "challenge=c-4&validation_key=vk", ctype: "application/x-www-form-urlencoded"}, `{"challenge":"c-4"}`},
		{"on an event path", Options{}, request{path: "/hooks/mob/sms:message:status", body: `{"challenge":"c-5"}`}, `{"challenge":"c-5"}`},
		// The platform verifies the URL when the webhook is created, maybe
		// before it attaches the secret; verify_token guards this step.
		{"no bearer needed", Options{Secret: "s3cret"}, request{body: `{"challenge":"c-6"}`}, `{"challenge":"c-6"}`},
		{"no bearer needed, verify_token matches", Options{Secret: "s3cret", VerifyToken: "vt"}, request{query: "token=vt", body: `{"challenge":"c-7"}`}, `{"challenge":"c-7"}`},
		{"escapes", Options{}, request{body: `{"challenge":"<a href=x>\u2028"}`}, `{"challenge":"\u003ca href=x\u003e\u2028"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := newSource(t, tc.opts).Parse(tc.req.build())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if string(res.Reply) != tc.want || len(res.Events) != 0 {
				t.Errorf("reply %s, %d events; want %s and none", res.Reply, len(res.Events), tc.want)
			}
		})
	}
	// An envelope whose payload carries a challenge field is an event.
	res, err := newSource(t, Options{}).Parse(request{body: `{"event":"whatsapp:message:in","payload":{"id":"m1"},"challenge":"x"}`}.build())
	if err != nil || res.Reply != nil || len(res.Events) != 1 {
		t.Errorf("envelope with a challenge key: got %v, %v; want one event", res, err)
	}
}

func TestBearerSecret(t *testing.T) {
	src := newSource(t, Options{Secret: "s3cret"})
	body := readFile(t, "whatsapp-message-status.json")
	for _, h := range []string{"Bearer s3cret", "bearer s3cret", "Bearer  s3cret "} {
		res, err := src.Parse(request{body: body, header: []string{"Authorization", h}}.build())
		if err != nil || len(res.Events) != 1 {
			t.Errorf("Authorization %q: got %v, %v; want the event", h, res, err)
		}
	}
}

func TestIDs(t *testing.T) {
	src := newSource(t, Options{})
	parse := func(path, body string) *router.Event {
		t.Helper()
		res, err := src.Parse(request{path: path, body: body}.build())
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return res.Events[0]
	}
	status := func(st string) string {
		return `{"event":"whatsapp:message:status","payload":{"id":"m-1","status":"` + st + `"}}`
	}
	if a, b := parse("", status("sent")).ID, parse("", status("sent")).ID; a != b || a != "m-1:sent" {
		t.Errorf("retried status: ids %q and %q, want m-1:sent twice", a, b)
	}
	if id := parse("", status("read")).ID; id != "m-1:read" {
		t.Errorf("next status: id %q, want m-1:read", id)
	}
	// Products number their opt-outs separately: the same number is two
	// different events.
	wa := parse("/hooks/mob/whatsapp:unsubscription", `{"id":73,"receiver":"91","type":"all","value":"*"}`).ID
	rcs := parse("/hooks/mob/rcs:unsubscription", `{"id":73,"receiver":"91","type":"all","value":"*"}`).ID
	if wa != "whatsapp:unsubscription:73" || rcs != "rcs:unsubscription:73" {
		t.Errorf("unsubscription ids %q and %q", wa, rcs)
	}
	// Large numbers and phone numbers never take an exponent, and keep
	// every digit.
	for body, want := range map[string]string{
		`{"event":"vmn:message:in","payload":{"id":918921269123}}`:                        "918921269123",
		`{"event":"vmn:message:in","payload":{"id":1e21}}`:                                "1000000000000000000000",
		`{"event":"vmn:message:in","payload":{"id":12345678901234567890123}}`:             "12345678901234567890123",
		`{"bridge":918068281234,"mid":918068281234,"flow_id":1,"status":"ANSWER"}`:        "918068281234:ANSWER",
		`{"event":"sms:message:status","payload":{"id":1.5e3,"status":"DELIVRD"}}`:        "1500:DELIVRD",
		`{"event":"contacts:subscriber:subscription","payload":{"id":86,"status":"x"}}`:   "86:x",
		`{"event":"contacts:subscriber:subscription","payload":{"id":86,"updated_at":1}}`: "86:1",
	} {
		if id := parse("", body).ID; id != want {
			t.Errorf("%s: id %q, want %q", body, id, want)
		}
	}
	// Without an id, the id is a digest of the payload: stable, distinct.
	a := parse("", `{"event":"vmn:message:in","payload":{"text":"a"}}`).ID
	b := parse("", `{"event":"vmn:message:in","payload":{"text":"b"}}`).ID
	if a == b || a != parse("", `{"event":"vmn:message:in","payload":{"text":"a"}}`).ID || len(a) != 32 {
		t.Errorf("derived ids %q, %q", a, b)
	}
	// Contacts: created and each update are distinct events.
	c1 := parse("", readFile(t, "contacts-created.json")).ID
	c2 := parse("", readFile(t, "contacts-updated.json")).ID
	if c1 == c2 {
		t.Errorf("contact created and updated share id %q", c1)
	}
}

func TestTimes(t *testing.T) {
	for in, want := range map[any]string{
		"2021-06-18T14:48:06.886358Z": "2021-06-18T14:48:06.886Z",
		"2021-06-18T20:18:06+05:30":   "2021-06-18T14:48:06.000Z",
		"2021-04-09 16:27:51":         "2021-04-09T16:27:51.000Z",
		"1617985671":                  "2021-04-09T16:27:51.000Z",
		1617985671:                    "2021-04-09T16:27:51.000Z",
		1617985671123:                 "2021-04-09T16:27:51.123Z",
		1617985671.0:                  "2021-04-09T16:27:51.000Z",
	} {
		got, ok, err := parseTime(in)
		if !ok || err != nil || got.Format(router.TimeFormat) != want {
			t.Errorf("parseTime(%v) = %v, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []any{nil, "", "soon", "0001-01-01 0:00:00", "0000-00-00 00:00:00", "1970-01-01T00:00:00Z", "-5", 0, -1, 1e300, "99999999999999999999", true, map[string]any{}} {
		if got, ok, err := parseTime(in); ok || err != nil {
			t.Errorf("parseTime(%v) = %v, %v; want no time and no error", in, got, err)
		}
	}
	// Past the year 9999 in UTC: no time, and an error to log.
	if _, ok, err := parseTime("9999-12-31T23:59:59-23:59"); ok || !errors.Is(err, router.ErrTimeRange) {
		t.Errorf("year 10000: ok %v, err %v", ok, err)
	}
	_, ok, note := eventTime(map[string]any{"delivered_at": "9999-12-31T23:59:59-23:59"}, "delivered")
	if ok || !strings.HasPrefix(note, "payload.delivered_at: ") {
		t.Errorf("year 10000 delivered_at: ok %v, note %q", ok, note)
	}
	// The status's own time wins for read and delivered.
	p := map[string]any{"timestamp": "2021-06-18T14:48:00Z", "read_at": "2021-06-18T14:50:00Z", "delivered_at": "2021-06-18T14:49:00Z"}
	for st, want := range map[string]string{"read": "14:50:00", "delivered": "14:49:00", "sent": "14:48:00"} {
		if got, _, _ := eventTime(p, st); got.Format(time.TimeOnly) != want {
			t.Errorf("status %s: time %v, want %s", st, got, want)
		}
	}
}

func TestCatalog(t *testing.T) {
	evs := (&Options{}).Events()
	if len(evs) != 15 {
		t.Fatalf("Events() has %d events, want the 15 of the events page", len(evs))
	}
	for _, ev := range evs {
		_, sts, ok := router.KnownStatuses([]string{ev})
		switch {
		case ev == "voice:message:out":
			if ok {
				t.Errorf("voice:message:out is declared; its statuses are undocumented, so it must not be")
			}
		case strings.HasSuffix(ev, ":message:in"):
			if !ok || len(sts) != 0 {
				t.Errorf("%s: declared %v, %v; want declared with no status", ev, ok, sts)
			}
		case !ok || len(sts) == 0:
			t.Errorf("%s: not declared with its statuses", ev)
		}
	}
	_, sts, _ := router.KnownStatuses([]string{"sms:message:status"})
	for _, st := range []string{"DELIVRD", "UNDELIV", "DLT-SENDER-NOT-REG-TM", "AWAITING-DLR"} {
		if !sts[st] {
			t.Errorf("sms:message:status lacks %s", st)
		}
	}
	_, sts, _ = router.KnownStatuses([]string{"*:unsubscription"})
	if len(sts) != 1 || !sts[unsubscribed] {
		t.Errorf("unsubscription statuses %v", sts)
	}
}

func TestBuild(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Event: "sms:status"}, `event: "sms:status" is not a MOBtexting event; use one of: ` + strings.Join(eventNames, ", ")},
		{Options{Secret: "s3cret\n"}, "secret: has leading or trailing spaces, which the platform would not send; remove them"},
	} {
		_, err := tc.opts.Build(sources.Info{Name: "mob"})
		var ps config.Problems
		if !errors.As(err, &ps) || err.Error() != tc.want {
			t.Errorf("Build(%+v) = %v\nwant %s", tc.opts, err, tc.want)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("problem leaks the secret")
		}
	}
	src := newSource(t, Options{})
	if !slices.Equal(src.Methods(), []string{"GET", "POST", "PUT"}) || !src.TakesSubpath() {
		t.Errorf("methods %v, subpath %v", src.Methods(), src.TakesSubpath())
	}
}

func TestVerifyTokenIsNotPayload(t *testing.T) {
	src := newSource(t, Options{VerifyToken: "vt-123"})
	res, err := src.Parse(request{method: "GET", query: "token=vt-123&" + strings.TrimSpace(readFile(t, "sms-message-status-query.txt"))}.build())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Events[0].Payload["token"]; ok || bytes.Contains(res.Events[0].RawPayload, []byte("vt-123")) {
		t.Errorf("payload keeps the verification token: %s", res.Events[0].RawPayload)
	}
}

func TestBodyIsKept(t *testing.T) {
	body := readFile(t, "whatsapp-message-status.json")
	res, err := newSource(t, Options{}).Parse(request{body: body}.build())
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Events[0].Body) != body {
		t.Errorf("Body is not the request body as received")
	}
	b := res.Events[0].RawPayload
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte(`{`)) || !bytes.Contains(b, []byte(`"foreign_id": "your-business-identifier"`)) {
		t.Errorf("RawPayload is not the inner object as sent: %s", b)
	}
}
