// Package config reads switchboard's YAML file into typed settings and finds
// every mistake in it before anything starts.
//
// Loading is strict, in this order: YAML parse (koanf), ${VAR} expansion,
// unknown-key check (with a "did you mean" for typos), typed decode over the
// defaults, then checks of the core settings. Each source and sink type
// decodes its own options with Decode; cross-references (rules naming sinks)
// are checked where rules are compiled. Every problem carries its YAML path.
package config

import (
	"fmt"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
)

// File is the whole configuration file.
type File struct {
	Server    Server            `koanf:"server"`
	Admin     Admin             `koanf:"admin"`
	Log       Log               `koanf:"log"`
	Queue     Queue             `koanf:"queue"`
	Sources   map[string]Source `koanf:"sources"`
	Sinks     map[string]Sink   `koanf:"sinks"`
	Rules     []Rule            `koanf:"rules"`
	Unmatched []string          `koanf:"unmatched"`
}

// Server is the webhook listener.
type Server struct {
	Listen          string        `koanf:"listen"`
	MaxBodyBytes    Size          `koanf:"max_body_bytes"`
	ReadTimeout     time.Duration `koanf:"read_timeout"`
	WriteTimeout    time.Duration `koanf:"write_timeout"`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
}

// Admin is the operator listener: health, metrics, reload, dead letters.
type Admin struct {
	Listen string `koanf:"listen"`
}

// Log selects the log level and format.
type Log struct {
	Level  string `koanf:"level"`
	Format string `koanf:"format"`
}

// Queue is where accepted deliveries wait.
type Queue struct {
	Dir string `koanf:"dir"`
	// MaxBytes bounds the events stored for pending deliveries; past it
	// sources answer 503 and the provider retries. Dead letters do not
	// count: they have bounds of their own.
	MaxBytes Size `koanf:"max_bytes"`
	// MaxPendingPerSink bounds one sink's backlog; past it new deliveries
	// to that sink become dead letters, so that one sink down for hours
	// cannot fill the queue for the others. 0 means no bound.
	MaxPendingPerSink int `koanf:"max_pending_per_sink"`
	// DedupWindow is how long an accepted event's (source, id) is
	// remembered, so that a provider's retry is answered but not routed
	// again. 0 turns deduplication off.
	DedupWindow time.Duration `koanf:"dedup_window"`
	// DeadLetterMaxAge and DeadLetterMaxBytes bound the dead letters: past
	// either, the oldest are dropped, each logged at error and counted.
	// 0 means no bound.
	DeadLetterMaxAge   time.Duration `koanf:"dead_letter_max_age"`
	DeadLetterMaxBytes Size          `koanf:"dead_letter_max_bytes"`
}

// Filter is one {key, value} condition with the providers' subscription
// semantics: same key ORs, different keys AND.
type Filter struct {
	Key   string `koanf:"key"`
	Value string `koanf:"value"`
}

// Source is one named receiver. Type-specific settings stay in Options and
// are decoded by the source type.
type Source struct {
	Type    string         `koanf:"type"`
	Path    string         `koanf:"path"`
	Events  []string       `koanf:"events"`
	Filters []Filter       `koanf:"filters"`
	Options map[string]any `koanf:",remain"`
}

// Sink is one named destination. Type-specific settings stay in Options.
type Sink struct {
	Type        string         `koanf:"type"`
	Retry       Retry          `koanf:"retry"`
	Concurrency int            `koanf:"concurrency"`
	Throttle    *Throttle      `koanf:"throttle"`
	Options     map[string]any `koanf:",remain"`
}

// Throttle is storm control: of the events with the same key (an expr
// expression: `payload.channelId`, `status + ":" + payload.to`), at most
// Limit per Per go through; the rest are counted and summarised in one
// event when the window ends.
type Throttle struct {
	Key   string        `koanf:"key"`
	Limit int           `koanf:"limit"`
	Per   time.Duration `koanf:"per"`
}

// Retry is a sink's retry policy. Each wait is the backoff plus up to 20 %
// jitter; a Retry-After from the receiver is a floor for the next wait.
type Retry struct {
	MaxAttempts     int           `koanf:"max_attempts"`
	InitialInterval time.Duration `koanf:"initial_interval"`
	MaxInterval     time.Duration `koanf:"max_interval"`
	Multiplier      float64       `koanf:"multiplier"`
	MaxAge          time.Duration `koanf:"max_age"`
}

