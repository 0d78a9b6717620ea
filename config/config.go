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
	"bytes"
	"fmt"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	"golang.org/x/net/http/httpguts"

	"switchboard/redact"
)

// File is the whole configuration file.
type File struct {
	Server    Server            `koanf:"server"`
	Admin     Admin             `koanf:"admin"`
	Log       Log               `koanf:"log"`
	Queue     Queue             `koanf:"queue"`
	History   History           `koanf:"history"`
	Sources   map[string]Source `koanf:"sources"`
	Sinks     map[string]Sink   `koanf:"sinks"`
	Rules     []Rule            `koanf:"rules"`
	Unmatched []string          `koanf:"unmatched"`

	env []envUse // what ${VAR}s became, to keep their values out of problems
}

// Server is the webhook listener.
type Server struct {
	Listen       string `koanf:"listen"`
	MaxBodyBytes Size   `koanf:"max_body_bytes"`
	// MaxEventNameBytes bounds an event's name; a longer one is refused
	// with 400 (matching a name costs time in proportion to its length).
	MaxEventNameBytes int `koanf:"max_event_name_bytes"`
	// MaxBatchEvents bounds the events of one batch request; a larger
	// batch is refused with 413 before its events are decoded.
	MaxBatchEvents int `koanf:"max_batch_events"`
	// MaxConnections bounds the open connections of the webhook listener;
	// past it new connections wait in the kernel's backlog.
	MaxConnections  int           `koanf:"max_connections"`
	ReadTimeout     time.Duration `koanf:"read_timeout"`
	WriteTimeout    time.Duration `koanf:"write_timeout"`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
}

// Admin is the operator listener: health, metrics, reload, dead letters,
// the console.
type Admin struct {
	Listen string    `koanf:"listen"`
	Auth   AdminAuth `koanf:"auth"`
	// AllowedHosts are the names, besides loopback and the listener's own
	// address, that requests may give as Host: a Service or ingress name.
	AllowedHosts []string `koanf:"allowed_hosts"`
	// Pprof serves /debug/pprof (behind the token, when one is set).
	Pprof bool `koanf:"pprof"`
}

// AdminAuth is the admin listener's access control. With a token, every
// endpoint but the health checks, the console's static files and (unless
// ProtectMetrics) /metrics needs it.
type AdminAuth struct {
	BearerToken    Secret `koanf:"bearer_token"`
	ProtectMetrics bool   `koanf:"protect_metrics"`
}

// Log selects the log level and format.
type Log struct {
	Level  string `koanf:"level"`
	Format string `koanf:"format"`
}

// Queue is where accepted deliveries wait.
type Queue struct {
	// Driver is "embedded" (a log under Dir, one daemon per directory) or
	// "nats" (a JetStream stream that several replicas share).
	Driver string `koanf:"driver"`
	Dir    string `koanf:"dir"`
	NATS   NATS   `koanf:"nats"`
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

// Queue drivers.
const (
	DriverEmbedded = "embedded"
	DriverNATS     = "nats"
)

// NATS is the shared queue of queue.driver nats: where the JetStream
// servers are and how to log in to them.
type NATS struct {
	// URL is one server or a comma-separated list of a cluster's servers.
	URL string `koanf:"url"`
	// Stream names the work stream; the dead letters and the remembered
	// event ids live in STREAM_DLQ and the key-value bucket STREAM_SEEN.
	Stream string `koanf:"stream"`
	// Replicas is how many servers keep each message: 3 in production.
	Replicas        int     `koanf:"replicas"`
	CredentialsFile string  `koanf:"credentials_file"`
	NKeyFile        string  `koanf:"nkey_file"`
	TokenFile       string  `koanf:"token_file"`
	TLS             NATSTLS `koanf:"tls"`
	// AckWait is how long a delivery taken by a replica that stopped
	// answering (killed, cut off) waits before another replica takes it.
	// Deliveries still being sent are kept alive by their replica.
	AckWait time.Duration `koanf:"ack_wait"`
}

// NATSTLS is the client side of TLS to the NATS servers.
type NATSTLS struct {
	CAFile   string `koanf:"ca_file"`
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
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
	Type    string   `koanf:"type"`
	Path    string   `koanf:"path"`
	Events  []string `koanf:"events"`
	Filters []Filter `koanf:"filters"`
	// KeepHeaders lists the request headers stored with each event (and so
	// seen by rules and templates); nil means the source type's defaults.
	KeepHeaders []string       `koanf:"keep_headers"`
	Options     map[string]any `koanf:",remain"`
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
			Listen:            ":8080",
			MaxBodyBytes:      1 << 20,
			MaxEventNameBytes: 256,
			MaxBatchEvents:    1000,
			MaxConnections:    1024,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			ShutdownTimeout:   15 * time.Second,
		},
		Admin: Admin{Listen: "127.0.0.1:9090"},
		Log:   Log{Level: "info", Format: "text"},
		Queue: Queue{Driver: DriverEmbedded, Dir: "./data", MaxBytes: 1 << 30, MaxPendingPerSink: 100_000, DedupWindow: time.Hour,
			DeadLetterMaxAge: 30 * 24 * time.Hour, DeadLetterMaxBytes: 1 << 30,
			NATS: NATS{Stream: "SWITCHBOARD", Replicas: 1, AckWait: 30 * time.Second}},
		History: History{MaxEvents: DefaultHistoryEvents, MaxAge: time.Hour},
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
		return nil, Problems{{Msg: "not valid YAML: " + yamlHint(b, err)}}
	}
	raw := k.Raw()
	var ps Problems
	if len(raw) == 0 {
		// A file truncated by a failed copy or an editor must never be
		// applied: it would unload every source.
		ps.Add("", "the file is empty (no settings, or only comments); a config needs sources and sinks, e.g. those of config.example.yaml")
		f := Defaults()
		return &f, ps
	}
	var uses []envUse
	expandEnv(raw, "", lookup, &ps, &uses)
	f := Defaults()
	f.env = uses
	ps = append(ps, Decode(raw, &f, "")...)
	required(raw, &ps)
	f.defaults()
	f.check(&ps)
	ps.Sort()
	return &f, f.Scrub(ps, Secrets(&f))
}

