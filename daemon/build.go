// Package daemon assembles a running switchboard from a config file: it
// builds every source, sink and rule (the same code path for `check`,
// `route` and `run`), serves the webhook and admin listeners, accepts
// events into the queue and runs the per-sink delivery workers.
package daemon

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchboard/config"
	"switchboard/metrics"
	"switchboard/router"
	"switchboard/sinks"
	"switchboard/sources"
)

// Snapshot is everything built from one config file. It is immutable once
// built and published whole, so a request sees one config or another,
// never a mix.
type Snapshot struct {
	File    *config.File
	Table   *router.Table
	Sources map[string]*Source
	Sinks   map[string]*Sink
	// Secrets are every credential of the config, for the redactor.
	Secrets []string
	byPath  map[string]*Source
	// accepting is held shared by every accept routing and queueing under
	// this snapshot, and taken by the reload replacing it: see
	// Daemon.enter.
	accepting sync.RWMutex
}

// Source is a built source with its source-level events and filters.
type Source struct {
	Name    string
	Type    string
	Path    string
	HTTP    sources.HTTPSource   // nil for stream sources
	Stream  sources.StreamSource // nil for webhook sources
	Methods []string
	Events  []string
	Filters router.Filters
	Conf    config.Source
	// Remember is how long the queue remembers the source's accepted ids:
	// queue.dedup_window, or the source's replay window when longer.
	Remember time.Duration
	subpath  bool
	// KeepHeaders are the request headers stored with each event.
	KeepHeaders []string
	keep        []keptHeader
	// events is Events compiled, for Passes.
	events router.Patterns
	// counters are the source's outcome counters, looked up once.
	counters map[string]prometheus.Counter
	// lastHeaders are the kept headers of the latest request that had
	// any (EventHeaders), shared with the next one that has the same.
	lastHeaders atomic.Pointer[map[string]string]
}

func (s *Source) counter(outcome string) prometheus.Counter {
	if c := s.counters[outcome]; c != nil {
		return c
	}
	return metrics.EventsReceived.WithLabelValues(s.Name, outcome, "")
}

// Lookup finds the webhook source serving a request path: the source
// whose path it is, or a source taking subpaths one segment above it. One
// trailing slash is ignored: a provider's console often adds one.
func (s *Snapshot) Lookup(path string) (src *Source, subpath string) {
	if len(path) > 1 && path[len(path)-1] == '/' {
		path = path[:len(path)-1]
	}
	if src := s.byPath[path]; src != nil {
		return src, ""
	}
	i := strings.LastIndexByte(path, '/')
	if i <= 0 || i == len(path)-1 {
		return nil, ""
	}
	if src := s.byPath[path[:i]]; src != nil && src.subpath {
		return src, path[i+1:]
	}
	return nil, ""
}

// keepHeaders sets the headers kept with each event: the source's
// keep_headers, or the defaults of every source and of its type.
func (src *Source) keepHeaders(list []string, b sources.Builder) {
	if list == nil {
		list = slices.Clone(sources.DefaultKeepHeaders)
		if d, ok := b.(sources.HeaderDefaults); ok {
			list = append(list, d.KeepHeaders()...)
		}
	}
	seen := map[string]bool{}
	for _, n := range list {
		c := http.CanonicalHeaderKey(n)
		if seen[c] {
			continue
		}
		seen[c] = true
		src.KeepHeaders = append(src.KeepHeaders, strings.ToLower(n))
		src.keep = append(src.keep, keptHeader{canonical: c, lower: strings.ToLower(n)})
	}
}

// Sink is a built sink with its delivery settings.
type Sink struct {
	Name        string
	Type        string
	Sink        router.Sink
	Retry       config.Retry
	Concurrency int
	Conf        config.Sink
}

