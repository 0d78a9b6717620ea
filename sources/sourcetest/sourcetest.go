// Package sourcetest holds what the tests of the source packages
// (sources/bird, sources/telecmi, ...) share: the golden-file harness with
// its -update flag, building a source from settings, making the request
// the daemon hands a source, and reading a rejection.
//
// It is used only by tests. It is an ordinary package rather than a
// _test.go file because a _test.go file cannot be imported by the tests of
// another package. Nothing outside _test.go files may import it: it
// registers a global -update flag, which belongs in test binaries only,
// and it fails tests rather than returning errors.
//
// The -update flag is registered in every test binary that imports this
// package, so `go test ./sources/... -update` rewrites the golden files of
// every source package at once.
package sourcetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"

	"switchboard/config"
	"switchboard/router"
	"switchboard/sources"
)

var update = flag.Bool("update", false, "rewrite the golden files (testdata/golden) from the current output")

// Golden checks got against the golden file at path, byte for byte. Run
// with -update, it writes got to path instead.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	SameAsGolden(t, path, got)
}

// SameAsGolden checks got against the golden file at path, byte for byte,
// and never rewrites it: for a case whose output must be that of another
// case, which owns the file.
func SameAsGolden(t testing.TB, path string, got []byte) {
	t.Helper()
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

// EventJSON is ev's JSON indented by two spaces, with a final newline: the
// form of the golden files.
func EventJSON(t testing.TB, ev *router.Event) []byte {
	t.Helper()
	b, err := ev.MarshalJSON()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("event is not JSON: %v\n%s", err, b)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// ReadFile is os.ReadFile failing the test on an error.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Build makes the source the configuration would make from a source named
// name of type typ with the settings raw: the type's defaults, raw decoded
// over them, then Build. Any problem fails the test, as does a source that
// is not an S.
func Build[S any](t testing.TB, typ, name string, raw map[string]any) S {
	t.Helper()
	s, err := BuildErr(typ, name, raw)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	src, ok := s.(S)
	if !ok {
		t.Fatalf("Build made a %T, want a %T", s, src)
	}
	return src
}

// BuildErr is Build returning the problems (config.Problems from decoding
// raw, or Build's error) instead of failing.
func BuildErr(typ, name string, raw map[string]any) (any, error) {
	f, ok := sources.Lookup(typ)
	if !ok {
		return nil, fmt.Errorf("source type %q is not registered", typ)
	}
	b := f()
	if ps := config.Decode(raw, b, ""); len(ps) > 0 {
		return nil, ps
	}
	return b.Build(sources.Info{Name: name})
}

// Request is a webhook request as the daemon hands it to a source: method
// to target (a path, or an absolute URL whose host becomes the request's
// Host and whose https scheme makes its TLS non-nil) with body (nil stays
// nil) and headers given as name, value pairs. The caller sets ReceivedAt,
// Source and Subpath.
func Request(method, target string, body []byte, header ...string) *sources.Request {
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return &sources.Request{HTTP: r, Body: body}
}

// ParseOne parses req with s and returns its one event; an error, a reply
// or any other number of events fails the test.
func ParseOne(t testing.TB, s sources.HTTPSource, req *sources.Request) *router.Event {
	t.Helper()
	res, err := s.Parse(req)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(res.Events) != 1 || res.Reply != nil {
		t.Fatalf("got %d events and reply %q; want one event and no reply", len(res.Events), res.Reply)
	}
	return res.Events[0]
}

// Rejection is the *sources.RejectError in err; anything else fails the
// test.
func Rejection(t testing.TB, err error) *sources.RejectError {
	t.Helper()
	var re *sources.RejectError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a RejectError", err, err)
	}
	return re
}
