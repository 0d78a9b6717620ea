package telecmi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
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
var received = time.Date(2026, 11, 23, 8, 0, 0, 125e6, time.UTC)

const testToken = "0123456789abcdef0123"

func build(t testing.TB, raw map[string]any) *Source {
	t.Helper()
	return sourcetest.Build[*Source](t, "telecmi", "telecmi", raw)
}

// request builds a request to target (a path with an optional query) with
// headers given as name, value pairs; subpath is what the host would pass.
func request(method, target, subpath string, body []byte, header ...string) *sources.Request {
	r := sourcetest.Request(method, target, body, header...)
	r.ReceivedAt, r.Source, r.Subpath = received, "telecmi", subpath
	return r
}

func jsonRequest(body []byte) *sources.Request {
	return request(http.MethodPost, "/hooks/telecmi", "", body, "Content-Type", "application/json")
}

func formRequest(body []byte) *sources.Request {
	return request(http.MethodPost, "/hooks/telecmi", "", body, "Content-Type", "application/x-www-form-urlencoded")
}

func queryRequest(query string) *sources.Request {
	return request(http.MethodGet, "/hooks/telecmi?"+query, "", nil)
}

// docSamples are TeleCMI's own printed samples (JavaScript object
// literals), by leg. Leg a is the one shipped in examples/telecmi: the
// example is the sample under test, not a copy of it.
var docSamples = []struct{ leg, file string }{
	{"a", "../../examples/telecmi/doc-live-outgoing-answered-leg-a.js"},
	{"b", "testdata/doc/live-outgoing-answered-leg-b.js"},
}

// sample is one testdata payload and how it is sent.
type sample struct {
	file, golden string
	req          func(b []byte) *sources.Request
}

func samples(t *testing.T) []sample {
	t.Helper()
	var out []sample
	add := func(pattern, suffix string, req func([]byte) *sources.Request) {
		files, err := filepath.Glob(pattern)
		if err != nil || len(files) == 0 {
			t.Fatalf("no samples match %s", pattern)
		}
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
			out = append(out, sample{f, filepath.Join("testdata", "golden", name+suffix+".json"), req})
		}
	}
	add("testdata/*.json", "", jsonRequest)
	add("testdata/form/*.txt", ".form", formRequest)
	add("testdata/query/*.txt", ".query", func(b []byte) *sources.Request { return queryRequest(string(bytes.TrimSpace(b))) })
	for _, d := range docSamples {
		out = append(out, sample{d.file, filepath.Join("testdata", "golden", "live-outgoing-answered-leg-"+d.leg+".doc.json"), jsonRequest})
	}
	return out
}

// Every sample, in every transport, becomes the event in its golden file.
func TestGolden(t *testing.T) {
	s := build(t, nil)
	for _, sm := range samples(t) {
		t.Run(strings.TrimSuffix(filepath.Base(sm.golden), ".json"), func(t *testing.T) {
			ev := sourcetest.ParseOne(t, s, sm.req(sourcetest.ReadFile(t, sm.file)))
			sourcetest.Golden(t, sm.golden, sourcetest.EventJSON(t, ev))
		})
	}
}

// The same notification sent as JSON, form or query gives the same id,
// event, status and time, and the same payload up to number-vs-string.
func TestTransportsAgree(t *testing.T) {
	s := build(t, nil)
	files, _ := filepath.Glob("testdata/*.json")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			j := sourcetest.ReadFile(t, f)
			q := sourcetest.ReadFile(t, filepath.Join("testdata", "query", name+".txt"))
			fm := sourcetest.ReadFile(t, filepath.Join("testdata", "form", name+".txt"))
			evs := []*router.Event{
				sourcetest.ParseOne(t, s, jsonRequest(j)),
				sourcetest.ParseOne(t, s, formRequest(fm)),
				sourcetest.ParseOne(t, s, queryRequest(string(bytes.TrimSpace(q)))),
			}
			for _, ev := range evs[1:] {
				if ev.ID != evs[0].ID || ev.Event != evs[0].Event || ev.Status != evs[0].Status || !ev.Time.Equal(evs[0].Time) {
					t.Errorf("got %s %s %s %v, want %s %s %s %v", ev.ID, ev.Event, ev.Status, ev.Time, evs[0].ID, evs[0].Event, evs[0].Status, evs[0].Time)
				}
				if got, want := asText(ev.Payload), asText(evs[0].Payload); !reflect.DeepEqual(got, want) {
					t.Errorf("payload\n got %v\nwant %v", got, want)
				}
			}
		})
	}
}