// Build builds every part of f and checks the references between them. It
// starts nothing: `check` is Build, `run` is Build and then start. On
// failure the error is config.Problems listing everything found.
func Build(f *config.File) (*Snapshot, error) {
	var ps config.Problems
	s := &Snapshot{File: f, Sources: map[string]*Source{}, Sinks: map[string]*Sink{}, byPath: map[string]*Source{},
		Secrets: config.Secrets(f)}
	pinned := map[string][]string{}
	for _, name := range sortedKeys(f.Sources) {
		sc := f.Sources[name]
		at := "sources." + name
		src := &Source{Name: name, Type: sc.Type, Path: sc.Path, Events: sc.Events, Methods: []string{"POST"}, Conf: sc,
			counters: map[string]prometheus.Counter{}}
		for _, o := range []string{outcomeAccepted, outcomeFiltered, outcomeDuplicate} {
			src.counters[o] = metrics.EventsReceived.WithLabelValues(name, o, "")
		}
		pinned[name] = sc.Events
		factory, known := sources.Lookup(sc.Type)
		var b sources.Builder
		if known {
			b = factory()
			// A type that only emits known events pins a source without its
			// own events setting to them: its status filters are checked too.
			if c, ok := b.(sources.Catalog); ok && len(sc.Events) == 0 {
				pinned[name] = c.Events()
			}
		}
		var fps config.Problems
		src.Filters, fps = router.CompileFilters(sc.Filters, at+".filters", pinned[name])
		ps = append(ps, fps...)
		if !known {
			if sc.Type != "" { // a missing type is the config's problem, reported there
				ps.Add(at+".type", "unknown source type %q; known types: %s", sc.Type, strings.Join(sources.Types(), ", "))
			}
			continue
		}
		dps := config.Decode(sc.Options, b, at)
		s.Secrets = append(s.Secrets, config.Secrets(b)...)
		if len(dps) > 0 {
			ps = append(ps, dps...)
			continue
		}
		built, err := b.Build(sources.Info{Name: name, Events: sc.Events})
		if err != nil {
			ps.Merge(at, err)
			continue
		}
		src.Remember = f.Queue.DedupWindow
		if rw, ok := built.(sources.ReplayWindow); ok {
			src.Remember = max(src.Remember, rw.ReplayWindow())
		}
		switch v := built.(type) {
		case sources.HTTPSource:
			src.HTTP = v
			if m, ok := v.(sources.Methods); ok {
				src.Methods = m.Methods()
			}
			// HEAD wherever GET (RFC 9110 9.3.2).
			if i := slices.Index(src.Methods, http.MethodGet); i >= 0 && !slices.Contains(src.Methods, http.MethodHead) {
				src.Methods = slices.Insert(slices.Clone(src.Methods), i+1, http.MethodHead)
			}
			if sp, ok := v.(sources.Subpaths); ok {
				src.subpath = sp.TakesSubpath()
			}
			s.byPath[src.Path] = src
			src.keepHeaders(sc.KeepHeaders, b)
		case sources.StreamSource:
			src.Stream = v
			// A stream source subscribes to its events and may take names
			// for them that its events do not carry (the provider's
			// documentation aliases): the names it says it emits are the
			// source's events, for the source filter and the rule checks.
			if c, ok := v.(sources.Catalog); ok {
				src.Events = c.Events()
				pinned[name] = src.Events
			}
		default:
			panic(fmt.Sprintf("source type %s built a %T, which is neither an HTTPSource nor a StreamSource", sc.Type, built))
		}
		src.events = router.CompilePatterns(src.Events)
		s.Sources[name] = src
	}
	for _, name := range sortedKeys(f.Sinks) {
		sc := f.Sinks[name]
		at := "sinks." + name
		factory, ok := sinks.Lookup(sc.Type)
		if !ok && sc.Type == "" {
			continue // reported by config
		}
		if !ok {
			ps.Add(at+".type", "unknown sink type %q; known types: %s", sc.Type, strings.Join(sinks.Types(), ", "))
			continue
		}
		b := factory()
		dps := config.Decode(sc.Options, b, at)
		s.Secrets = append(s.Secrets, config.Secrets(b)...)
		if len(dps) > 0 {
			ps = append(ps, dps...)
			continue
		}
		sink, err := b.Build(sinks.Info{Name: name})
		if err != nil {
			ps.Merge(at, err)
			continue
		}
		conc := sc.Concurrency
		if conc == 0 {
			conc = 1
			if d, ok := b.(sinks.DefaultConcurrency); ok {
				conc = d.DefaultConcurrency()
			}
		}
		s.Sinks[name] = &Sink{Name: name, Type: sc.Type, Sink: sink, Retry: sc.Retry, Concurrency: conc, Conf: sc}
	}
	// Rules may only name sinks and sources that are configured, built or
	// not: a sink with a bad setting is reported once, at the sink.
	table, rps := router.Compile(f.Rules, f.Unmatched, sortedKeys(f.Sinks), pinned)
	ps = append(ps, rps...)
	throttles := map[string]*config.Throttle{}
	for name, sc := range f.Sinks {
		if sc.Throttle != nil {
			throttles[name] = sc.Throttle
		}
	}
	ps = append(ps, table.ThrottleSinks(throttles)...)
	s.Table = table
	if len(ps) > 0 {
		return nil, f.Scrub(ps, s.Secrets)
	}
	return s, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
