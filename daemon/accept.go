package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchboard/daemon/history"
	"switchboard/metrics"
	"switchboard/redact"
	"switchboard/router"
	"switchboard/sources"
)

// serveWebhook is the webhook listener: the ingest pipeline's Read (see
// ingest.go), then accept.
func (d *Daemon) serveWebhook(w http.ResponseWriter, r *http.Request) {
	in, err := d.snap.Load().Read(r, time.Now().UTC(), d.log)
	if err != nil {
		name := ""
		if in.Source != nil {
			name = in.Source.Name
			if re, ok := err.(*sources.RejectError); ok && re.Status == http.StatusMethodNotAllowed {
				w.Header().Set("Allow", strings.Join(in.Source.Methods, ", "))
			}
		}
		d.rejectErr(w, name, err)
		return
	}
	src, res := in.Source, in
	if d.draining.Load() {
		d.reject(w, src.Name, "shutting_down", http.StatusServiceUnavailable, "shutting down; retry later")
		return
	}
	if res.Reply != nil {
		d.log.Info("answered a verification request", "source", src.Name)
		w.Header().Set("Content-Type", "application/json")
		w.Write(res.Reply)
		return
	}
	outcomes, err := d.accept(r.Context(), src, res.Events)
	if err != nil {
		reason := "queue"
		if errors.Is(err, router.ErrQueueFull) {
			reason = "queue_full"
		}
		d.reject(w, src.Name, reason, http.StatusServiceUnavailable, "cannot queue the event now ("+err.Error()+"); retry later")
		return
	}
	if len(res.Events) == 1 {
		if outcomes[0] == outcomeFiltered {
			writeJSON(w, http.StatusOK, map[string]string{"status": outcomes[0]})
			return
		}
		// The answer of nearly every request, built without reflection.
		b := make([]byte, 0, 48+len(res.Events[0].ID))
		b = append(b, `{"id":`...)
		b = router.AppendJSONString(b, res.Events[0].ID)
		b = append(b, `,"status":"`...)
		b = append(b, outcomes[0]...)
		b = append(b, "\"}\n"...)
		w.Header()["Content-Type"] = jsonContentType // shared, never changed: no allocation
		w.Write(b)
		return
	}
	ids, filtered, dups := []string{}, 0, 0
	for i, o := range outcomes {
		switch o {
		case outcomeAccepted:
			ids = append(ids, res.Events[i].ID)
		case outcomeFiltered:
			filtered++
		case outcomeDuplicate:
			dups++
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "accepted", "ids": ids, "filtered": filtered, "duplicates": dups})
}

// accept applies the source's own events and filters, routes what passes
// and queues its deliveries; the queue recognises provider retries of
// events already accepted and queues nothing for them. It returns one
// outcome per event; an error means nothing was queued.
func (d *Daemon) accept(ctx context.Context, src *Source, events []*router.Event) ([]string, error) {
	snap := d.enter()
	defer snap.accepting.RUnlock()
	if cur := snap.Sources[src.Name]; cur != nil {
		src = cur // its events and filters as of this snapshot
	}
	var batch []router.Routed
	var outcomes []string
	var at []int // batch index -> events index
	var obs *matchCollector
	var one *acceptOne
	if len(events) == 1 {
		one = &acceptOne{}
		batch, outcomes, at, obs = one.batch[:0], one.outcomes[:], one.at[:0], &one.obs
		obs.matches = one.matches[:0]
	} else {
		batch = make([]router.Routed, 0, len(events))
		outcomes = make([]string, len(events))
		at = make([]int, 0, len(events))
		obs = &matchCollector{}
	}
	var idx []int
	// Matches are counted once the queue has told duplicates apart: a
	// provider's retry is not a second match.
	obs.ruleObserver = ruleObserver{d.log, &d.stats}
	for i, ev := range events {
		var passed bool
		if idx, passed = snap.Route(src, ev, idx[:0], obs, nil); !passed {
			outcomes[i] = outcomeFiltered
			continue
		}
		batch = append(batch, router.Routed{Event: ev, Sinks: snap.Table.SinkNames(idx), Remember: src.Remember})
		at = append(at, i)
		obs.event++
	}
	// The history's entries are made before the events are queued and
	// ride along with them (Memo): the queue hands deliveries to the
	// workers as it stores them, and their attempts then update the entry
	// directly, before the entry is even added.
	var lists eventLists
	if d.history != nil || d.tap.active() {
		lists = obs.lists(len(batch), one)
	}
	if d.history != nil {
		if one != nil {
			lists.entries = one.entries[:len(batch)]
		} else {
			lists.entries = make([]*history.Entry, len(batch))
		}
		for j, r := range batch {
			lists.entries[j] = history.NewEntry(r.Event, history.Accepted, lists.rules[j], r.Sinks, lists.held[j])
			r.Event.Memo = lists.entries[j]
		}
	}
	if len(batch) > 0 {
		if err := d.queue.Enqueue(ctx, batch); err != nil {
			return nil, err
		}
	}
	for _, m := range obs.matches {
		if r := batch[m.event]; !r.Duplicate {
			metrics.RuleMatches.WithLabelValues(m.rule).Inc()
			d.stats.rule(m.rule).lastMatch.Store(r.Event.ReceivedAt.UnixNano())
		}
	}
	for j, r := range batch {
		if r.Duplicate {
			outcomes[at[j]] = outcomeDuplicate
			continue
		}
		outcomes[at[j]] = outcomeAccepted
		if len(r.Sinks) == 0 {
			metrics.EventsUnmatched.WithLabelValues(src.Name).Inc()
		}
	}
	// Debug lines only when they are kept: building their attributes costs
	// allocations on every event.
	debug := d.log.Enabled(ctx, slog.LevelDebug)
	for i, ev := range events {
		src.counter(outcomes[i]).Inc()
		switch outcomes[i] {
		case outcomeAccepted:
			if debug {
				d.log.Debug("event accepted", "event_id", ev.ID, "source", src.Name, "event", ev.Event, "status", ev.Status)
			}
		case outcomeFiltered:
			if debug {
				d.log.Debug("event filtered by source", "event_id", ev.ID, "source", src.Name, "event", ev.Event, "status", ev.Status)
			}
		case outcomeDuplicate:
			d.log.Info("duplicate of an accepted event; acknowledged, not routed again", "event_id", ev.ID, "source", src.Name, "event", ev.Event)
		}
	}
	if d.history != nil || d.tap.active() {
		d.record(events, outcomes, batch, at, lists)
	}
	return outcomes, nil
}

