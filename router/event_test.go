package router_test

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/router"
)

var (
	t0 = time.Date(2026, 11, 23, 7, 0, 0, 123e6, time.UTC)
	t1 = time.Date(2026, 11, 23, 7, 0, 0, 125e6, time.UTC)
)

func marshal(t *testing.T, e *router.Event) string {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatalf("not valid JSON: %s", b)
	}
	return string(b)
}

func TestEventJSON(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name  string
		event *router.Event
		want  string
	}{
		{
			name: "every field, in contract order",
			event: &router.Event{ID: "ev-1", Source: "bird", Event: "voice.outbound", Status: "completed",
				Time: t0, ReceivedAt: t1, Payload: map[string]any{"to": "+3161", "units": 2}},
			want: `{"id":"ev-1","source":"bird","event":"voice.outbound","status":"completed",` +
				`"time":"2026-11-23T07:00:00.123Z","received_at":"2026-11-23T07:00:00.125Z","payload":{"to":"+3161","units":2}}`,
		},
		{
			name:  "status omitted when empty",
			event: &router.Event{ID: "ev-1", Source: "generic", Event: "ping", Time: t0, ReceivedAt: t1, Payload: map[string]any{}},
			want:  `{"id":"ev-1","source":"generic","event":"ping","time":"2026-11-23T07:00:00.123Z","received_at":"2026-11-23T07:00:00.125Z","payload":{}}`,
		},
		{
			name:  "times in UTC with milliseconds",
			event: &router.Event{ID: "x", Time: time.Date(2026, 11, 23, 8, 0, 0, 0, cet), ReceivedAt: time.Date(2026, 11, 23, 8, 0, 1, 999999999, cet)},
			want:  `{"id":"x","source":"","event":"","time":"2026-11-23T07:00:00.000Z","received_at":"2026-11-23T07:00:01.999Z","payload":{}}`,
		},
		{
			name:  "zero times",
			event: &router.Event{ID: "x"},
			want:  `{"id":"x","source":"","event":"","time":"0001-01-01T00:00:00.000Z","received_at":"0001-01-01T00:00:00.000Z","payload":{}}`,
		},
		{
			name:  "quotes and backslashes escaped",
			event: &router.Event{ID: `a"b\c`, Source: "s", Event: `say "hi"`, Status: "x\ty", Time: t0, ReceivedAt: t1},
			want:  `{"id":"a\"b\\c","source":"s","event":"say \"hi\"","status":"x\ty","time":"2026-11-23T07:00:00.123Z","received_at":"2026-11-23T07:00:00.125Z","payload":{}}`,
		},
		{
			name:  "non-ASCII kept, HTML and line separators escaped",
			event: &router.Event{ID: "café ☎ 通話", Source: "s", Event: "<b>&</b>", Status: "a\u2028b\x00", Time: t0, ReceivedAt: t1},
			want:  `{"id":"café ☎ 通話","source":"s","event":"\u003cb\u003e\u0026\u003c/b\u003e","status":"a\u2028b\u0000","time":"2026-11-23T07:00:00.123Z","received_at":"2026-11-23T07:00:00.125Z","payload":{}}`,
		},
		{
			name:  "invalid UTF-8 replaced",
			event: &router.Event{ID: "a\xffb", Time: t0, ReceivedAt: t1},
			want:  `{"id":"a\ufffdb","source":"","event":"","time":"2026-11-23T07:00:00.123Z","received_at":"2026-11-23T07:00:00.125Z","payload":{}}`,
		},
		{
			name: "raw payload written verbatim, not Payload",
			event: &router.Event{ID: "x", Time: t0, ReceivedAt: t1, Payload: map[string]any{"a": 1},
				RawPayload: []byte(`{"z":1.50,"a":1}`)},
			want: `{"id":"x","source":"","event":"","time":"2026-11-23T07:00:00.123Z","received_at":"2026-11-23T07:00:00.125Z","payload":{"z":1.50,"a":1}}`,
		},
		{
			name:  "big numbers keep every digit",
			event: &router.Event{ID: "x", Time: t0, ReceivedAt: t1, Payload: map[string]any{"ts": 1763600000123456789, "f": 0.1}},
			want:  `{"id":"x","source":"","event":"","time":"2026-11-23T07:00:00.123Z","received_at":"2026-11-23T07:00:00.125Z","payload":{"f":0.1,"ts":1763600000123456789}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := marshal(t, tc.event); got != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestEventJSONRawPayloadInsignificantSpace(t *testing.T) {
	// Spaces within one line are the provider's bytes and stay; line breaks
	// would split a JSON Lines record, so a pretty-printed body is folded.
	e := &router.Event{ID: "x", Time: t0, ReceivedAt: t1, RawPayload: []byte(`{ "a" : [1, 2] }`)}
	b, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `"payload":{ "a" : [1, 2] }}`; !bytes.HasSuffix(b, []byte(want)) {
		t.Errorf("got %s, want it to end with %s", b, want)
	}
	e = &router.Event{ID: "x", Time: t0, ReceivedAt: t1, RawPayload: []byte("{\n  \"a\": [1,\r\n 2]\n}")}
	b, err = e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(b, "\r\n") || !bytes.HasSuffix(b, []byte(`"payload":{"a":[1,2]}}`)) {
		t.Errorf("pretty payload not folded to one line: %s", b)
	}
}

// A number too large for float64 must not make the event impossible to
// encode (and so to deliver).
func TestEventJSONHugeNumber(t *testing.T) {
	p, err := router.DecodeObject([]byte(`{"n":2e700}`))
	if err != nil {
		t.Fatal(err)
	}
	e := &router.Event{ID: "x", Time: t0, ReceivedAt: t1, Payload: p}
	if got, want := marshal(t, e), `{"id":"x","source":"","event":"","time":"2026-11-23T07:00:00.123Z","received_at":"2026-11-23T07:00:00.125Z","payload":{"n":2e700}}`; got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	if got := router.String(p["n"]); got != "2e700" {
		t.Errorf("String = %q", got)
	}
}

func TestEventJSONPayloadThatCannotBeEncoded(t *testing.T) {
	e := &router.Event{ID: "ev-9", Payload: map[string]any{"f": math.Inf(1)}}
	_, err := e.MarshalJSON()
	want := "encode payload of event ev-9: json: unsupported value: +Inf"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	in := &router.Event{ID: `ev-"1"`, Source: "bird", Event: "voice.outbound", Status: "completed",
		Time: t0, ReceivedAt: t1,
		Payload: map[string]any{"ts": 1763600000123456789, "price": 0.25, "ok": true, "note": nil,
			"tags": []any{"a", 1}, "nested": map[string]any{"x": "y"}},
		Headers: map[string]string{"x-a": "1"}, Body: []byte("raw body"),
	}
	b := []byte(marshal(t, in))
	var out router.Event
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != in.ID || out.Source != in.Source || out.Event != in.Event || out.Status != in.Status ||
		!out.Time.Equal(in.Time) || !out.ReceivedAt.Equal(in.ReceivedAt) {
		t.Errorf("fields: got %s %s %s %s %v %v", out.ID, out.Source, out.Event, out.Status, out.Time, out.ReceivedAt)
	}
	if !reflect.DeepEqual(out.Payload, in.Payload) {
		t.Errorf("payload: got %#v, want %#v", out.Payload, in.Payload)
	}
	if want := `{"nested":{"x":"y"},"note":null,"ok":true,"price":0.25,"tags":["a",1],"ts":1763600000123456789}`; string(out.RawPayload) != want {
		t.Errorf("raw payload = %s, want %s", out.RawPayload, want)
	}
	// Headers and Body are not part of the normalized event.
	if out.Headers != nil || out.Body != nil {
		t.Errorf("headers/body came back: %v %q", out.Headers, out.Body)
	}
	// And once more: the same bytes.
	if again := marshal(t, &out); again != string(b) {
		t.Errorf("second encoding differs:\n%s\n%s", again, b)
	}
}

func TestEventUnmarshalReplacesCachedEncoding(t *testing.T) {
	var e router.Event
	if err := json.Unmarshal([]byte(`{"id":"one","payload":{}}`), &e); err != nil {
		t.Fatal(err)
	}
	first := marshal(t, &e)
	if err := json.Unmarshal([]byte(`{"id":"two","payload":{}}`), &e); err != nil {
		t.Fatal(err)
	}
	if second := marshal(t, &e); second == first {
		t.Errorf("MarshalJSON returned the encoding of the previous value: %s", second)
	}
}

func TestEventUnmarshalErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"id":"x","payload":[1]}`, "payload: expected a JSON object, got an array"},
		{`{"id":"x","payload":null}`, "payload: expected a JSON object, got null"},
		{`{"id":"x","payload":"s"}`, "payload: expected a JSON object, got a string"},
		{`{"id":"x"}`, "payload: EOF"},
		{`{"id":"x","time":"yesterday","payload":{}}`, `parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"`},
		{`{"id":1,"payload":{}}`, "json: cannot unmarshal number into Go struct field .id of type string"},
	} {
		var e router.Event
		if err := json.Unmarshal([]byte(tc.in), &e); err == nil || err.Error() != tc.want {
			t.Errorf("%s: error = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// One event goes to several sinks whose workers encode it at once.
func TestEventMarshalConcurrently(t *testing.T) {
	e := &router.Event{ID: "x", Source: "s", Event: "e", Time: t0, ReceivedAt: t1, Payload: map[string]any{"a": 1}}
	want := `{"id":"x","source":"s","event":"e","time":"2026-11-23T07:00:00.123Z","received_at":"2026-11-23T07:00:00.125Z","payload":{"a":1}}`
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				b, err := json.Marshal(e)
				if err != nil || string(b) != want {
					t.Errorf("got %s, %v", b, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDecodeJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
		err  string
	}{
		{in: `1763600000123456789`, want: 1763600000123456789},
		{in: `9223372036854775807`, want: math.MaxInt64},
		{in: `-9223372036854775808`, want: math.MinInt64},
		{in: `9223372036854775808`, want: uint64(9223372036854775808)},
		{in: `18446744073709551615`, want: uint64(math.MaxUint64)},
		{in: `18446744073709551616`, want: json.Number("18446744073709551616")},
		{in: `-9223372036854775809`, want: json.Number("-9223372036854775809")},
		{in: `99999999999999999999`, want: json.Number("99999999999999999999")},
		{in: `100000000000000000000`, want: 1e20},
		{in: `12345678901234.5`, want: 12345678901234.5},
		{in: `123456789012345.6`, want: json.Number("123456789012345.6")},
		{in: `0.12345678901234567891`, want: json.Number("0.12345678901234567891")},
		{in: `1e308`, want: 1e308},
		{in: `4.9e-324`, want: json.Number("4.9e-324")},
		{in: `0.0e-999`, want: 0.0},
		{in: `2e700`, want: json.Number("2e700")},
		{in: `[-2e700]`, want: []any{json.Number("-2e700")}},
		{in: `1e-400`, want: json.Number("1e-400")},
		{in: `0`, want: 0},
		{in: `-0`, want: 0},
		{in: `-7`, want: -7},
		{in: `1.5`, want: 1.5},
		{in: `1.0`, want: 1.0},
		{in: `1e3`, want: 1000.0},
		{in: `-2.5E-3`, want: -0.0025},
		{in: `"1763600000123456789"`, want: "1763600000123456789"},
		{in: `true`, want: true},
		{in: `null`, want: nil},
		{in: ` {"a" : 1} `, want: map[string]any{"a": 1}},
		{in: "{\"a\":1}\n", want: map[string]any{"a": 1}},
		{
			in:   `{"ts":1763600000123456789,"f":0.5,"list":[1,2.5,{"n":3}],"o":{"deep":[[4]]}}`,
			want: map[string]any{"ts": 1763600000123456789, "f": 0.5, "list": []any{1, 2.5, map[string]any{"n": 3}}, "o": map[string]any{"deep": []any{[]any{4}}}},
		},
		{in: ``, err: "EOF"},
		{in: `   `, err: "EOF"},
		{in: `{"a":1} {"b":2}`, err: "unexpected data after the JSON value at offset 8"},
		{in: `{"a":1}x`, err: "unexpected data after the JSON value at offset 7"},
		{in: `{"a":1}}`, err: "unexpected data after the JSON value at offset 7"},
		{in: `[1]]`, err: "unexpected data after the JSON value at offset 3"},
		{in: `1 ]`, err: "unexpected data after the JSON value at offset 2"},
		{in: `{"a":1,}`, err: "invalid character '}' looking for beginning of object key string"},
		{in: `{'a':1}`, err: "invalid character '\\'' looking for beginning of object key string"},
		{in: `{"a":`, err: "unexpected EOF"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := router.DecodeJSON([]byte(tc.in))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("got %#v, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v (%T), want %#v (%T)", got, got, tc.want, tc.want)
			}
		})
	}
}

func TestDecodeObject(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{`{}`, ""},
		{`[]`, "expected a JSON object, got an array"},
		{`"s"`, "expected a JSON object, got a string"},
		{`null`, "expected a JSON object, got null"},
		{`true`, "expected a JSON object, got a boolean"},
		{`1.5`, "expected a JSON object, got a number"},
		{`{`, "unexpected EOF"},
	} {
		m, err := router.DecodeObject([]byte(tc.in))
		switch {
		case tc.err == "" && (err != nil || m == nil):
			t.Errorf("%s: %v, %v", tc.in, m, err)
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("%s: error = %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestDeriveID(t *testing.T) {
	body := []byte(`{"call":"c1","status":"ringing"}`)
	id := router.DeriveID("bird", body)
	if len(id) != 32 || id != router.DeriveID("bird", bytes.Clone(body)) {
		t.Fatalf("DeriveID not stable or not 32 hex characters: %q", id)
	}
	seen := map[string]string{id: "bird + body"}
	for name, other := range map[string]string{
		"other body":           router.DeriveID("bird", []byte(`{"call":"c1","status":"answered"}`)),
		"other source":         router.DeriveID("telecmi", body),
		"empty body":           router.DeriveID("bird", nil),
		"empty source":         router.DeriveID("", body),
		"source/body boundary": router.DeriveID("bir", append([]byte("d"), body...)),
	} {
		if prev, dup := seen[other]; dup {
			t.Errorf("%s has the same id as %s: %s", name, prev, other)
		}
		seen[other] = name
	}
	if router.DeriveID("", nil) != router.DeriveID("", []byte{}) {
		t.Error("nil and empty body must give the same id")
	}
}

func TestLookupPath(t *testing.T) {
	m := decodePayload(t, `{"a":{"b":{"c":1}},"s":"x","n":null,"list":[1],"dot.ted":true}`)
	for _, tc := range []struct {
		path string
		want any
		ok   bool
	}{
		{"s", "x", true},
		{"a.b.c", 1, true},
		{"a.b", map[string]any{"c": 1}, true},
		{"n", nil, true},
		{"list", []any{1}, true},
		{"missing", nil, false},
		{"a.missing", nil, false},
		{"a.b.c.d", nil, false},
		{"s.x", nil, false},
		{"n.x", nil, false},
		{"list.0", nil, false},
		{"dot.ted", nil, false},
		{"a..b", nil, false},
	} {
		got, ok := router.LookupPath(m, tc.path)
		if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("LookupPath(%q) = %#v, %v; want %#v, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := router.LookupPath(nil, "a"); ok {
		t.Error("a nil payload has nothing")
	}
}

func TestEventLookup(t *testing.T) {
	e := &router.Event{ID: "ev-1", Source: "bird", Event: "voice.inbound",
		Payload: decodePayload(t, `{"id":"p","status":"p-status","recipient":{"from":"+31"}}`)}
	for _, tc := range []struct {
		key  string
		want any
		ok   bool
	}{
		{"id", "ev-1", true},
		{"source", "bird", true},
		{"event", "voice.inbound", true},
		{"status", "", false}, // the event has no status; the payload's does not stand in
		{"recipient.from", "+31", true},
		{"recipient.to", nil, false},
	} {
		got, ok := e.Lookup(tc.key)
		if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Lookup(%q) = %#v, %v; want %#v, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
	e.Status = "ringing"
	if got, ok := e.Lookup("status"); !ok || got != "ringing" {
		t.Errorf("Lookup(status) = %v, %v", got, ok)
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{"text", "text"},
		{"", ""},
		{2, "2"},
		{-7, "-7"},
		{1763600000123456789, "1763600000123456789"},
		{uint64(12345678901234567891), "12345678901234567891"},
		{json.Number("123456789012345678901234567890"), "123456789012345678901234567890"},
		{2.5, "2.5"},
		{2.0, "2"},
		{1e21, "1000000000000000000000"},
		{0.000001, "0.000001"},
		{true, "true"},
		{false, "false"},
		{nil, ""},
		{json.Number("1.50"), "1.50"},
		{[]any{1, "a"}, `[1,"a"]`},
		{map[string]any{"b": 1, "a": "x"}, `{"a":"x","b":1}`},
	} {
		if got := router.String(tc.in); got != tc.want {
			t.Errorf("String(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzDecodeJSON: DecodeJSON never panics, accepts only valid JSON, and
// what it returns survives encoding/json and decoding again. A whole float
// (1.0) comes back as an int, so numbers compare by value.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `null`, `0`, `-0`, `1.0`, `1e3`, `-2.5E-3`, `"x"`, `true`,
		`1763600000123456789`, `9223372036854775808`, `99999999999999999999`, `1e308`, `4.9e-324`,
		`{"ts":1763600000123456789,"f":0.5,"list":[1,2.5,{"n":3}],"o":{"deep":[[4]]}}`,
		`{"a":1}}`, `[1]]`, `{"a":1} {"b":2}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":"\u2028<&>"}`,
		`{"event":"voice.outbound","payload":{"id":"c1","status":"completed","to":"+31612345678"}}`,
		`{"a":1,"a":2}`, ` [ 1 , { } ] `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := router.DecodeJSON(b)
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q as %#v", b, v)
		}
		enc, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("cannot re-encode %#v: %v", v, err)
		}
		again, err := router.DecodeJSON(enc)
		if err != nil {
			t.Fatalf("cannot decode own encoding %s: %v", enc, err)
		}
		if !sameJSON(v, again) {
			t.Fatalf("round trip changed the value:\n in  %#v\n out %#v\n via %s", v, again, enc)
		}
	})
}

// sameJSON compares decoded JSON values, numbers by value.
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !sameJSON(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case int:
		switch y := b.(type) {
		case int:
			return x == y
		case float64:
			return float64(x) == y
		}
		return false
	case uint64:
		if y, ok := b.(float64); ok {
			return sameJSON(y, x)
		}
		return a == b
	case json.Number:
		return a == b
	case float64:
		switch y := b.(type) {
		case int:
			return x == float64(y)
		case float64:
			return x == y
		case uint64:
			// 9.227000001e18 is written back as 9227000001000000000, which
			// reads as a uint64: the decimal the sender wrote, which the
			// float64 only approximates.
			return strconv.FormatFloat(x, 'f', -1, 64) == strconv.FormatUint(y, 10)
		}
		return false
	}
	return a == b
}

func TestMarshalFoldsLeftoverIndentation(t *testing.T) {
	// curl -d @file.json turns a pretty-printed body's newlines into
	// nothing, leaving the indentation as runs of spaces.
	e := &router.Event{ID: "1", Source: "s", Event: "e", RawPayload: []byte(`{    "a": "x  y",    "b": [1,  2]}`)}
	b, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `"payload":{"a":"x  y","b":[1,2]}}`; !strings.HasSuffix(string(b), want) {
		t.Errorf("got %s, want a payload ending %s", b, want)
	}
}