func asText(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, c := range t {
			m[k] = asText(c)
		}
		return m
	}
	return router.String(v)
}

// The seed's JavaScript-literal sample and its strict JSON form agree.
func TestDocSampleMatchesJSON(t *testing.T) {
	s := build(t, nil)
	for _, d := range docSamples {
		doc := sourcetest.ReadFile(t, d.file)
		js := sourcetest.ReadFile(t, "testdata/live-outgoing-answered-leg-"+d.leg+".json")
		a, b := sourcetest.ParseOne(t, s, jsonRequest(doc)), sourcetest.ParseOne(t, s, jsonRequest(js))
		if a.ID != b.ID || !reflect.DeepEqual(a.Payload, b.Payload) {
			t.Errorf("leg %s: doc sample gives %s %v, JSON gives %s %v", d.leg, a.ID, a.Payload, b.ID, b.Payload)
		}
	}
}

func TestIDs(t *testing.T) {
	s := build(t, nil)
	tests := []struct{ file, id string }{
		{"live-outgoing-answered-leg-a", "ccd826f9-67a4-4467-acfb-a53093ff5c9d:a:event:answered"},
		{"live-outgoing-answered-leg-b", "81b3d612-3473-4ac3-ba6e-030ee508036f:b:event:answered"},
		{"live-incoming-waiting", "5b7c1e0a-2f4d-4c1b-9e0f-6a1d2c3b4a50:a:event:waiting"},
		{"live-incoming-answered", "5b7c1e0a-2f4d-4c1b-9e0f-6a1d2c3b4a50:a:event:answered"},
		{"cdr-incoming-answered", "5b7c1e0a-2f4d-4c1b-9e0f-6a1d2c3b4a50:cdr:answered"},
		{"cdr-outgoing-answered-leg-a", "ccd826f9-67a4-4467-acfb-a53093ff5c9d:a:cdr:answered"},
		{"live-outgoing-ringing-2019", "a1f0c2d3-4e5f-4a6b-8c7d-9e0f1a2b3c4d:event:ringing"},
	}
	for _, tt := range tests {
		b := sourcetest.ReadFile(t, "testdata/"+tt.file+".json")
		if ev := sourcetest.ParseOne(t, s, jsonRequest(b)); ev.ID != tt.id {
			t.Errorf("%s: id %q, want %q", tt.file, ev.ID, tt.id)
		}
	}
}

// Without cmiuuid the id is derived from the payload: the same for a
// resend (whatever the parameter order), different for another payload.
func TestDerivedID(t *testing.T) {
	s := build(t, nil)
	a := sourcetest.ParseOne(t, s, queryRequest("type=cdr&status=missed&from=442000000002&time=1650636000000"))
	b := sourcetest.ParseOne(t, s, queryRequest("time=1650636000000&from=442000000002&status=missed&type=cdr"))
	c := sourcetest.ParseOne(t, s, jsonRequest([]byte(`{"type":"cdr","status":"missed","from":"442000000002","time":1650636000000}`)))
	d := sourcetest.ParseOne(t, s, queryRequest("type=cdr&status=missed&from=442000000003&time=1650636000000"))
	if a.ID != b.ID || a.ID != c.ID {
		t.Errorf("same notification, ids %s %s %s", a.ID, b.ID, c.ID)
	}
	if a.ID == d.ID {
		t.Errorf("different notifications share id %s", a.ID)
	}
}

