// Package sinks keeps the registry of sink types. Each type lives in its
// own package (sinks/http, sinks/file, ...), registers itself in init, and
// is linked in by one blank import in sinks/all.
//
// A sink sends one event and says, through the error it returns, whether a
// failure is worth retrying (router.Permanent, router.RetryAfter). Retries,
// backoff and dead letters are the router's job, never the sink's.
package sinks

import (
	"switchboard/registry"
	"switchboard/router"
)

// Builder is a sink type's decoded options. The registry hands out a fresh
// one with defaults set; config.Decode fills it from YAML; Build checks it
// and constructs the sink without connecting anywhere, so that `check` runs
// the same code as `run`.
type Builder interface {
	// Build returns the sink. Problems with settings are returned as
	// config.Problems naming the setting.
	Build(info Info) (router.Sink, error)
}

// Info is what a sink knows about its place in the configuration.
type Info struct {
	Name string // configured sink name
}

// DefaultConcurrency is optionally implemented by a Builder whose type
// should send with more (or fewer) than one delivery in flight when the
// config does not say.
type DefaultConcurrency interface {
	DefaultConcurrency() int
}

// Closer is optionally implemented by a sink holding resources (files,
// connections) to release when it is removed or the daemon stops.
type Closer interface {
	Close() error
}

// Factory returns a Builder with its defaults set.
type Factory func() Builder

var types = registry.New[Factory]("sink")

// Register adds a type. It panics on an empty or duplicate name, so that a
// wiring mistake fails at start, not at the first event.
func Register(typ string, f Factory) {
	if f == nil {
		panic("sinks: Register(" + typ + ") with a nil factory")
	}
	types.Add(typ, f)
}

// Lookup returns the factory of a type.
func Lookup(typ string) (Factory, bool) { return types.Lookup(typ) }

// Types lists the registered types, sorted.
func Types() []string { return types.Types() }

// Previewer is optionally implemented by a sink that can show, without
// sending, the body it would send for an event (`switchboard route`). Sinks
// without it are previewed as the normalized event JSON.
type Previewer interface {
	Preview(e *router.Event) ([]byte, error)
}

// Preflighter is optionally implemented by a sink that needs something of
// the machine before it can send, such as a directory it can write in.
// `check`, `run` at start and every reload ask it, so that a sink that
// could never deliver is refused before any event waits for it. Preflight
// must leave nothing behind.
type Preflighter interface {
	// Preflight returns config.Problems naming the setting at fault.
	Preflight() error
}
