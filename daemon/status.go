package daemon

import (
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"switchboard/config"
	"switchboard/metrics"
)

// The console's overview, GET /api/status. Counts come from the
// Prometheus metrics themselves (the same series /metrics serves), so the
// page and the scrape can never disagree; stats holds only what metrics
// do not: the last match and the last error of each rule, each sink's
// attempts in flight, its last error and its rates over the last minute.

// stats is fed by the same observers that count the metrics.
type stats struct {
	rules sync.Map // name -> *ruleStat
	sinks sync.Map // name -> *sinkStat
}

type ruleStat struct {
	lastMatch atomic.Int64 // unix nanoseconds of the matched event's receipt
	lastErr   atomic.Pointer[lastError]
}

type sinkStat struct {
	inFlight  atomic.Int64
	lastErr   atomic.Pointer[lastError]
	delivered minuteRate
	failed    minuteRate // attempts that failed: retried or dead
}

// lastError is the latest failure of a rule or a sink.
type lastError struct {
	At      time.Time `json:"at"`
	Error   string    `json:"error"`
	EventID string    `json:"event_id,omitempty"`
}

func (s *stats) rule(name string) *ruleStat {
	if r, ok := s.rules.Load(name); ok {
		return r.(*ruleStat)
	}
	r, _ := s.rules.LoadOrStore(name, &ruleStat{})
	return r.(*ruleStat)
}

func (s *stats) sink(name string) *sinkStat {
	if r, ok := s.sinks.Load(name); ok {
		return r.(*sinkStat)
	}
	r, _ := s.sinks.LoadOrStore(name, &sinkStat{})
	return r.(*sinkStat)
}

// minuteRate counts events over the last minute in twelve buckets of five
// seconds.
type minuteRate struct {
	mu      sync.Mutex
	buckets [12]struct{ slot, n int64 }
}

const rateBucket = 5 // seconds

func (m *minuteRate) add(now time.Time) {
	slot := now.Unix() / rateBucket
	b := &m.buckets[slot%int64(len(m.buckets))]
	m.mu.Lock()
	if b.slot != slot {
		b.slot, b.n = slot, 0
	}
	b.n++
	m.mu.Unlock()
}

// perMinute is the count over the minute up to now.
func (m *minuteRate) perMinute(now time.Time) int64 {
	cur := now.Unix() / rateBucket
	var n int64
	m.mu.Lock()
	for _, b := range m.buckets {
		if b.slot > cur-int64(len(m.buckets)) && b.slot <= cur {
			n += b.n
		}
	}
	m.mu.Unlock()
	return n
}

// reloadState is the running config's story: when it was applied, from
// which file content, and the last refused reload while it stands.
type reloadState struct {
	At       time.Time `json:"at"`
	Trigger  string    `json:"trigger"`
	Checksum string    `json:"checksum,omitempty"`
	Refused  *refusal  `json:"refused,omitempty"`
}

type refusal struct {
	At       time.Time `json:"at"`
	Trigger  string    `json:"trigger"`
	Problems []string  `json:"problems"`
}

// status is GET /api/status.
type status struct {
	Version       string        `json:"version"`
	Started       time.Time     `json:"started"`
	UptimeSeconds int64         `json:"uptime_seconds"`
	Now           time.Time     `json:"now"`
	ConfigPath    string        `json:"config_path,omitempty"`
	Reload        reloadState   `json:"reload"`
	Sources       []sourceState `json:"sources"`
	Rules         []ruleState   `json:"rules"`
	Sinks         []sinkState   `json:"sinks"`
	History       historyState  `json:"history"`
	Taps          int           `json:"taps"`
}

type sourceState struct {
	Name      string           `json:"name"`
	Type      string           `json:"type"`
	Path      string           `json:"path,omitempty"`
	Stream    bool             `json:"stream,omitempty"`
	Accepted  int64            `json:"accepted"`
	Filtered  int64            `json:"filtered"`
	Duplicate int64            `json:"duplicate"`
	Unmatched int64            `json:"unmatched"`
	Rejected  map[string]int64 `json:"rejected"`
}

type ruleState struct {
	Name      string     `json:"name"`
	Matches   int64      `json:"matches"`
	Errors    int64      `json:"errors"`
	LastMatch time.Time  `json:"last_match,omitzero"`
	LastError *lastError `json:"last_error,omitempty"`
}

type sinkState struct {
	Name                 string     `json:"name"`
	Type                 string     `json:"type"`
	Pending              int64      `json:"pending"`
	OldestPendingSeconds float64    `json:"oldest_pending_seconds"`
	InFlight             int64      `json:"in_flight"`
	DeliveredPerMinute   int64      `json:"delivered_per_minute"`
	FailedPerMinute      int64      `json:"failed_per_minute"`
	Delivered            int64      `json:"delivered"`
	Retried              int64      `json:"retried"`
	Dead                 int64      `json:"dead"`
	DeadLetters          int64      `json:"dead_letters"`
	LastError            *lastError `json:"last_error,omitempty"`
}

type historyState struct {
	Events    int   `json:"events"`
	MaxEvents int   `json:"max_events"`
	MaxAgeSec int64 `json:"max_age_seconds"`
}

