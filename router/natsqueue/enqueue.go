package natsqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"switchboard/router"
)

// Enqueue implements router.Queue in three steps, each one round trip for
// the whole batch:
//
//  1. look the events' (source, id) up in the bucket of accepted ids: a hit
//     is a provider's retry, answered `duplicate`, nothing queued;
//  2. publish one message per (event, sink) and wait for every ack. The
//     message id is derived from (source, id, sink), so the stream drops a
//     copy published within its duplicate window: two replicas taking the
//     same retry at once, or the retry of a request answered 503 after
//     some of its messages were stored. An event all of whose messages the
//     stream already had is a duplicate too;
//  3. only then remember the ids (with their horizon as TTL), so that a
//     failed publish never marks an event as seen.
//
// Any step failing fails the request (503); nothing is half-remembered.
func (q *Queue) Enqueue(ctx context.Context, batch []router.Routed) error {
	if q.closed.Load() {
		return router.ErrQueueClosed
	}
	ctx, cancel := context.WithTimeout(ctx, q.opts.PublishTimeout)
	defer cancel()
	dups, err := q.lookUp(ctx, batch)
	if err != nil {
		return err
	}
	msgs, err := q.messages(batch, dups)
	if err != nil {
		return err
	}
	stored, err := q.publishAll(ctx, msgs, nil)
	if err != nil {
		return err
	}
	overflow, err := q.classify(msgs, stored)
	if err != nil {
		return err
	}
	if len(overflow) > 0 {
		if err := q.deadOnArrival(ctx, overflow); err != nil {
			return err
		}
	}
	if err := q.remember(ctx, batch, dups); err != nil {
		return err
	}
	again := storedBefore(len(batch), msgs)
	for i := range batch {
		batch[i].Duplicate = dups[i] || again[i]
	}
	return nil
}

// storedBefore returns the events every message of which the stream
// already held: the same event accepted moments ago by another replica,
// or by a request that was answered 503 after its messages were stored.
func storedBefore(n int, msgs []*outgoing) []bool {
	again := make([]bool, n)
	seen := make([]bool, n)
	for _, o := range msgs {
		dup := o.ack != nil && o.ack.Duplicate
		if !seen[o.event] {
			seen[o.event], again[o.event] = true, dup
		} else {
			again[o.event] = again[o.event] && dup
		}
	}
	return again
}

// outgoing is one message of a request and what became of it.
type outgoing struct {
	event int // batch index
	sink  string
	msg   *nats.Msg
	ack   *jetstream.PubAck
	err   error
}

// lookUp returns which events of the batch were accepted before.
func (q *Queue) lookUp(ctx context.Context, batch []router.Routed) ([]bool, error) {
	dups := make([]bool, len(batch))
	if q.seen == nil {
		return dups, nil
	}
	look := func(i int) error {
		_, err := q.seen.Get(ctx, seenKey(batch[i].Event))
		switch {
		case err == nil:
			dups[i] = true
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return fmt.Errorf("cannot look up accepted event ids in NATS: %w", err)
		}
		return nil
	}
	if len(batch) == 1 {
		// A webhook's one event: no goroutine.
		if batch[0].Event.ID == "" {
			return dups, nil
		}
		return dups, look(0)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(batch))
	sem := make(chan struct{}, 32)
	for i, r := range batch {
		if r.Event.ID == "" {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = look(i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return dups, nil
}

func seenKey(e *router.Event) string { return digest(e.Source, e.ID) }

// messages builds the (event, sink) messages of the events not known yet.
func (q *Queue) messages(batch []router.Routed, dups []bool) ([]*outgoing, error) {
	var out []*outgoing
	for i, r := range batch {
		if dups[i] || len(r.Sinks) == 0 {
			continue
		}
		rec, err := encodeEvent(r.Event)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", r.Event.ID, err)
		}
		if q.maxPayload > 0 && int64(len(rec))+512 > q.maxPayload {
			return nil, fmt.Errorf("event %s takes %d bytes, more than the NATS servers take in one message (max_payload %d): raise max_payload in the servers' config or lower server.max_body_bytes",
				r.Event.ID, len(rec), q.maxPayload)
		}
		for _, sink := range r.Sinks {
			m := &nats.Msg{Subject: q.names.subject(sink), Data: rec, Header: nats.Header{}}
			if q.opts.DedupWindow > 0 && r.Event.ID != "" {
				// MsgIDHeader is canonical already: no Set, which copies it.
				m.Header[jetstream.MsgIDHeader] = []string{digest(r.Event.Source, r.Event.ID, sink)}
			}
			out = append(out, &outgoing{event: i, sink: sink, msg: m})
		}
	}
	return out, nil
}

// publishAll publishes every message asynchronously and waits for all
// acks; each outgoing gets its ack or error. The error returned is for
// the request as a whole (no connection, the context ended).
func (q *Queue) publishAll(ctx context.Context, msgs []*outgoing, opts func(*outgoing) []jetstream.PublishOpt) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, o := range msgs {
		var po []jetstream.PublishOpt
		if opts != nil {
			po = opts(o)
		}
		f, err := q.js.PublishMsgAsync(o.msg, po...)
		if err != nil {
			return 0, q.unavailable(err)
		}
		futures[i] = f
	}
	stored := 0
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			msgs[i].ack = ack
			stored++
		case err := <-f.Err():
			msgs[i].err = err
		case <-ctx.Done():
			return stored, q.unavailable(fmt.Errorf("no acknowledgement from NATS in time: %w", ctx.Err()))
		}
	}
	return stored, nil
}