func TestNormalization(t *testing.T) {
	s := build(t, nil)
	tests := []struct {
		name string
		req  *sources.Request
		want map[string]any
	}{
		{"appid becomes app_id too, digits become a number",
			queryRequest("type=cdr&appid=2223343"),
			map[string]any{"type": "cdr", "appid": 2223343, "app_id": 2223343}},
		{"app_id wins over appid",
			jsonRequest([]byte(`{"type":"cdr","appid":1,"app_id":2}`)),
			map[string]any{"type": "cdr", "appid": 1, "app_id": 2}},
		{"cmiuid becomes cmiuuid too",
			jsonRequest([]byte(`{"type":"event","cmiuid":"u1"}`)),
			map[string]any{"type": "event", "cmiuid": "u1", "cmiuuid": "u1"}},
		{"phone fields keep their type; query digits stay strings",
			queryRequest("type=cdr&from=0442000000002&to=%2B442000000001&virtual_number=442000000000&callerid=442000000000"),
			map[string]any{"type": "cdr", "from": "0442000000002", "to": "+442000000001", "virtual_number": "442000000000", "callerid": "442000000000"}},
		{"JSON numbers for phone fields stay numbers",
			jsonRequest([]byte(`{"type":"cdr","from":442000000002,"to":"442000000001"}`)),
			map[string]any{"type": "cdr", "from": 442000000002, "to": "442000000001"}},
		{"boolean strings become booleans",
			queryRequest("type=cdr&record=true&voicemail=FALSE&click_to_call=True"),
			map[string]any{"type": "cdr", "record": true, "voicemail": false, "click_to_call": true}},
		{"other boolean-ish strings stay",
			jsonRequest([]byte(`{"type":"cdr","record":"yes","voicemail":true}`)),
			map[string]any{"type": "cdr", "record": "yes", "voicemail": true}},
		{"numeric fields from text",
			formRequest([]byte("type=cdr&time=1650636000000&answeredsec=56&waitedsec=21")),
			map[string]any{"type": "cdr", "time": 1650636000000, "answeredsec": 56, "waitedsec": 21}},
		{"non-numeric numeric fields stay text",
			formRequest([]byte("type=cdr&time=yesterday&answeredsec=-1")),
			map[string]any{"type": "cdr", "time": "yesterday", "answeredsec": "-1"}},
		{"JSON in custom and extra_params is parsed, the text kept",
			queryRequest(`type=event&custom=%7B%22crm%22%3A%22true%22%7D&extra_params=%7Bclick2call%3A%27true%27%7D`),
			map[string]any{"type": "event", "custom": map[string]any{"crm": "true"}, "custom_raw": `{"crm":"true"}`,
				"extra_params": map[string]any{"click2call": "true"}, "extra_params_raw": `{click2call:'true'}`}},
		{"custom that is not an object stays text",
			jsonRequest([]byte(`{"type":"event","custom":"order 42","extra_params":"{broken"}`)),
			map[string]any{"type": "event", "custom": "order 42", "extra_params": "{broken"}},
		{"custom already an object stays",
			jsonRequest([]byte(`{"type":"event","custom":{"crm":true}}`)),
			map[string]any{"type": "event", "custom": map[string]any{"crm": true}}},
		{"custom_raw sent by the caller is not overwritten",
			jsonRequest([]byte(`{"type":"event","custom":"{\"a\":1}","custom_raw":"mine"}`)),
			map[string]any{"type": "event", "custom": map[string]any{"a": 1}, "custom_raw": "mine"}},
		{"the token query parameter is not payload",
			queryRequest("type=event&token=abc&status=started"),
			map[string]any{"type": "event", "status": "started"}},
		{"repeated parameters: the first wins",
			queryRequest("type=event&status=started&status=answered"),
			map[string]any{"type": "event", "status": "started"}},
		{"POST without a body reads the query",
			request(http.MethodPost, "/hooks/telecmi?type=cdr&status=missed", "", nil),
			map[string]any{"type": "cdr", "status": "missed"}},
		{"form body without a content type",
			request(http.MethodPost, "/hooks/telecmi", "", []byte("type=cdr&status=missed")),
			map[string]any{"type": "cdr", "status": "missed"}},
		{"JSON body whatever the content type",
			request(http.MethodPost, "/hooks/telecmi", "", []byte(`{"type":"cdr"}`), "Content-Type", "application/x-www-form-urlencoded"),
			map[string]any{"type": "cdr"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := sourcetest.ParseOne(t, s, tt.req)
			if !reflect.DeepEqual(ev.Payload, tt.want) {
				t.Errorf("payload\n got %#v\nwant %#v", ev.Payload, tt.want)
			}
			var fromRaw map[string]any
			if err := json.Unmarshal(ev.RawPayload, &fromRaw); err != nil {
				t.Fatalf("RawPayload %s: %v", ev.RawPayload, err)
			}
			if got, want := asText(fromRaw), asText(ev.Payload); !reflect.DeepEqual(got, want) {
				t.Errorf("RawPayload %s does not match the payload %v", ev.RawPayload, ev.Payload)
			}
		})
	}
}

