package daemon

import (
	"maps"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func keepSource(names ...string) *Source {
	s := &Source{}
	for _, n := range names {
		s.keep = append(s.keep, keptHeader{canonical: http.CanonicalHeaderKey(n), lower: strings.ToLower(n)})
	}
	return s
}

// Requests with the same kept headers share one map (events only read
// their headers); any difference in presence or value makes a new one.
func TestEventHeadersShareEqualSets(t *testing.T) {
	s := keepSource("Content-Type", "X-Tenant")
	h := func(kv ...string) http.Header {
		out := http.Header{"Authorization": {"Bearer secret"}}
		for i := 0; i < len(kv); i += 2 {
			out[http.CanonicalHeaderKey(kv[i])] = []string{kv[i+1]}
		}
		return out
	}
	steps := []struct {
		req    http.Header
		want   map[string]string
		shared bool // the previous step's map is returned
	}{
		{h("content-type", "application/json"), map[string]string{"content-type": "application/json"}, false},
		{h("content-type", "application/json"), map[string]string{"content-type": "application/json"}, true},
		{h("content-type", "text/plain"), map[string]string{"content-type": "text/plain"}, false},
		{h("content-type", "text/plain", "x-tenant", "a"), map[string]string{"content-type": "text/plain", "x-tenant": "a"}, false},
		{h("content-type", "text/plain", "x-tenant", "a"), map[string]string{"content-type": "text/plain", "x-tenant": "a"}, true},
		{h("content-type", "text/plain"), map[string]string{"content-type": "text/plain"}, false},
		{h("content-type", "text/plain", "x-tenant", ""), map[string]string{"content-type": "text/plain", "x-tenant": ""}, false}, // empty is kept
		{h(), nil, false},
		{h("content-type", "text/plain", "x-tenant", ""), map[string]string{"content-type": "text/plain", "x-tenant": ""}, true}, // none in between: the last map with any
	}
	var prev map[string]string
	for i, st := range steps {
		got := s.EventHeaders(st.req)
		if !maps.Equal(got, st.want) || (got == nil) != (st.want == nil) {
			t.Fatalf("step %d: %v, want %v", i, got, st.want)
		}
		if shared := got != nil && prev != nil && sameMap(got, prev); shared != st.shared {
			t.Errorf("step %d: shared with the previous map = %v, want %v", i, shared, st.shared)
		}
		if got != nil {
			prev = got
		}
	}
}

// sameMap reports whether a and b are one map.
func sameMap(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// The caps hold for shared and fresh maps alike: past maxHeaderBytes the
// rest of the keep list is not kept.
func TestEventHeadersCaps(t *testing.T) {
	s := keepSource("A", "B", "C")
	big := strings.Repeat("v", maxHeaderValue+10)
	req := http.Header{"A": {big}, "B": {big}, "C": {big}, "D": {"x"}}
	for range 2 {
		got := s.EventHeaders(req)
		if len(got["a"]) != maxHeaderValue || len(got["b"]) != maxHeaderValue || len(got["c"]) != maxHeaderValue {
			t.Fatalf("values not cut to %d bytes: %d %d %d", maxHeaderValue, len(got["a"]), len(got["b"]), len(got["c"]))
		}
	}
	s = keepSource("A", "B", "C", "D", "E")
	req = http.Header{"A": {big}, "B": {big}, "C": {big}, "D": {big}, "E": {"e"}}
	got := s.EventHeaders(req)
	if _, ok := got["d"]; ok || got["e"] != "" || len(got) != 3 {
		t.Errorf("past %d bytes the rest is kept: %d headers", maxHeaderBytes, len(got))
	}
}