func (q *Queue) unavailable(err error) error {
	if q.closed.Load() {
		return router.ErrQueueClosed
	}
	return fmt.Errorf("NATS did not store the event: %w", err)
}

// classify turns the publish errors into the request's answer: a full
// stream is router.ErrQueueFull; a full sink's backlog sends that delivery
// to the dead letters (returned); anything else fails the request.
func (q *Queue) classify(msgs []*outgoing, stored int) ([]*outgoing, error) {
	if stored == len(msgs) {
		return nil, nil
	}
	var overflow []*outgoing
	var errs []error
	full := false
	for _, o := range msgs {
		switch {
		case o.err == nil:
		case isStoreLimit(o.err, "maximum messages per subject exceeded"):
			overflow = append(overflow, o)
		case isStoreLimit(o.err, "maximum bytes exceeded"), isStoreLimit(o.err, "insufficient resources"):
			full = true
		default:
			errs = append(errs, o.err)
		}
	}
	if full {
		return nil, router.ErrQueueFull
	}
	if len(errs) > 0 {
		return nil, q.unavailable(errors.Join(errs...))
	}
	return overflow, nil
}

func isStoreLimit(err error, text string) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && strings.Contains(api.Description, text)
}

// deadOnArrival stores deliveries whose sink's backlog is full as dead
// letters, like the embedded queue: the event is kept and replayable, and
// one sink down for hours cannot make every source answer 503.
func (q *Queue) deadOnArrival(ctx context.Context, overflow []*outgoing) error {
	now := time.Now()
	reason := fmt.Sprintf("backlog full: %d deliveries were already queued for this sink (queue.max_pending_per_sink)", q.opts.MaxPendingPerSink)
	dead := make([]*outgoing, len(overflow))
	count := map[string]int{}
	for i, o := range overflow {
		ev, _ := decodeEvent(o.msg.Data)
		h := deadHeader(o.sink, ev, nil, now, reason)
		if id := o.msg.Header.Get(jetstream.MsgIDHeader); id != "" {
			h.Set(jetstream.MsgIDHeader, "full:"+id)
		}
		dead[i] = &outgoing{sink: o.sink, msg: &nats.Msg{Subject: q.names.deadSubject(o.sink), Header: h, Data: o.msg.Data}}
		count[o.sink]++
	}
	if _, err := q.publishAll(ctx, dead, nil); err != nil {
		return err
	}
	for _, o := range dead {
		if o.err != nil {
			return q.unavailable(o.err)
		}
	}
	for sink, n := range count {
		q.log.Warn("sink backlog full: new deliveries go straight to the dead-letter queue until it drains",
			"sink", sink, "count", n, "max_pending_per_sink", q.opts.MaxPendingPerSink)
	}
	return nil
}

// remember writes the ids of the events accepted now into the bucket, each
// with its horizon as TTL, and marks as duplicates the events whose every
// message the stream had already stored.
func (q *Queue) remember(ctx context.Context, batch []router.Routed, dups []bool) error {
	if q.seen == nil {
		return nil
	}
	var marks []*outgoing
	for i, r := range batch {
		if dups[i] || r.Event.ID == "" {
			continue
		}
		marks = append(marks, &outgoing{event: i, msg: &nats.Msg{Subject: q.names.seenSubject(seenKey(r.Event)), Header: nats.Header{}}})
	}
	ttl := func(o *outgoing) []jetstream.PublishOpt {
		if !q.keyTTL {
			return nil
		}
		return []jetstream.PublishOpt{jetstream.WithMsgTTL(q.horizon(batch[o.event]))}
	}
	if _, err := q.publishAll(ctx, marks, ttl); err != nil {
		return err
	}
	for _, o := range marks {
		if o.err != nil {
			return fmt.Errorf("NATS did not store the event's id for deduplication: %w", o.err)
		}
	}
	return nil
}

// horizon is how long an event's id is remembered: what the daemon asks
// (its source's window), else queue.dedup_window.
func (q *Queue) horizon(r router.Routed) time.Duration {
	h := r.Remember
	if h <= 0 {
		h = q.opts.DedupWindow
	}
	return max(h, time.Second)
}