// eventLists are, per batch index, the rules an event matched, the storm
// controls ("rule x", "sink y") that held it back from some sinks, and its
// history entry when history is on.
type eventLists struct {
	rules, held [][]string
	entries     []*history.Entry
}

// acceptOne holds an accept's lists for a request of one event, nearly
// every request, in one allocation.
type acceptOne struct {
	obs         matchCollector
	batch       [1]router.Routed
	outcomes    [1]string
	at          [1]int
	matches     [2]ruleMatch
	rules, held [1][]string
	names       [2]string
	entries     [1]*history.Entry
}

// lists sorts the matches and holds, which come in batch order, by event;
// in one's arrays when it is set (n is 1).
func (c *matchCollector) lists(n int, one *acceptOne) eventLists {
	var l eventLists
	var names []string
	if one != nil && len(c.matches) <= len(one.names) {
		l.rules, l.held, names = one.rules[:], one.held[:], one.names[:len(c.matches)]
	} else {
		l.rules, l.held = make([][]string, n), make([][]string, n)
		// The rule names of every event in one array: each event's are
		// a slice of it.
		names = make([]string, len(c.matches))
	}
	k := 0
	for j := range n {
		start := k
		for k < len(c.matches) && c.matches[k].event == j {
			names[k] = c.matches[k].rule
			k++
		}
		l.rules[j] = names[start:k:k]
	}
	for _, m := range c.held {
		l.held[m.event] = append(l.held[m.event], m.rule)
	}
	return l
}

// record puts each event of an accept in the history and hands it to the
// tap when someone watches: its outcome, the rules it matched, the sinks
// chosen and the storm controls that held it back from some.
func (d *Daemon) record(events []*router.Event, outcomes []string, batch []router.Routed, at []int, lists eventLists) {
	tapOn := d.tap.active()
	j := 0
	for i, ev := range events {
		var rules, sinks, held []string
		var e *history.Entry
		if j < len(at) && at[j] == i {
			if outcomes[i] == outcomeAccepted {
				rules, sinks, held = lists.rules[j], batch[j].Sinks, lists.held[j]
				if lists.entries != nil {
					e = lists.entries[j]
				}
			}
			j++
		}
		if d.history != nil {
			if e == nil { // filtered, or a provider's retry
				e = history.NewEntry(ev, outcomes[i], rules, sinks, held)
			}
			d.history.Add(e)
		}
		if tapOn {
			d.tap.publish(eventItem(ev, outcomes[i], rules, sinks, held))
		}
	}
}

// Event outcomes, as answered and counted.
const (
	outcomeAccepted  = "accepted"
	outcomeFiltered  = "filtered"
	outcomeDuplicate = "duplicate"
)

// enter returns the snapshot in force, held so that a reload publishing a
// new one waits until this accept has routed and queued under it: each
// event is routed and queued under exactly one snapshot. Nothing else
// waits on the hold (a request arriving meanwhile takes the new
// snapshot), so a slow route delays only the reload. Release it with
// snap.accepting.RUnlock().
func (d *Daemon) enter() *Snapshot {
	for {
		snap := d.snap.Load()
		snap.accepting.RLock()
		if d.snap.Load() == snap {
			return snap
		}
		snap.accepting.RUnlock() // replaced meanwhile: take the new one
	}
}