func (d *Daemon) serveStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.status(time.Now()))
}

func (d *Daemon) status(now time.Time) status {
	snap := d.snap.Load()
	st := status{Version: d.Version, Started: d.started, UptimeSeconds: int64(now.Sub(d.started).Seconds()), Now: now,
		ConfigPath: d.ConfigPath, Reload: *d.reload.Load(), Taps: d.tap.count(),
		Sources: []sourceState{}, Rules: []ruleState{}, Sinks: []sinkState{},
		History: historyState{Events: d.history.Len(), MaxEvents: d.history.Cap(), MaxAgeSec: int64(snap.File.History.MaxAge.Seconds())}}
	received := collect(metrics.EventsReceived)
	unmatched := collect(metrics.EventsUnmatched)
	for _, name := range sortedKeys(snap.Sources) {
		src := snap.Sources[name]
		s := sourceState{Name: name, Type: src.Type, Path: src.Path, Stream: src.Stream != nil, Rejected: map[string]int64{}}
		for _, m := range received {
			if label(m, "source") != name {
				continue
			}
			n := value(m)
			switch label(m, "outcome") {
			case outcomeAccepted:
				s.Accepted += n
			case outcomeFiltered:
				s.Filtered += n
			case outcomeDuplicate:
				s.Duplicate += n
			case "rejected":
				s.Rejected[label(m, "reason")] += n
			}
		}
		s.Unmatched = sum(unmatched, "source", name)
		st.Sources = append(st.Sources, s)
	}
	matches, errs := collect(metrics.RuleMatches), collect(metrics.RuleErrors)
	for _, rc := range snap.File.Rules {
		rs := d.stats.rule(rc.Name)
		r := ruleState{Name: rc.Name, Matches: sum(matches, "rule", rc.Name), Errors: sum(errs, "rule", rc.Name),
			LastError: rs.lastErr.Load()}
		if t := rs.lastMatch.Load(); t != 0 {
			r.LastMatch = time.Unix(0, t).UTC()
		}
		st.Rules = append(st.Rules, r)
	}
	st.Sinks = d.sinkStates(snap, now)
	return st
}

func (d *Daemon) sinkStates(snap *Snapshot, now time.Time) []sinkState {
	out := []sinkState{}
	depth, oldest, dead := collect(metrics.QueueDepth), collect(metrics.OldestPending), collect(metrics.DeadLetters)
	deliveries := collect(metrics.Deliveries)
	for _, name := range sortedKeys(snap.Sinks) {
		ss := d.stats.sink(name)
		s := sinkState{Name: name, Type: snap.Sinks[name].Type, Pending: sum(depth, "sink", name),
			InFlight: max(ss.inFlight.Load(), 0), DeliveredPerMinute: ss.delivered.perMinute(now),
			FailedPerMinute: ss.failed.perMinute(now), DeadLetters: sum(dead, "sink", name), LastError: ss.lastErr.Load()}
		for _, m := range oldest {
			if label(m, "sink") == name {
				s.OldestPendingSeconds = m.GetGauge().GetValue()
			}
		}
		for _, m := range deliveries {
			if label(m, "sink") != name {
				continue
			}
			switch label(m, "outcome") {
			case "success":
				s.Delivered = value(m)
			case "retry":
				s.Retried = value(m)
			case "dead":
				s.Dead = value(m)
			}
		}
		out = append(out, s)
	}
	return out
}

// collect reads every series of a metric vector.
func collect(c prometheus.Collector) []*dto.Metric {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	var out []*dto.Metric
	for m := range ch {
		pb := &dto.Metric{}
		if m.Write(pb) == nil {
			out = append(out, pb)
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func value(m *dto.Metric) int64 {
	if c := m.GetCounter(); c != nil {
		return int64(c.GetValue())
	}
	return int64(m.GetGauge().GetValue())
}

// sum adds the series whose label name is value.
func sum(ms []*dto.Metric, name, val string) int64 {
	var n int64
	for _, m := range ms {
		if label(m, name) == val {
			n += value(m)
		}
	}
	return n
}

// noteApplied records a config applied (at start or by a reload).
func (d *Daemon) noteApplied(trigger string, hash [32]byte) {
	st := &reloadState{At: time.Now().UTC(), Trigger: trigger}
	if hash != ([32]byte{}) {
		st.Checksum = "sha256:" + hex.EncodeToString(hash[:])
	}
	d.reload.Store(st)
}

// noteRefused records a refused reload; the running config stays.
func (d *Daemon) noteRefused(trigger string, err error) {
	var msgs []string
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			msgs = append(msgs, p.Error())
		}
	} else {
		msgs = []string{err.Error()}
	}
	st := *d.reload.Load()
	st.Refused = &refusal{At: time.Now().UTC(), Trigger: trigger, Problems: msgs}
	d.reload.Store(&st)
}

// noteRecovered clears a refusal: the file is back to what runs.
func (d *Daemon) noteRecovered() {
	st := *d.reload.Load()
	st.Refused = nil
	d.reload.Store(&st)
}