func TestEventFields(t *testing.T) {
	s := build(t, nil)
	ev := sourcetest.ParseOne(t, s, jsonRequest([]byte(`{"type":"CDR","status":"missed","time":1650636000123}`)))
	if ev.Event != EventCDR || ev.Status != "missed" || !ev.Time.Equal(time.UnixMilli(1650636000123)) {
		t.Errorf("got %s %s %v", ev.Event, ev.Status, ev.Time)
	}
	ev = sourcetest.ParseOne(t, s, jsonRequest([]byte(`{"type":"event","time":1650636000}`)))
	if ev.Status != "" || !ev.Time.Equal(time.Unix(1650636000, 0)) {
		t.Errorf("status %q time %v; want no status and the time read as seconds", ev.Status, ev.Time)
	}
	// An unusable time gives the receipt time, and a note the ingest
	// pipeline logs at warn (issue 10.1), with the field and the value.
	for _, bad := range []string{`"soon"`, `99999999999999999`, `-5`, `1e300`} {
		ev = sourcetest.ParseOne(t, s, jsonRequest([]byte(`{"type":"event","time":`+bad+`}`)))
		if !ev.Time.Equal(received) || !strings.HasPrefix(ev.TimeNote, "payload.time: ") {
			t.Errorf("time %s: %v, note %q; want the receipt time and a note", bad, ev.Time, ev.TimeNote)
		}
	}
	if ev = sourcetest.ParseOne(t, s, jsonRequest([]byte(`{"type":"event"}`))); ev.TimeNote != "" {
		t.Errorf("no time field: note %q, want none", ev.TimeNote)
	}
	// A strict body that needs no normalization is kept verbatim.
	body := []byte(`{"type":"event", "status":"hangup", "app_id":1}`)
	ev = sourcetest.ParseOne(t, s, jsonRequest(body))
	if !bytes.Equal(ev.RawPayload, body) || !bytes.Equal(ev.Body, body) {
		t.Errorf("RawPayload %s Body %s, want the body verbatim", ev.RawPayload, ev.Body)
	}
	// A GET has no body to forward: the token is in its URL.
	ev = sourcetest.ParseOne(t, s, queryRequest("type=event"))
	if ev.Body != nil {
		t.Errorf("GET event Body %q, want nil", ev.Body)
	}
}