// rejectErr answers a source's refusal: a RejectError with its status
// and challenge, anything else 400.
func (d *Daemon) rejectErr(w http.ResponseWriter, source string, err error) {
	var re *sources.RejectError
	if !errors.As(err, &re) {
		re = &sources.RejectError{Status: http.StatusBadRequest, Reason: "parse", Msg: err.Error()}
	}
	if re.Challenge != "" {
		w.Header().Set("WWW-Authenticate", re.Challenge)
	}
	d.reject(w, source, re.Reason, re.Status, re.Msg)
}

// orList writes a list for a sentence: "GET, HEAD or POST".
func orList(l []string) string {
	if len(l) < 2 {
		return strings.Join(l, "")
	}
	return strings.Join(l[:len(l)-1], ", ") + " or " + l[len(l)-1]
}

// shortPath is a request path as answers quote it: secrets redacted
// (a token may travel in it), then bounded, as any length up to the
// header limit may be sent; redacting first, so that the cut cannot leave
// part of a secret.
func shortPath(p string) string {
	p = redact.String(p)
	if len(p) > 200 {
		return p[:200] + "…"
	}
	return p
}

func (d *Daemon) reject(w http.ResponseWriter, source, reason string, status int, msg string) {
	label := source
	if label == "" {
		label = "-"
	}
	metrics.EventsReceived.WithLabelValues(label, "rejected", reason).Inc()
	d.log.Warn("request rejected", "source", source, "status", status, "reason", reason, "err", msg)
	if d.tap.active() {
		d.tap.publish(&TapItem{At: time.Now().UTC(), Outcome: "rejected", Source: source, Reason: reason, Code: status, Error: msg})
	}
	writeJSON(w, status, map[string]string{"error": msg})
}

// Stored headers are capped: each value at maxHeaderValue bytes (cut at a
// character boundary), all of them at maxHeaderBytes; past that, the rest
// of the allow-list is not kept.
const (
	maxHeaderValue = 1024
	maxHeaderBytes = 4096
)

// EventHeaders is the event's view of the request headers: the first
// value of each header on the source's keep list, by lower-case name,
// within the caps. Credentials are never on the list (config refuses
// them), so they are never stored with an event nor shown to templates.
//
// Most senders send the same kept headers (a content type) on every
// request, and an event's headers are only ever read: a request whose
// kept headers equal the previous one's shares that map.
func (s *Source) EventHeaders(h http.Header) map[string]string {
	if len(s.keep) == 0 {
		return nil
	}
	var inline [8]string // the kept values, while they fit
	vals := inline[:0]
	total := 0
	for _, k := range s.keep {
		val := absent
		if v := h[k.canonical]; len(v) > 0 {
			val = v[0]
			if len(val) > maxHeaderValue {
				val = strings.ToValidUTF8(val[:maxHeaderValue], "")
			}
			if total += len(k.lower) + len(val); total > maxHeaderBytes {
				break // the rest of the list is not kept
			}
		}
		vals = append(vals, val)
	}
	if last := s.lastHeaders.Load(); last != nil && sameHeaders(*last, s.keep, vals) {
		return *last
	}
	var m map[string]string
	for i, val := range vals {
		if val == absent {
			continue
		}
		if m == nil {
			m = make(map[string]string, len(s.keep))
		}
		m[s.keep[i].lower] = val
	}
	if m != nil {
		s.lastHeaders.Store(&m)
	}
	return m
}

// absent stands for a kept header the request does not have: no header
// value holds a NUL (net/http refuses such requests).
const absent = "\x00"

// sameHeaders reports whether m holds exactly the vals present, by the
// keep list's names.
func sameHeaders(m map[string]string, keep []keptHeader, vals []string) bool {
	n := 0
	for i, val := range vals {
		if val == absent {
			continue
		}
		n++
		if got, ok := m[keep[i].lower]; !ok || got != val {
			return false
		}
	}
	return n == len(m)
}

// keptHeader is a header name on a keep list, in both forms.
type keptHeader struct{ canonical, lower string }

// streamAcceptor accepts events from a stream source.
type streamAcceptor struct {
	d      *Daemon
	source string
}

func (a *streamAcceptor) Accept(ctx context.Context, events []*router.Event) error {
	if a.d.draining.Load() {
		return router.ErrQueueClosed
	}
	snap := a.d.snap.Load()
	src := snap.Sources[a.source]
	if src == nil {
		return errors.New("source " + a.source + " is no longer configured")
	}
	if err := snap.Check(src, events, a.d.log); err != nil {
		return err
	}
	_, err := a.d.accept(ctx, src, events)
	return err
}

