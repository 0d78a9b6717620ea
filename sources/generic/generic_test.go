package generic_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"switchboard/router"
	"switchboard/sources"
	"switchboard/sources/generic"
	"switchboard/sources/sourcetest"
)

var received = time.Date(2026, 11, 23, 7, 0, 0, 125e6, time.UTC)

// build makes a generic source named app with the registry's defaults and
// the settings opts.
func build(t *testing.T, opts map[string]any) *generic.Source {
	t.Helper()
	return sourcetest.Build[*generic.Source](t, "generic", "app", opts)
}

func parse(s *generic.Source, body string, header ...string) (*sources.Result, error) {
	r := sourcetest.Request(http.MethodPost, "/hooks/app", []byte(body), header...)
	r.ReceivedAt, r.Source = received, "app"
	return s.Parse(r)
}

func TestNormalization(t *testing.T) {
	tests := []struct {
		name string
		opts map[string]any
		body string
		want string // normalized event JSON
	}{
		{"defaults read event, status and id at the root", nil,
			`{"event":"order.failed","status":"failed","id":"o-1","n":12345678901234567}`,
			`{"id":"o-1","source":"app","event":"order.failed","status":"failed","time":"2026-11-23T07:00:00.125Z","received_at":"2026-11-23T07:00:00.125Z","payload":{"event":"order.failed","status":"failed","id":"o-1","n":12345678901234567}}`},
		{"no status: omitted; numeric id verbatim", nil,
			`{"event":"ping","id":42}`,
			`{"id":"42","source":"app","event":"ping","time":"2026-11-23T07:00:00.125Z","received_at":"2026-11-23T07:00:00.125Z","payload":{"event":"ping","id":42}}`},
		{"dotted paths into an envelope", map[string]any{"status_field": "payload.status", "id_field": "payload.id"},
			`{"event":"voice.outbound","payload":{"id":"c1","status":"busy"}}`,
			`{"id":"c1","source":"app","event":"voice.outbound","status":"busy","time":"2026-11-23T07:00:00.125Z","received_at":"2026-11-23T07:00:00.125Z","payload":{"event":"voice.outbound","payload":{"id":"c1","status":"busy"}}}`},
		{"a constant event and a time field", map[string]any{"event": "deploy", "time_field": "at"},
			`{"at":"2026-11-20T10:00:00Z","id":"d1"}`,
			`{"id":"d1","source":"app","event":"deploy","time":"2026-11-20T10:00:00.000Z","received_at":"2026-11-23T07:00:00.125Z","payload":{"at":"2026-11-20T10:00:00Z","id":"d1"}}`},
		{"epoch milliseconds as time", map[string]any{"time_field": "ts"},
			`{"event":"e","ts":1650635340436,"id":"t"}`,
			`{"id":"t","source":"app","event":"e","time":"2022-04-22T13:49:00.436Z","received_at":"2026-11-23T07:00:00.125Z","payload":{"event":"e","ts":1650635340436,"id":"t"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := parse(build(t, tc.opts), tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 1 {
				t.Fatalf("%d events", len(res.Events))
			}
			got, _ := res.Events[0].MarshalJSON()
			if string(got) != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestDerivedIDIsStableAndDistinct(t *testing.T) {
	s := build(t, nil)
	a1, _ := parse(s, `{"event":"e","x":1}`)
	a2, _ := parse(s, `{"event":"e","x":1}`)
	b, _ := parse(s, `{"event":"e","x":2}`)
	if a1.Events[0].ID != a2.Events[0].ID || a1.Events[0].ID == b.Events[0].ID || len(a1.Events[0].ID) != 32 {
		t.Errorf("ids %q %q %q", a1.Events[0].ID, a2.Events[0].ID, b.Events[0].ID)
	}
}

// Issue 10.2: an id keeps the digits it was sent with, whatever the body's
// form: numbers that differ in their text are different events.
func TestNumericIDsAreTheirText(t *testing.T) {
	s := build(t, map[string]any{"id_field": "m.id"})
	for _, tc := range []struct{ body, want string }{
		{`{"event":"e","m":{"id":12345678901234567891}}`, "12345678901234567891"},
		{`{"event":"e","m":{"id":1.0}}`, "1.0"},
		{`{"event":"e","m":{"id":1}}`, "1"},
		{`{"event":"e","m":{"id":1e2}}`, "1e2"},
		{`{"event":"e","m":{"id":0.10}}`, "0.10"},
		{`{"event":"e","m":{"id":-0}}`, "-0"},
		{`{"event":"e","m":{"id":"1.0"}}`, "1.0"},
		{`{event:'e',m:{id:1.0,},}`, "1.0"},                                         // relaxed
		{`[{"event":"e","m":{"id":1.50}}]`, "1.50"},                                 // a batch
		{`{"event":"e","m":{"id":1},"m":{"id":2.0}}`, "2.0"},                        // the last of a repeated key
		{`[{event:'e',m:{id:99999999999999999999999}}]`, "99999999999999999999999"}, // relaxed batch
		{`{"event":"e","m":{"id":"a\"b\u00e9"}}`, `a"bé`},                           // escapes decoded
		{`{"event":"e","m":{"id":true}}`, "true"},
		{`{"event":"e","m":{"id":null}}`, ""}, // none: derived below
	} {
		res, err := parse(s, tc.body)
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if got := res.Events[0].ID; got != tc.want && (tc.want != "" || len(got) != 32) {
			t.Errorf("%s: id %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestBatch(t *testing.T) {
	res, err := parse(build(t, nil), `[{"event":"a","id":"1"}, {"event":"b","id":"2"}]`)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 2 || res.Events[0].Event != "a" || res.Events[1].ID != "2" {
		t.Fatalf("events = %+v", res.Events)
	}
	if string(res.Events[1].RawPayload) != `{"event":"b","id":"2"}` {
		t.Errorf("raw payload of element 1 = %s", res.Events[1].RawPayload)
	}
}

func TestRejections(t *testing.T) {
	bearer := build(t, map[string]any{"auth": map[string]any{"bearer_token": "s3cret"}})
	basic := build(t, map[string]any{"auth": map[string]any{"username": "u", "password": "p"}})
	plain := build(t, nil)
	tests := []struct {
		name   string
		s      *generic.Source
		body   string
		header []string
		status int
		msg    string
		// challenge is the WWW-Authenticate of a 401.
		challenge string
	}{
		{"empty", plain, "  ", nil, 400, "empty body; send a JSON object (one event) or an array of objects (a batch)", ""},
		{"not json", plain, "hello", nil, 400, `body is not JSON: line 1, column 1: unquoted word "hello"; quote strings, and write true, false and null in lower case`, ""},
		{"relaxed", plain, "{event: 'a', id: 'r1',}", nil, 0, "", ""},
		{"a string", plain, `"x"`, nil, 400, "body is not a JSON object or an array of objects: it is a string", ""},
		{"no event", plain, `{"status":"x"}`, nil, 400, `no event name: the body has no "event" field; point event_field at the field that names the event, or set a constant event: on the source`, ""},
		{"empty batch", plain, `[]`, nil, 400, "empty batch: the array holds no events", ""},
		{"bad batch", plain, `[{"event":"a"},`, nil, 400, "body is not JSON: line 1, column 16: array not closed: expected a value or ']', found end of input", ""},
		{"batch element", plain, `[{"event":"a"},{"x":1}]`, nil, 400, `batch element 1: no event name: the body has no "event" field; point event_field at the field that names the event, or set a constant event: on the source`, ""},
		{"no token", bearer, `{"event":"a"}`, nil, 401, bearerMsg, "Bearer"},
		{"wrong token", bearer, `{"event":"a"}`, []string{"Authorization", "Bearer nope"}, 401, bearerMsg, "Bearer"},
		{"wrong scheme", bearer, `{"event":"a"}`, []string{"Authorization", "Basic czNjcmV0"}, 401, bearerMsg, "Bearer"},
		{"scheme without token", bearer, `{"event":"a"}`, []string{"Authorization", "Bearer "}, 401, bearerMsg, "Bearer"},
		{"token as a prefix", bearer, `{"event":"a"}`, []string{"Authorization", "Bearer s3cretX"}, 401, bearerMsg, "Bearer"},
		{"no basic", basic, `{"event":"a"}`, nil, 401, "missing or wrong basic auth credentials", `Basic realm="app", charset="UTF-8"`},
		{"wrong basic", basic, `{"event":"a"}`, []string{"Authorization", "Basic dTp4"}, 401, "missing or wrong basic auth credentials", `Basic realm="app", charset="UTF-8"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.s, tc.body, tc.header...)
			if tc.status == 0 {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			re, ok := err.(*sources.RejectError)
			if !ok {
				t.Fatalf("err = %v, want a rejection", err)
			}
			if re.Status != tc.status || re.Msg != tc.msg || re.Challenge != tc.challenge {
				t.Errorf("got %d %q %q\nwant %d %q %q", re.Status, re.Msg, re.Challenge, tc.status, tc.msg, tc.challenge)
			}
		})
	}
	// RFC 9110: the scheme is case-insensitive.
	for _, h := range [][]string{{"Authorization", "Bearer s3cret"}, {"Authorization", "bearer s3cret"},
		{"Authorization", "BEARER  s3cret"}, {"Authorization", "BeArEr s3cret "}} {
		if _, err := parse(bearer, `{"event":"a"}`, h...); err != nil {
			t.Errorf("right token refused: %v", err)
		}
	}
	if _, err := parse(basic, `{"event":"a"}`, "Authorization", "Basic dTpw"); err != nil {
		t.Errorf("right credentials refused: %v", err)
	}
}

const bearerMsg = "missing or wrong bearer token: send Authorization: Bearer <the source's bearer_token>"

func TestBuildProblems(t *testing.T) {
	tests := []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"event_field": ""}, `event_field: is empty and no constant event is set; name the field that holds the event name (default "event") or set event:`},
		{map[string]any{"auth": map[string]any{"bearer_token": "t", "username": "u", "password": "p"}}, "auth: set either bearer_token or username/password, not both"},
		{map[string]any{"auth": map[string]any{"username": "u"}}, "auth: basic auth needs both username and password"},
	}
	for _, tc := range tests {
		_, err := sourcetest.BuildErr("generic", "app", tc.opts)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: got %v, want %q", tc.opts, err, tc.want)
		}
	}
}

// FuzzParse: any body is parsed into events or refused with a 4xx; an
// accepted event always re-encodes as JSON.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"event":"a","status":"failed","id":"1"}`,
		`[{"event":"a"},{"event":"b","payload":{"status":"x"}}]`,
		`{"event":{"nested":true},"id":[1,2]}`,
		`{"event":"e","n":1e400}`,
		`[]`, ``, `{`, `"x"`, `null`,
	} {
		f.Add([]byte(seed))
	}
	s := &generic.Options{EventField: "event", StatusField: "payload.status", IDField: "id", TimeField: "ts"}
	built, err := s.Build(sources.Info{Name: "app"})
	if err != nil {
		f.Fatal(err)
	}
	src := built.(*generic.Source)
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 1<<16 {
			return
		}
		res, err := parse(src, string(body))
		if err != nil {
			if re, ok := err.(*sources.RejectError); !ok || re.Status < 400 || re.Status > 499 {
				t.Fatalf("error %v is not a 4xx rejection", err)
			}
			return
		}
		for _, ev := range res.Events {
			if ev.Event == "" || ev.ID == "" {
				t.Fatalf("event without name or id: %+v", ev)
			}
			if !router.TimeInRange(ev.Time) {
				t.Fatalf("event time %v cannot be stored", ev.Time)
			}
			b, err := ev.MarshalJSON()
			if err != nil || !json.Valid(b) {
				t.Fatalf("event does not encode: %v %s", err, b)
			}
			var back router.Event
			if err := back.UnmarshalJSON(b); err != nil {
				t.Fatalf("event does not decode: %v", err)
			}
		}
	})
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string // RFC 3339 in UTC, or the error
	}{
		{"2026-11-23T07:00:00+01:00", "2026-11-23T06:00:00Z"},
		{"2026-11-23 07:00:00", "2026-11-23T07:00:00Z"},
		{1763881200, "2025-11-23T07:00:00Z"},
		{1763881200123, "2025-11-23T07:00:00Z"},
		{"1763881200", "2025-11-23T07:00:00Z"},
		{1763881200.0, "2025-11-23T07:00:00Z"},
		{-1, "1969-12-31T23:59:59Z"},
		{9000000000000000000, "9000000000000000000 as Unix milliseconds is outside years 0000-9999"},
		{"9000000000000000000", "9000000000000000000 as Unix milliseconds is outside years 0000-9999"},
		{-9000000000000000000, "-9000000000000000000 as Unix milliseconds is outside years 0000-9999"},
		{uint64(18446744073709551615), "18446744073709551615 is outside years 0000-9999 as Unix seconds or milliseconds"},
		{json.Number("1e400"), "1e400 is outside years 0000-9999 as Unix seconds or milliseconds"},
		{1e300, "1e+300 is not a whole number of Unix seconds or milliseconds in years 0000-9999"},
		{"9999-12-31T23:59:59-23:59", `"9999-12-31T23:59:59-23:59" is 10000-01-01T23:58:59Z in UTC, outside years 0000-9999`},
		{"yesterday", `"yesterday" is not an RFC 3339 time, a "2006-01-02 15:04:05" UTC time or Unix seconds or milliseconds`},
		{true, "a boolean is not a time; send an RFC 3339 string or Unix seconds or milliseconds"},
	} {
		got, err := generic.ParseTime(tc.in)
		s := got.UTC().Format(time.RFC3339)
		if err != nil {
			s = err.Error()
		}
		if s != tc.want {
			t.Errorf("ParseTime(%#v) = %s, want %s", tc.in, s, tc.want)
		}
	}
}