// Rule is one routing rule, in file order.
type Rule struct {
	Name     string    `koanf:"name"`
	Sources  []string  `koanf:"sources"`
	Events   []string  `koanf:"events"`
	Filters  []Filter  `koanf:"filters"`
	When     string    `koanf:"when"`
	To       []string  `koanf:"to"`
	Stop     bool      `koanf:"stop"`
	Throttle *Throttle `koanf:"throttle"`
}

// DefaultRetry is the retry policy of a sink that sets none: ten attempts
// over about ten minutes (waits 1s, 2s, 4s ... capped at 5m, plus jitter),
// then the dead-letter queue.
var DefaultRetry = Retry{
	MaxAttempts:     10,
	InitialInterval: time.Second,
	MaxInterval:     5 * time.Minute,
	Multiplier:      2,
	MaxAge:          24 * time.Hour,
}

// Defaults returns a File holding every default.
func Defaults() File {
	return File{
		Server: Server{
			Listen:          ":8080",
			MaxBodyBytes:    1 << 20,
			ReadTimeout:     10 * time.Second,
			WriteTimeout:    10 * time.Second,
			ShutdownTimeout: 15 * time.Second,
		},
		Admin: Admin{Listen: "127.0.0.1:9090"},
		Log:   Log{Level: "info", Format: "text"},
		Queue: Queue{Dir: "./data", MaxBytes: 1 << 30, MaxPendingPerSink: 100_000, DedupWindow: time.Hour,
			DeadLetterMaxAge: 30 * 24 * time.Hour, DeadLetterMaxBytes: 1 << 30},
	}
}

// Load reads and checks the core of the file at path. Source, sink and rule
// details are checked when they are built (see daemon.Build).
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{Msg: fmt.Sprintf("cannot read config: %v", err)}}
	}
	return Parse(b)
}

// Parse is Load on bytes.
func Parse(b []byte) (*File, error) {
	return parse(b, osLookup)
}

func parse(b []byte, lookup func(string) (string, bool)) (*File, error) {
	f, ps := parsePartial(b, lookup)
	if len(ps) > 0 {
		return nil, ps
	}
	return f, nil
}

// LoadPartial is Load for `check`: with the problems it also returns what
// could be read of the file (nil only when it is not YAML at all), so that
// sources, sinks and rules can be checked too and every problem reported in
// one run. A partial File must never be run.
func LoadPartial(path string) (*File, Problems) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{Msg: fmt.Sprintf("cannot read config: %v", err)}}
	}
	return parsePartial(b, osLookup)
}

func parsePartial(b []byte, lookup func(string) (string, bool)) (*File, Problems) {
	k := koanf.New(".")
	if err := k.Load(rawbytes.Provider(b), yaml.Parser()); err != nil {
		return nil, Problems{{Msg: fmt.Sprintf("not valid YAML: %v", err)}}
	}
	raw := k.Raw()
	var ps Problems
	expandEnv(raw, "", lookup, &ps)
	f := Defaults()
	ps = append(ps, Decode(raw, &f, "")...)
	f.defaults()
	f.check(&ps)
	ps.Sort()
	return &f, ps
}