type ruleObserver struct {
	log   *slog.Logger
	stats *stats
}

// matchCollector holds rule matches back until the queue has said which
// events are duplicates.
type matchCollector struct {
	ruleObserver
	event   int // batch index of the event being routed
	matches []ruleMatch
	// held are the storm controls ("rule x", "sink y") that held an
	// event back, for the history.
	held []ruleMatch
}

type ruleMatch struct {
	event int
	rule  string
}

func (c *matchCollector) RuleMatched(rule string, e *router.Event) {
	c.matches = append(c.matches, ruleMatch{c.event, rule})
}

func (c *matchCollector) Throttled(owner string, e *router.Event) {
	c.ruleObserver.Throttled(owner, e)
	c.held = append(c.held, ruleMatch{c.event, owner})
}

func (o ruleObserver) RuleMatched(rule string, e *router.Event) {
	metrics.RuleMatches.WithLabelValues(rule).Inc()
}

func (o ruleObserver) RuleFailed(rule string, e *router.Event, err error) {
	metrics.RuleErrors.WithLabelValues(rule).Inc()
	o.stats.rule(rule).lastErr.Store(&lastError{At: time.Now().UTC(), Error: redact.String(err.Error()), EventID: e.ID})
	o.log.Warn("rule failed on an event; counted as no match", "rule", rule, "event_id", e.ID,
		"source", e.Source, "event", e.Event, "err", err)
}

func (o ruleObserver) Throttled(owner string, e *router.Event) {
	metrics.Throttled.WithLabelValues(owner).Inc()
	if o.log.Enabled(context.Background(), slog.LevelDebug) {
		o.log.Debug("held back by storm control", "throttle", owner, "event_id", e.ID, "source", e.Source, "event", e.Event)
	}
}

// deliveryObserver is one sink's worker's: what it updates per delivery
// (the sink's series and console figures) is looked up once, when the
// worker starts, not per delivery.
type deliveryObserver struct {
	log      *slog.Logger
	failures *failureLog
	history  *history.Store
	stat     *sinkStat
	// The sink's series, by outcome: success, retry, dead.
	success, retry, dead prometheus.Counter
	latency              prometheus.Observer
}

func (d *Daemon) deliveryObserver(sink string) *deliveryObserver {
	return &deliveryObserver{log: d.log, failures: d.failures, history: d.history, stat: d.stats.sink(sink),
		success: metrics.Deliveries.WithLabelValues(sink, "success"), retry: metrics.Deliveries.WithLabelValues(sink, "retry"),
		dead: metrics.Deliveries.WithLabelValues(sink, "dead"), latency: metrics.DeliveryLatency.WithLabelValues(sink)}
}

func (o *deliveryObserver) Attempting(d *router.Delivery) {
	o.stat.inFlight.Add(1)
	o.history.Attempting(d.Event, d.Sink)
}

func (o *deliveryObserver) Abandoned(d *router.Delivery) {
	o.stat.inFlight.Add(-1)
	o.history.Abandoned(d.Event, d.Sink)
}

func (o *deliveryObserver) Delivered(d *router.Delivery, outcome string, took time.Duration, err error) {
	o.observe(d, outcome, took)
	switch outcome {
	case "success":
		o.success.Inc()
		o.latency.Observe(time.Since(d.Event.ReceivedAt).Seconds())
		if o.log.Enabled(context.Background(), slog.LevelDebug) {
			o.log.Debug("delivered", "event_id", d.Event.ID, "source", d.Event.Source, "sink", d.Sink, "attempt", d.Attempts, "took", took)
		}
	case "retry":
		o.retry.Inc()
		o.failures.record(d, outcome, err)
	case "dead":
		o.dead.Inc()
		o.failures.record(d, outcome, err)
	}
}

// observe keeps the console's view of a delivery attempt: the sink's
// rates, in-flight count and last error, and the event's history.
func (o *deliveryObserver) observe(d *router.Delivery, outcome string, took time.Duration) {
	now := time.Now()
	ss := o.stat
	ss.inFlight.Add(-1)
	a := history.Attempt{At: d.LastTry, Took: took, Status: d.Status, Outcome: outcome}
	var next time.Time
	if outcome == "success" {
		ss.delivered.add(now)
	} else {
		ss.failed.add(now)
		// Redacted by the worker; a dead letter's names why it gave up.
		a.Error = d.LastError
		ss.lastErr.Store(&lastError{At: now.UTC(), Error: d.LastError, EventID: d.Event.ID})
		if outcome == "retry" {
			next = d.NotBefore
		}
	}
	o.history.Attempted(d.Event, d.Sink, d.ID, a, next)
}

// jsonContentType is the value of every JSON answer's Content-Type, one
// slice for all: net/http only reads it.
var jsonContentType = []string{"application/json"}
