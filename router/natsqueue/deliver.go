package natsqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"switchboard/router"
)

// retryHeadroom is how many deliveries of one sink may wait for their
// retry time on top of those being sent. A nak with delay keeps its
// message among the consumer's pending acks, so max_ack_pending equal to
// the sink's concurrency would let one failing event hold a sink still for
// its whole backoff; the embedded queue goes on with the others.
const retryHeadroom = 1000

// ConfigureSink sets a sink's concurrency (its senders on this replica).
// The daemon calls it before starting the sink's workers; a change takes
// effect at the next pull.
func (q *Queue) ConfigureSink(sink string, concurrency int) {
	q.mu.Lock()
	old, ok := q.conc[sink]
	q.conc[sink] = max(concurrency, 1)
	p := q.pumps[sink]
	if ok && old != q.conc[sink] && p != nil {
		delete(q.pumps, sink)
	} else {
		p = nil
	}
	q.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

func (q *Queue) consumerConfig(sink string, concurrency int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       sink,
		Description:   "switchboard: deliveries to sink " + sink + ", shared by every replica",
		FilterSubject: q.names.subject(sink),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.opts.AckWait,
		// Attempts are counted by the delivery count and the sink's retry
		// policy decides when a delivery dies; the server never gives up.
		MaxDeliver:    -1,
		MaxAckPending: concurrency + retryHeadroom,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// pump pulls one sink's messages and hands them, one at a time, to the
// sink's workers on this replica. It asks for no more than the sink's
// concurrency at once, so that this replica does not sit on deliveries
// another could send.
type pump struct {
	sink   string
	ch     chan jetstream.Msg
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *pump) stop() {
	p.cancel()
	<-p.done
}

// fetchGrace is how long a stopping pump keeps reading what the server
// already sent it, to give it back.
const fetchGrace = 250 * time.Millisecond

// pumpFor returns the sink's pump, starting it on first use.
func (q *Queue) pumpFor(sink string) *pump {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p := q.pumps[sink]; p != nil {
		return p
	}
	conc := q.conc[sink]
	if conc == 0 {
		conc = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pump{sink: sink, ch: make(chan jetstream.Msg), cancel: cancel, done: make(chan struct{})}
	q.pumps[sink] = p
	go q.runPump(ctx, p, conc)
	return p
}

func (q *Queue) runPump(ctx context.Context, p *pump, conc int) {
	defer close(p.done)
	backoff := 100 * time.Millisecond
	failing := false
	for ctx.Err() == nil {
		err := q.pull(ctx, p, conc)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !failing {
			q.log.Error("cannot read the sink's deliveries from NATS; retrying", "sink", p.sink, "err", err)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// pull fetches the sink's messages, at most its concurrency at a time,
// and hands each to a worker, until a fetch fails or ctx ends. Messages
// that arrive once ctx has ended are given back at once (nak), not left
// to time out.
//
// Fetch, not the Messages iterator: the iterator buffers messages in a
// channel as large as the batch, shared with the server's status
// messages, and drops what does not fit while every worker is busy. A
// dropped message left its pull request unserved until the request
// expired (deliveries stood still for the whole expiry under sustained
// load) and came back only after the ack deadline. A fetch buffers twice
// its batch.
func (q *Queue) pull(ctx context.Context, p *pump, conc int) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cons, err := q.work.CreateOrUpdateConsumer(cctx, q.consumerConfig(p.sink, conc))
	cancel()
	if err != nil {
		return fmt.Errorf("consumer %s: %w", p.sink, err)
	}
	// A fetch outlives the pump by a moment (fetchGrace): messages the
	// server sent it just before a stop still arrive and are given back
	// at once (nak) instead of waiting out the ack deadline on this
	// replica, which a rolling update would otherwise make every sink's
	// last few deliveries do.
	grace, endGrace := context.WithCancel(context.WithoutCancel(ctx))
	defer endGrace()
	defer context.AfterFunc(ctx, func() { time.AfterFunc(fetchGrace, endGrace) })()
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(grace, 2*time.Second)
		batch, err := cons.Fetch(conc, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for m := range batch.Messages() {
			if ctx.Err() != nil {
				m.Nak()
				continue
			}
			q.handOff(ctx, p, m)
		}
		cancel()
		if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) &&
			!errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
	}
	return nil
}

// handOff waits for a worker to take m, keeping m's ack deadline moving
// meanwhile: every worker may be busy with slow sends for longer than the
// deadline, and m must not go to another replica while it waits here.
func (q *Queue) handOff(ctx context.Context, p *pump, m jetstream.Msg) {
	select {
	case p.ch <- m: // a worker was waiting: the common case, no timer
		return
	default:
	}
	t := time.NewTicker(q.opts.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case p.ch <- m:
			return
		case <-t.C:
			m.InProgress()
		case <-ctx.Done():
			m.Nak()
			return
		}
	}
}

// held is a delivery handed to a worker: its message, and the timer that
// keeps its ack deadline moving while the worker sends.
type held struct {
	msg   jetstream.Msg
	mu    sync.Mutex
	timer *time.Timer
	ended bool
}

func (q *Queue) hold(d *router.Delivery, m jetstream.Msg) {
	h := &held{msg: m}
	every := q.opts.AckWait / 3
	h.mu.Lock()
	h.timer = time.AfterFunc(every, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.ended {
			return
		}
		h.msg.InProgress()
		h.timer.Reset(every)
	})
	h.mu.Unlock()
	q.mu.Lock()
	q.inflight[d] = h
	q.mu.Unlock()
}

// release ends d's hold and returns its message.
func (q *Queue) release(d *router.Delivery) (jetstream.Msg, error) {
	q.mu.Lock()
	h := q.inflight[d]
	delete(q.inflight, d)
	q.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("delivery %s of sink %s is not held by this queue", d.ID, d.Sink)
	}
	h.mu.Lock()
	h.ended = true
	h.timer.Stop()
	h.mu.Unlock()
	return h.msg, nil
}

// Next implements router.Queue.
func (q *Queue) Next(ctx context.Context, sink string) (*router.Delivery, error) {
	if q.closed.Load() {
		return nil, router.ErrQueueClosed
	}
	p := q.pumpFor(sink)
	for {
		select {
		case m := <-p.ch:
			d, err := q.delivery(sink, m)
			if err != nil {
				q.unreadable(sink, m, err)
				continue
			}
			q.hold(d, m)
			return d, nil
		case <-p.done:
			// Replaced (the sink's concurrency changed) or stopped (the
			// sink was removed): take whatever serves the sink now.
			if q.closed.Load() {
				return nil, router.ErrQueueClosed
			}
			p = q.pumpFor(sink)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.closing:
			return nil, router.ErrQueueClosed
		}
	}
}

// delivery reads a message into a delivery. Attempts come from the
// consumer's delivery count; the first attempt of a retried delivery is
// taken to be when it was queued, since a nak carries no state.
func (q *Queue) delivery(sink string, m jetstream.Msg) (*router.Delivery, error) {
	meta, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	ev, err := decodeEvent(m.Data())
	if err != nil {
		return nil, err
	}
	d := &router.Delivery{ID: strconv.FormatUint(meta.Sequence.Stream, 10), Sink: sink, Event: ev,
		Attempts: int(meta.NumDelivered) - 1}
	if d.Attempts > 0 {
		d.FirstTry = meta.Timestamp
	}
	return d, nil
}

// unreadable moves a message that cannot be decoded to the dead letters
// with its bytes and the error, so that it is seen and can be replayed by
// a build that reads it.
func (q *Queue) unreadable(sink string, m jetstream.Msg, cause error) {
	msg := fmt.Sprintf("unreadable record: %v", cause)
	q.log.Error("a queued delivery cannot be read; moved to the dead-letter queue", "sink", sink, "err", cause)
	if err := q.bury(sink, m, nil, nil, msg); err != nil {
		q.log.Error("could not move an unreadable delivery to the dead-letter queue; it stays queued", "sink", sink, "err", err)
	}
}

// Done implements router.Queue. The ack is not awaited: a lost ack means
// the delivery is made again (at least once).
func (q *Queue) Done(d *router.Delivery) error {
	m, err := q.release(d)
	if err != nil {
		return err
	}
	return m.Ack()
}

// Retry implements router.Queue: the message goes back with the delay the
// retry policy chose.
func (q *Queue) Retry(d *router.Delivery) error {
	m, err := q.release(d)
	if err != nil {
		return err
	}
	if wait := time.Until(d.NotBefore); wait > 0 {
		return m.NakWithDelay(wait)
	}
	return m.Nak()
}

// Dead implements router.Queue: the dead letter is stored before the
// delivery is acked, so a failure in between leaves the delivery queued
// (it is attempted again), never lost.
func (q *Queue) Dead(d *router.Delivery) error {
	m, err := q.release(d)
	if err != nil {
		return err
	}
	if err := q.bury(d.Sink, m, d.Event, d, d.LastError); err != nil {
		m.NakWithDelay(time.Second)
		return err
	}
	return nil
}

// bury publishes m as a dead letter of sink and acks it.
func (q *Queue) bury(sink string, m jetstream.Msg, ev *router.Event, d *router.Delivery, lastError string) error {
	h := deadHeader(sink, ev, d, time.Now(), lastError)
	if meta, err := m.Metadata(); err == nil {
		// One dead letter per queued message, however often this runs.
		h.Set(jetstream.MsgIDHeader, "dead:"+strconv.FormatUint(meta.Sequence.Stream, 10))
	}
	ctx, cancel := context.WithTimeout(context.Background(), q.opts.PublishTimeout)
	defer cancel()
	if _, err := q.js.PublishMsg(ctx, &nats.Msg{Subject: q.names.deadSubject(sink), Header: h, Data: m.Data()}); err != nil {
		return fmt.Errorf("cannot store the dead letter in %s: %w", q.names.dlq, err)
	}
	return m.Ack()
}

// Idle reports whether this replica holds no delivery: the daemon waits
// for it at shutdown. Deliveries queued but not taken are other replicas'
// to send.
func (q *Queue) Idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.inflight) == 0
}
