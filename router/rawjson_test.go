package router_test

import (
	"encoding/json"
	"strings"
	"testing"

	"switchboard/router"
)

// benchBody is the load test's MOBtexting-shaped event.
var benchBody = []byte(`{"event":"whatsapp:message:status","payload":{"id":"a418d672","channel":"x1","from":"919019120123","to":"919019912345","status":"failed","delivered_at":"2021-06-18T14:48:06.886358Z","processed_at":"2021-06-18T14:48:06.886358Z","timestamp":"2021-06-18T14:48:06.886358Z","error":{"code":null,"message":null},"bench_id":"b1","bench_ts":1763600000123456789}}`)

// BenchmarkRawLookup reads what the generic source reads of a body: its
// event, status and id.
func BenchmarkRawLookup(b *testing.B) {
	for b.Loop() {
		router.RawLookup(benchBody, "event")
		router.RawLookup(benchBody, "payload.status")
		router.RawLookup(benchBody, "payload.bench_id")
	}
}

// BenchmarkRawPaths reads the same in one pass.
func BenchmarkRawPaths(b *testing.B) {
	paths := [][]string{{"event"}, {"payload", "status"}, {"payload", "bench_id"}}
	out := make([][]byte, len(paths))
	for b.Loop() {
		router.RawPaths(benchBody, paths, out)
	}
}

func TestRawLookupAgreesWithLookupPath(t *testing.T) {
	m, err := router.DecodeObject(benchBody)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"event", "payload", "payload.status", "payload.bench_ts", "payload.error.code", "payload.error.nope",
		"payload.id.x", "nope", "payload.error", ""} {
		got, gok := router.RawLookup(benchBody, path)
		want, wok := router.LookupPath(m, path)
		if gok != wok || router.String(got) != router.String(want) {
			t.Errorf("%q: RawLookup %v %v, LookupPath %v %v", path, got, gok, want, wok)
		}
	}
}

// FuzzRawPaths: reading paths from a body's bytes finds what looking them
// up in the decoded body finds, repeated keys, escapes and odd nesting
// included.
func FuzzRawPaths(f *testing.F) {
	f.Add(string(benchBody), "event|payload.status|payload.bench_id|payload.error.code")
	f.Add(`{"a":{"b":1},"a":{"c":2}}`, "a.b|a.c|a")
	f.Add(`{"a\u0062":"x","ab":"y","a":"s"}`, "ab|a.b|a")
	f.Add(`{"a":[{"b":1}],"n":null,"t":true}`, "a.b|n.x|t|n")
	f.Fuzz(func(t *testing.T, body, pathList string) {
		m, err := router.DecodeObject([]byte(body))
		if err != nil || !json.Valid([]byte(body)) {
			return
		}
		dotted := strings.Split(pathList, "|")
		paths := make([][]string, len(dotted))
		for i, p := range dotted {
			paths[i] = router.PathSegments(p)
		}
		out := make([][]byte, len(paths))
		router.RawPaths([]byte(body), paths, out)
		for i, p := range dotted {
			if p == "" {
				continue
			}
			want, wok := router.LookupPath(m, p)
			var got any
			if out[i] != nil {
				got, err = router.DecodeValue(out[i])
				if err != nil {
					t.Fatalf("%q in %s: found %s, which does not decode: %v", p, body, out[i], err)
				}
			}
			if (out[i] != nil) != wok || router.String(got) != router.String(want) {
				t.Fatalf("%q in %s: RawPaths %s, LookupPath %v %v", p, body, out[i], want, wok)
			}
			if g, ok := router.RawLookup([]byte(body), p); ok != wok || router.String(g) != router.String(want) {
				t.Fatalf("%q in %s: RawLookup %v %v, LookupPath %v %v", p, body, g, ok, want, wok)
			}
		}
	})
}

// DecodeString reads what encoding/json reads into a string, and refuses
// what is not a string.
func TestDecodeString(t *testing.T) {
	for _, raw := range []string{`"plain"`, `""`, `"a\"b\u00e9\n"`, "\"caf\xe9\"", `"\ud800"`} {
		var want string
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got, err := router.DecodeString([]byte(raw)); err != nil || got != want {
			t.Errorf("DecodeString(%s) = %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{``, `"`, `1`, `null`, `{"a":"b"}`, `["x"]`, `true`} {
		if got, err := router.DecodeString([]byte(raw)); err == nil {
			t.Errorf("DecodeString(%s) = %q, want an error", raw, got)
		}
	}
}
