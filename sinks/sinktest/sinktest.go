// Package sinktest holds the setup the sink packages' tests share. Only
// tests import it.
package sinktest

import (
	"errors"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/router"
	"switchboard/sinks"
)

// Build decodes raw into a fresh Builder of type typ the way the host
// does and builds the sink named name, so that tests meet the same
// problems, in the same words, as `check` and `run`. It panics when typ is
// not registered: the test forgot nothing but an import.
func Build(typ, name string, raw map[string]any) (router.Sink, error) {
	f, ok := sinks.Lookup(typ)
	if !ok {
		panic(typ + " sink not registered")
	}
	b := f()
	if ps := config.Decode(raw, b, ""); len(ps) > 0 {
		return nil, ps
	}
	return b.Build(sinks.Info{Name: name})
}

// MustBuild is Build for settings a test expects to be valid: it fails t
// otherwise, returns the sink as its own type S and closes it (when it is
// a sinks.Closer) once the test ends.
func MustBuild[S router.Sink](t testing.TB, typ, name string, raw map[string]any) S {
	t.Helper()
	s, err := Build(typ, name, raw)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if c, ok := s.(sinks.Closer); ok {
		t.Cleanup(func() { c.Close() })
	}
	return s.(S)
}

// WantProblems builds the sink as Build does, for settings a test expects
// to be refused: it fails t unless Build returns config.Problems that read
// exactly want, and closes a sink built by mistake. It returns the error
// (never nil) for the checks a sink adds of its own.
func WantProblems(t testing.TB, typ, name string, raw map[string]any, want string) error {
	t.Helper()
	s, err := Build(typ, name, raw)
	if err == nil {
		if c, ok := s.(sinks.Closer); ok {
			c.Close()
		}
		t.Fatalf("Build succeeded, want %s", want)
	}
	var ps config.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v (%T), want config.Problems", err, err)
	}
	if err.Error() != want {
		t.Errorf("problems\n got %s\nwant %s", err, want)
	}
	return err
}

// Event is a sample event: a failed inbound Bird call with both a decoded
// and a raw payload.
func Event(id string) *router.Event {
	return &router.Event{
		ID: id, Source: "bird", Event: "voice.inbound", Status: "failed",
		Time:       time.Date(2026, 11, 23, 7, 0, 0, 123e6, time.UTC),
		ReceivedAt: time.Date(2026, 11, 23, 7, 0, 0, 125e6, time.UTC),
		Payload:    map[string]any{"to": "+31612345678", "duration": 0},
		RawPayload: []byte(`{"to":"+31612345678","duration":0}`),
	}
}