func TestRejections(t *testing.T) {
	open := build(t, nil)
	locked := build(t, map[string]any{"token": testToken})
	fenced := build(t, map[string]any{"allow_ips": []any{"203.0.113.0/24", "2001:db8::1"}})
	proxied := build(t, map[string]any{"allow_ips": []any{"203.0.113.0/24"}, "trust_forwarded_for": true})
	from := func(req *sources.Request, addr string) *sources.Request { req.HTTP.RemoteAddr = addr; return req }
	tests := []struct {
		name   string
		src    *Source
		req    *sources.Request
		status int
		reason string
		msg    string
	}{
		{"no type", open, jsonRequest([]byte(`{"status":"answered"}`)), 400, "no_event",
			`no "type" field: TeleCMI marks live events with type "event" and call records with type "cdr"; check that this request comes from TeleCMI`},
		{"unknown type", open, queryRequest("type=call&status=answered"), 400, "no_event",
			`the "type" field is "call"; TeleCMI sends "event" (live events) or "cdr" (call records)`},
		{"GET without parameters", open, queryRequest(""), 400, "empty",
			"the request carries no event: TeleCMI sends it as a JSON or form body (POST) or as query parameters (GET)"},
		{"GET with only the token", locked, queryRequest("token=" + testToken), 400, "empty",
			"the request carries no event: TeleCMI sends it as a JSON or form body (POST) or as query parameters (GET)"},
		{"bad query escape", open, queryRequest("type=event&status=%zz"), 400, "bad_query",
			`the query string cannot be read: invalid URL escape "%zz"`},
		{"bad form escape", open, formRequest([]byte("type=event&status=%zz")), 400, "bad_form",
			`the form body cannot be read: invalid URL escape "%zz"`},
		{"JSON array", open, jsonRequest([]byte(`[{"type":"event"}]`)), 400, "bad_json",
			"body is not a JSON object: it is an array"},
		{"broken JSON", open, jsonRequest([]byte("{\n type: 'event'\n status: 'x'}")), 400, "bad_json",
			`body is not JSON: line 3, column 2: expected ',' or '}' after the value of key "type", found "status"`},
		{"not JSON, not a form", open, jsonRequest([]byte("hello")), 400, "bad_json",
			"body is not JSON: line 1, column 1: unquoted word \"hello\"; quote strings, and write true, false and null in lower case"},
		{"missing token", locked, queryRequest("type=event"), 401, "auth",
			"missing token: end the webhook URL with the source's token (/hooks/telecmi/<token>) or add ?token=<token>"},
		{"wrong token in the path", locked, request(http.MethodGet, "/hooks/telecmi/nope?type=event", "nope", nil), 401, "auth",
			"wrong token in the URL path; the webhook URL must end in the source's token: /hooks/telecmi/<token>"},
		{"wrong token in the query", locked, queryRequest("type=event&token=" + testToken + "x"), 401, "auth",
			"wrong token query parameter; it must equal the source's token"},
		{"empty token in the query", locked, queryRequest("type=event&token="), 401, "auth",
			"wrong token query parameter; it must equal the source's token"},
		{"token checked before the body is read", locked, jsonRequest([]byte(`garbage`)), 401, "auth",
			"missing token: end the webhook URL with the source's token (/hooks/telecmi/<token>) or add ?token=<token>"},
		{"address not allowed", fenced, from(queryRequest("type=event"), "198.51.100.7:4444"), 403, "ip",
			"client address 198.51.100.7 (from the connection) is not in allow_ips; add it if this is TeleCMI"},
		{"IPv6 address not allowed", fenced, from(queryRequest("type=event"), "[2001:db8::2]:4444"), 403, "ip",
			"client address 2001:db8::2 (from the connection) is not in allow_ips; add it if this is TeleCMI"},
		{"X-Forwarded-For ignored unless trusted", fenced,
			from(request(http.MethodGet, "/hooks/telecmi?type=event", "", nil, "X-Forwarded-For", "203.0.113.9"), "198.51.100.7:4444"), 403, "ip",
			"client address 198.51.100.7 (from the connection) is not in allow_ips; add it if this is TeleCMI"},
		{"trusted X-Forwarded-For not allowed", proxied,
			from(request(http.MethodGet, "/hooks/telecmi?type=event", "", nil, "X-Forwarded-For", "198.51.100.7, 203.0.113.9"), "203.0.113.1:4444"), 403, "ip",
			"client address 198.51.100.7 (from X-Forwarded-For) is not in allow_ips; add it if this is TeleCMI"},
		{"trusted X-Forwarded-For unreadable", proxied,
			from(request(http.MethodGet, "/hooks/telecmi?type=event", "", nil, "X-Forwarded-For", "unknown"), "203.0.113.1:4444"), 403, "ip",
			`cannot read the client address from X-Forwarded-For ("unknown" is not an IP address)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.src.Parse(tt.req)
			re := sourcetest.Rejection(t, err)
			if re.Status != tt.status || re.Reason != tt.reason || re.Msg != tt.msg {
				t.Errorf("got %d %s %q\nwant %d %s %q", re.Status, re.Reason, re.Msg, tt.status, tt.reason, tt.msg)
			}
			if strings.Contains(re.Msg, testToken) {
				t.Errorf("message %q repeats the token", re.Msg)
			}
		})
	}
}

func TestAuthAccepts(t *testing.T) {
	locked := build(t, map[string]any{"token": testToken})
	both := build(t, map[string]any{"token": testToken, "allow_ips": []any{"203.0.113.0/24", "2001:db8::/32"}})
	proxied := build(t, map[string]any{"allow_ips": []any{"203.0.113.7"}, "trust_forwarded_for": true})
	from := func(req *sources.Request, addr string) *sources.Request { req.HTTP.RemoteAddr = addr; return req }
	body := []byte(`{"type":"event","status":"answered"}`)
	tests := []struct {
		name string
		src  *Source
		req  *sources.Request
	}{
		{"token in the path, POST", locked, request(http.MethodPost, "/hooks/telecmi/"+testToken, testToken, body)},
		{"token in the path, GET", locked, request(http.MethodGet, "/hooks/telecmi/"+testToken+"?type=event", testToken, nil)},
		{"token in the query, GET", locked, queryRequest("type=event&token=" + testToken)},
		{"token in the query, POST", locked, request(http.MethodPost, "/hooks/telecmi?token="+testToken, "", body)},
		{"right query token despite a wrong path segment", locked, request(http.MethodGet, "/hooks/telecmi/x?type=event&token="+testToken, "x", nil)},
		{"token and allowed IPv4", both, from(request(http.MethodPost, "/hooks/telecmi/"+testToken, testToken, body), "203.0.113.200:1234")},
		{"token and allowed IPv6", both, from(request(http.MethodPost, "/hooks/telecmi/"+testToken, testToken, body), "[2001:db8::7]:1234")},
		{"IPv4-mapped IPv6 peer", both, from(request(http.MethodPost, "/hooks/telecmi/"+testToken, testToken, body), "[::ffff:203.0.113.5]:1234")},
		{"trusted X-Forwarded-For", proxied,
			from(request(http.MethodPost, "/hooks/telecmi", "", body, "X-Forwarded-For", " 203.0.113.7 , 10.0.0.1"), "10.0.0.2:1234")},
		{"trusted proxy without X-Forwarded-For: the peer counts", proxied,
			from(request(http.MethodPost, "/hooks/telecmi", "", body), "203.0.113.7:1234")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := sourcetest.ParseOne(t, tt.src, tt.req)
			if _, leaked := ev.Payload["token"]; leaked {
				t.Errorf("token in the payload: %v", ev.Payload)
			}
		})
	}
}

func TestBuildProblems(t *testing.T) {
	tests := []struct {
		name string
		raw  map[string]any
		want []string
	}{
		{"short token", map[string]any{"token": "s3cret"},
			[]string{"token: is 6 characters long; use at least 16 random characters (e.g. the output of `openssl rand -hex 16`), as the token is the only secret"}},
		{"token needing escapes", map[string]any{"token": "0123456789abcdef/xyz"},
			[]string{"token: holds characters that would need escaping in a URL; use only letters, digits, '-', '_', '.' and '~' (e.g. the output of `openssl rand -hex 16`)"}},
		{"bad addresses", map[string]any{"allow_ips": []any{"203.0.113.7", "203.0.113.0/33", "telecmi.com", "10.0.0.0/8"}},
			[]string{
				`allow_ips[1]: "203.0.113.0/33" is not an IP address or CIDR prefix; write it like 203.0.113.7, 203.0.113.0/24 or 2001:db8::/32`,
				`allow_ips[2]: "telecmi.com" is not an IP address or CIDR prefix; write it like 203.0.113.7, 203.0.113.0/24 or 2001:db8::/32`,
			}},
		{"trust without a list", map[string]any{"trust_forwarded_for": true},
			[]string{"trust_forwarded_for: is true but allow_ips is empty, so no address is checked; list TeleCMI's addresses in allow_ips or remove trust_forwarded_for"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sourcetest.BuildErr("telecmi", "telecmi", tt.raw)
			var ps config.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("got %v, want problems", err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.Error())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("problems repeat the token: %v", err)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	open, locked := build(t, nil), build(t, map[string]any{"token": testToken})
	if open.TakesSubpath() || !locked.TakesSubpath() {
		t.Errorf("TakesSubpath: open %v, locked %v; want false, true", open.TakesSubpath(), locked.TakesSubpath())
	}
	if got := open.Methods(); !slices.Equal(got, []string{"GET", "POST"}) {
		t.Errorf("Methods %v", got)
	}
	if got := (&Options{}).Events(); !slices.Equal(got, []string{EventLive, EventCDR}) {
		t.Errorf("Events %v", got)
	}
	_, sts, ok := router.KnownStatuses([]string{"telecmi:*"})
	for _, st := range []string{"waiting", "started", "ringing", "answered", "hangup", "missed"} {
		if !ok || !sts[st] {
			t.Errorf("status %s not declared for telecmi events", st)
		}
	}
}

func fuzzSeeds(f *testing.F, glob string) {
	files, _ := filepath.Glob(glob)
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
}

// check runs one fuzzed request: it must not panic, and an accepted event
// must be well formed.
func check(t *testing.T, s *Source, req *sources.Request) {
	res, err := s.Parse(req)
	if err != nil {
		if re := sourcetest.Rejection(t, err); re.Status < 400 || re.Status > 499 || re.Msg == "" {
			t.Fatalf("error %v is not a 4xx rejection", err)
		}
		return
	}
	ev := res.Events[0]
	if ev.ID == "" || (ev.Event != EventLive && ev.Event != EventCDR) {
		t.Fatalf("event %+v", ev)
	}
	if _, err := ev.MarshalJSON(); err != nil {
		t.Fatalf("event cannot be written: %v", err)
	}
}

// fuzzParse fuzzes s with the requests req makes of the fuzzed bytes.
func fuzzParse(f *testing.F, s *Source, req func(b []byte) *sources.Request) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 16<<10 {
			return
		}
		check(t, s, req(b))
	})
}

func FuzzParseJSON(f *testing.F) {
	fuzzSeeds(f, "testdata/*.json")
	for _, d := range docSamples {
		fuzzSeeds(f, d.file)
	}
	fuzzParse(f, build(f, nil), jsonRequest)
}

func FuzzParseForm(f *testing.F) {
	fuzzSeeds(f, "testdata/form/*.txt")
	fuzzParse(f, build(f, nil), formRequest)
}

func FuzzParseQuery(f *testing.F) {
	fuzzSeeds(f, "testdata/query/*.txt")
	fuzzParse(f, build(f, map[string]any{"token": testToken}), func(b []byte) *sources.Request {
		r := httptest.NewRequest(http.MethodGet, "/hooks/telecmi", nil)
		r.URL.RawQuery = string(b) + "&token=" + testToken
		return &sources.Request{HTTP: r, ReceivedAt: received, Source: "telecmi"}
	})
}