// Scrub makes problems found in f safe to print: values taken from the
// environment are named instead of shown, and secrets (values of Secret
// settings, which `Secrets` lists) are redacted in case a check quoted
// one.
func (f *File) Scrub(ps Problems, secrets []string) Problems {
	ps = nameEnv(ps, f.env)
	r := redact.New(secrets...)
	if r.Empty() {
		return ps
	}
	for i := range ps {
		ps[i].Msg = r.String(ps[i].Msg)
	}
	return ps
}

// yamlHint turns the YAML parser's error into what to do about it where the
// parser's own words mislead: a tab in the indentation is "found character
// that cannot start any token", often on another line than the tab's.
func yamlHint(b []byte, err error) string {
	msg := err.Error()
	if !strings.Contains(msg, "tab") && !strings.Contains(msg, "cannot start any token") {
		return msg
	}
	for i, line := range bytes.Split(b, []byte("\n")) {
		indent := line[:len(line)-len(bytes.TrimLeft(line, " \t"))]
		if bytes.IndexByte(indent, '\t') >= 0 {
			return fmt.Sprintf("YAML does not allow tabs for indentation; use spaces (line %d)", i+1)
		}
	}
	return msg
}

// required reports a config without sources or without sinks: it could
// never deliver anything, and applied on reload it would unload every
// source. (A section of the wrong type is Decode's to report.)
func required(raw map[string]any, ps *Problems) {
	for _, r := range []struct{ key, msg string }{
		{"sources", "none defined; a config needs at least one source to receive events, e.g. sources: {events: {type: generic}}"},
		{"sinks", "none defined; a config needs at least one sink to deliver to, e.g. sinks: {archive: {type: file, path: ./data/events.jsonl}}"},
	} {
		v := raw[r.key]
		m, isMap := v.(map[string]any)
		l, isList := v.([]any)
		if v == nil || (isMap && len(m) == 0) || (isList && len(l) == 0) {
			ps.Add(r.key, "%s", r.msg)
		}
	}
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
	if listenersClash(f.Server.Listen, f.Admin.Listen) {
		ps.Add("admin.listen", "%q and server.listen %q take the same port, so the daemon could not start; give the admin listener its own port, e.g. 127.0.0.1:9090", f.Admin.Listen, f.Server.Listen)
	}
	f.Admin.check(ps)
	if f.Server.MaxBodyBytes <= 0 {
		ps.Add("server.max_body_bytes", "must be more than 0, e.g. 1MiB")
	}
	for key, n := range map[string]int{
		"server.max_event_name_bytes": f.Server.MaxEventNameBytes, "server.max_batch_events": f.Server.MaxBatchEvents,
		"server.max_connections": f.Server.MaxConnections,
	} {
		if n < 1 {
			ps.Add(key, "must be 1 or more (defaults: max_event_name_bytes 256, max_batch_events 1000, max_connections 1024)")
		}
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
	f.Queue.check(ps)
	f.History.check(ps)
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
		checkKeepHeaders(ps, at+".keep_headers", s.KeepHeaders)
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

// MaxKeepHeaders bounds a source's keep_headers: every kept header is
// stored with every event.
const MaxKeepHeaders = 32

// CredentialHeaders are never stored with an event, even when listed: a
// sender's credentials belong neither in the queue nor in templates.
var CredentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie"}

func checkKeepHeaders(ps *Problems, at string, names []string) {
	if len(names) > MaxKeepHeaders {
		ps.Add(at, "lists %d headers; keep at most %d (each is stored with every event)", len(names), MaxKeepHeaders)
	}
	for i, n := range names {
		switch {
		case !httpguts.ValidHeaderFieldName(n):
			ps.Add(fmt.Sprintf("%s[%d]", at, i), "%q is not a header name; write it like content-type or x-request-id", n)
		case slices.ContainsFunc(CredentialHeaders, func(c string) bool { return strings.EqualFold(c, n) }):
			ps.Add(fmt.Sprintf("%s[%d]", at, i), "%s carries the sender's credentials, which are never stored; remove it", n)
		}
	}
}

// listenersClash reports whether two listen addresses cannot both be
// bound: the same port (not 0, which picks a free one) on the same host,
// or on all interfaces for either.
func listenersClash(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	local := func(h string) bool { return strings.EqualFold(h, "localhost") }
	return strings.EqualFold(ha, hb) || wild(ha) || wild(hb) ||
		local(ha) && LoopbackListen(b) || local(hb) && LoopbackListen(a)
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
