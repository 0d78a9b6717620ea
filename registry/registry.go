// Package registry is the name -> factory map behind source and sink
// types: each type registers itself in init, and the daemon looks types up
// by the name a config gives.
package registry

import (
	"slices"
	"sync"
)

// Registry maps type names to factories of type F.
type Registry[F any] struct {
	kind string // "source", "sink": for panic messages
	mu   sync.RWMutex
	m    map[string]F
}

// New returns an empty registry for one kind of plug-in.
func New[F any](kind string) *Registry[F] {
	return &Registry[F]{kind: kind, m: map[string]F{}}
}

// Add registers a type. It panics on an empty or duplicate name, so that a
// wiring mistake fails at start, not at the first event.
func (r *Registry[F]) Add(typ string, f F) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if typ == "" {
		panic(r.kind + " registry: a type without a name")
	}
	if _, dup := r.m[typ]; dup {
		panic(r.kind + " registry: type " + typ + " registered twice")
	}
	r.m[typ] = f
}

// Lookup returns the factory of a type.
func (r *Registry[F]) Lookup(typ string) (F, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.m[typ]
	return f, ok
}

// Types lists the registered types, sorted.
func (r *Registry[F]) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.m))
	for t := range r.m {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