// defaults fills what depends on other values: a source's path, a sink's
// retry policy.
func (f *File) defaults() {
	for name, s := range f.Sources {
		if s.Path == "" {
			s.Path = "/hooks/" + name
		}
		f.Sources[name] = s
	}
	for name, s := range f.Sinks {
		r := &s.Retry
		d := DefaultRetry
		if r.MaxAttempts == 0 {
			r.MaxAttempts = d.MaxAttempts
		}
		if r.InitialInterval == 0 {
			r.InitialInterval = d.InitialInterval
		}
		if r.MaxInterval == 0 {
			r.MaxInterval = d.MaxInterval
		}
		if r.Multiplier == 0 {
			r.Multiplier = d.Multiplier
		}
		if r.MaxAge == 0 {
			r.MaxAge = d.MaxAge
		}
		f.Sinks[name] = s
	}
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]*$`)

func (f *File) check(ps *Problems) {
	checkListen(ps, "server.listen", f.Server.Listen)
	checkListen(ps, "admin.listen", f.Admin.Listen)
	if f.Server.MaxBodyBytes <= 0 {
		ps.Add("server.max_body_bytes", "must be more than 0, e.g. 1MiB")
	}
	for key, d := range map[string]time.Duration{
		"server.read_timeout": f.Server.ReadTimeout, "server.write_timeout": f.Server.WriteTimeout,
		"server.shutdown_timeout": f.Server.ShutdownTimeout,
	} {
		if d <= 0 {
			ps.Add(key, "must be a positive duration, e.g. 10s")
		}
	}
	switch f.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		ps.Add("log.level", "%q is not a level; use debug, info, warn or error", f.Log.Level)
	}
	switch f.Log.Format {
	case "text", "json":
	default:
		ps.Add("log.format", "%q is not a format; use text (human, coloured on a terminal) or json", f.Log.Format)
	}
	if f.Queue.Dir == "" {
		ps.Add("queue.dir", "is required: the directory that holds queued deliveries")
	}
	if f.Queue.MaxBytes < 0 {
		ps.Add("queue.max_bytes", "must be 0 (no limit) or a size such as 1GiB")
	}
	if f.Queue.MaxPendingPerSink < 0 {
		ps.Add("queue.max_pending_per_sink", "must be 0 (no bound) or a number of deliveries such as 100000")
	}
	if f.Queue.DedupWindow < 0 {
		ps.Add("queue.dedup_window", "must be 0 (off) or a duration such as 1h")
	}
	if f.Queue.DeadLetterMaxAge < 0 {
		ps.Add("queue.dead_letter_max_age", "must be 0 (keep until replayed or purged) or a duration such as 720h (30 days)")
	}
	if f.Queue.DeadLetterMaxBytes < 0 {
		ps.Add("queue.dead_letter_max_bytes", "must be 0 (no bound) or a size such as 1GiB")
	}
	paths := map[string]string{}
	// In name order, so that the same file always names the same duplicate.
	for _, name := range slices.Sorted(maps.Keys(f.Sources)) {
		s := f.Sources[name]
		at := "sources." + name
		if !nameRE.MatchString(name) {
			ps.Add(at, "source names use letters, digits, - and _ (they appear in paths and metrics)")
		}
		if s.Type == "" {
			ps.Add(at+".type", "is required")
		}
		if s.Path[0] != '/' {
			ps.Add(at+".path", "%q must start with /", s.Path)
		} else if other, dup := paths[s.Path]; dup {
			ps.Add(at+".path", "%q is already the path of source %q; give each source its own path", s.Path, other)
		}
		paths[s.Path] = name
	}
	for name, s := range f.Sinks {
		at := "sinks." + name
		if !nameRE.MatchString(name) {
			ps.Add(at, "sink names use letters, digits, - and _ (they appear in metrics)")
		}
		if s.Type == "" {
			ps.Add(at+".type", "is required")
		}
		if s.Concurrency < 0 {
			ps.Add(at+".concurrency", "must be 0 (the type's default) or more")
		}
		r := s.Retry
		if r.MaxAttempts < 1 {
			ps.Add(at+".retry.max_attempts", "must be at least 1")
		}
		if r.InitialInterval < 0 || r.MaxInterval < 0 || r.MaxAge < 0 {
			ps.Add(at+".retry", "intervals and max_age must not be negative")
		}
		if r.MaxInterval < r.InitialInterval {
			ps.Add(at+".retry.max_interval", "%s is below initial_interval %s", r.MaxInterval, r.InitialInterval)
		}
		if r.Multiplier < 1 {
			ps.Add(at+".retry.multiplier", "must be 1 or more (1 = constant interval)")
		}
	}
}

func checkListen(ps *Problems, key, addr string) {
	if addr == "" {
		ps.Add(key, "is required, e.g. \":8080\" or \"127.0.0.1:9090\"")
		return
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		ps.Add(key, "%q is not host:port; write it like \":8080\" or \"127.0.0.1:9090\"", addr)
	}
}
