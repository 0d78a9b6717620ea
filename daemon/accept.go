package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"switchboard/metrics"
	"switchboard/router"
	"switchboard/sources"
)

// serveWebhook is the webhook listener: find the source by path, check
// method and size, let the source parse, then accept.
func (d *Daemon) serveWebhook(w http.ResponseWriter, r *http.Request) {
	snap := d.snap.Load()
	src, subpath := snap.Lookup(r.URL.Path)
	if src == nil {
		d.reject(w, "", "unknown_path", http.StatusNotFound, "no source is configured at "+r.URL.Path)
		return
	}
	if !slices.Contains(src.Methods, r.Method) {
		w.Header().Set("Allow", strings.Join(src.Methods, ", "))
		d.reject(w, src.Name, "method", http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here; use "+strings.Join(src.Methods, " or "))
		return
	}
	if d.draining.Load() {
		d.reject(w, src.Name, "shutting_down", http.StatusServiceUnavailable, "shutting down; retry later")
		return
	}
	received := time.Now().UTC()
	limit := int64(snap.File.Server.MaxBodyBytes)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			d.reject(w, src.Name, "too_large", http.StatusRequestEntityTooLarge,
				"body is larger than server.max_body_bytes ("+snap.File.Server.MaxBodyBytes.String()+")")
			return
		}
		d.reject(w, src.Name, "read", http.StatusBadRequest, "could not read the body: "+err.Error())
		return
	}
	res, err := src.HTTP.Parse(&sources.Request{HTTP: r, Body: body, ReceivedAt: received, Source: src.Name, Subpath: subpath})
	if err != nil {
		var re *sources.RejectError
		if !errors.As(err, &re) {
			re = &sources.RejectError{Status: http.StatusBadRequest, Reason: "parse", Msg: err.Error()}
		}
		d.reject(w, src.Name, re.Reason, re.Status, re.Msg)
		return
	}
	if res.Reply != nil {
		d.log.Info("answered a verification request", "source", src.Name)
		w.Header().Set("Content-Type", "application/json")
		w.Write(res.Reply)
		return
	}
	headers := EventHeaders(r.Header)
	for _, ev := range res.Events {
		ev.Headers = headers
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
		w.Header().Set("Content-Type", "application/json")
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
	// Route and enqueue under the swap lock, with the snapshot current
	// now: see Daemon.swap.
	d.swap.RLock()
	defer d.swap.RUnlock()
	snap := d.snap.Load()
	batch := make([]router.Routed, 0, len(events))
	outcomes := make([]string, len(events))
	at := make([]int, 0, len(events)) // batch index -> events index
	var idx []int
	// Matches are counted once the queue has told duplicates apart: a
	// provider's retry is not a second match.
	obs := &matchCollector{ruleObserver: ruleObserver{d.log}}
	for i, ev := range events {
		if !src.Passes(ev) {
			outcomes[i] = outcomeFiltered
			continue
		}
		idx = snap.Table.Route(ev, idx[:0], obs, nil)
		batch = append(batch, router.Routed{Event: ev, Sinks: snap.Table.SinkNames(idx), Remember: src.Remember})
		at = append(at, i)
		obs.event++
	}
	if len(batch) > 0 {
		if err := d.queue.Enqueue(ctx, batch); err != nil {
			return nil, err
		}
	}
	for _, m := range obs.matches {
		if !batch[m.event].Duplicate {
			metrics.RuleMatches.WithLabelValues(m.rule).Inc()
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
	for i, ev := range events {
		src.counter(outcomes[i]).Inc()
		switch outcomes[i] {
		case outcomeAccepted:
			d.log.Debug("event accepted", "event_id", ev.ID, "source", src.Name, "event", ev.Event, "status", ev.Status)
		case outcomeFiltered:
			d.log.Debug("event filtered by source", "event_id", ev.ID, "source", src.Name, "event", ev.Event, "status", ev.Status)
		case outcomeDuplicate:
			d.log.Info("duplicate of an accepted event; acknowledged, not routed again", "event_id", ev.ID, "source", src.Name, "event", ev.Event)
		}
	}
	return outcomes, nil
}

// Event outcomes, as answered and counted.
const (
	outcomeAccepted  = "accepted"
	outcomeFiltered  = "filtered"
	outcomeDuplicate = "duplicate"
)

// Passes reports whether ev gets past the source's own events and filters.
func (s *Source) Passes(ev *router.Event) bool {
	if len(s.Events) > 0 && !slices.ContainsFunc(s.Events, func(p string) bool { return router.Glob(p, ev.Event) }) {
		return false
	}
	return s.Filters.Match(ev)
}

func (d *Daemon) reject(w http.ResponseWriter, source, reason string, status int, msg string) {
	label := source
	if label == "" {
		label = "-"
	}
	metrics.EventsReceived.WithLabelValues(label, "rejected", reason).Inc()
	d.log.Warn("request rejected", "source", source, "status", status, "reason", reason, "err", msg)
	writeJSON(w, status, map[string]string{"error": msg})
}

// credentialHeaders are never kept with an event: the event is stored in
// the queue and shown to templates, and a sender's credentials belong in
// neither.
var credentialHeaders = map[string]bool{
	"Authorization": true, "Proxy-Authorization": true, "Cookie": true,
}

// EventHeaders is the event's view of the request headers: lower-case name
// to first value, credentials left out.
func EventHeaders(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 && !credentialHeaders[k] {
			m[strings.ToLower(k)] = v[0]
		}
	}
	return m
}

// streamAcceptor accepts events from a stream source.
type streamAcceptor struct {
	d      *Daemon
	source string
}

func (a *streamAcceptor) Accept(ctx context.Context, events []*router.Event) error {
	if a.d.draining.Load() {
		return router.ErrQueueClosed
	}
	src := a.d.snap.Load().Sources[a.source]
	if src == nil {
		return errors.New("source " + a.source + " is no longer configured")
	}
	_, err := a.d.accept(ctx, src, events)
	return err
}

type ruleObserver struct{ log *slog.Logger }

// matchCollector holds rule matches back until the queue has said which
// events are duplicates.
type matchCollector struct {
	ruleObserver
	event   int // batch index of the event being routed
	matches []ruleMatch
}

type ruleMatch struct {
	event int
	rule  string
}

func (c *matchCollector) RuleMatched(rule string, e *router.Event) {
	c.matches = append(c.matches, ruleMatch{c.event, rule})
}

func (o ruleObserver) RuleMatched(rule string, e *router.Event) {
	metrics.RuleMatches.WithLabelValues(rule).Inc()
}

func (o ruleObserver) RuleFailed(rule string, e *router.Event, err error) {
	metrics.RuleErrors.WithLabelValues(rule).Inc()
	o.log.Warn("rule failed on an event; counted as no match", "rule", rule, "event_id", e.ID,
		"source", e.Source, "event", e.Event, "err", err)
}

func (o ruleObserver) Throttled(owner string, e *router.Event) {
	metrics.Throttled.WithLabelValues(owner).Inc()
	o.log.Debug("held back by storm control", "throttle", owner, "event_id", e.ID, "source", e.Source, "event", e.Event)
}

type deliveryObserver struct{ log *slog.Logger }

func (o deliveryObserver) Delivered(d *router.Delivery, outcome string, took time.Duration, err error) {
	metrics.Deliveries.WithLabelValues(d.Sink, outcome).Inc()
	attrs := []any{"event_id", d.Event.ID, "source", d.Event.Source, "sink", d.Sink, "attempt", d.Attempts, "took", took}
	switch outcome {
	case "success":
		metrics.DeliveryLatency.WithLabelValues(d.Sink).Observe(time.Since(d.Event.ReceivedAt).Seconds())
		o.log.Debug("delivered", attrs...)
	case "retry":
		o.log.Warn("delivery failed; will retry", append(attrs, "next_attempt", d.NotBefore.Format(time.RFC3339), "err", err)...)
	case "dead":
		o.log.Error("delivery failed for good; moved to the dead-letter queue", append(attrs, "err", d.LastError)...)
	}
}
