package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"switchboard/config"
	"switchboard/redact"
)

// Sink delivers one event somewhere. Send returns nil on success; an error
// wrapped by Permanent goes to the dead-letter queue at once, one wrapped by
// RetryAfter waits at least that long, and any other error is retried on
// the sink's schedule.
type Sink interface {
	Send(ctx context.Context, e *Event) error
}

// PermanentError marks a failure that retrying cannot fix (a 400, a
// template that fails on this event).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return &PermanentError{Err: err} }

// RetryAfterError is a transient failure whose receiver named a time to
// wait (HTTP Retry-After).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter marks err as transient, to be retried no sooner than after d.
func RetryAfter(err error, d time.Duration) error { return &RetryAfterError{Err: err, After: d} }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// DeliveryObserver hears about every delivery attempt's outcome; the daemon
// counts and logs through it. Outcome is one of "success", "retry", "dead".
type DeliveryObserver interface {
	Delivered(d *Delivery, outcome string, took time.Duration, err error)
}

// AttemptObserver is optionally implemented by a DeliveryObserver that
// also wants to hear when an attempt starts, to tell what is in flight.
// Every Attempting is followed by one Delivered or, when the worker is
// stopped mid-attempt, one Abandoned.
type AttemptObserver interface {
	Attempting(d *Delivery)
	Abandoned(d *Delivery)
}

// StatusSink is optionally implemented by a sink whose receiver answers
// with a status code (HTTP): SendStatus is Send that also returns the
// answer's status, on success and failure alike, or 0 when no answer
// came. The worker calls it instead of Send and keeps the status in
// Delivery.Status, so that an attempt's history shows "503" without
// anyone parsing error texts.
type StatusSink interface {
	Sink
	SendStatus(ctx context.Context, e *Event) (status int, err error)
}

// Worker runs the delivery loop of one sink: take a due delivery, send it,
// then ack, schedule a retry or dead-letter it. Several goroutines share one
// Worker when the sink allows concurrency.
type Worker struct {
	Name        string
	Sink        Sink
	Retry       config.Retry
	Concurrency int
	Queue       Queue
	Observer    DeliveryObserver
	Log         *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup
	// The optional interfaces of Sink and Observer, looked up once.
	status   StatusSink
	attempts AttemptObserver
}

// Start launches the worker's goroutines; they run until Stop or ctx ends.
func (w *Worker) Start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	w.status, _ = w.Sink.(StatusSink)
	w.attempts, _ = w.Observer.(AttemptObserver)
	n := max(w.Concurrency, 1)
	w.wg.Add(n)
	for range n {
		go w.loop(ctx)
	}
}

// Stop ends the worker's goroutines and waits for them. An attempt under
// way is cancelled and goes back to the queue as a retry.
func (w *Worker) Stop() {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
}

func (w *Worker) loop(ctx context.Context) {
	defer w.wg.Done()
	// Each attempt's request hangs its own contexts under ctx; a context
	// of its own per goroutine keeps the goroutines from queueing on one
	// shared context's lock to do that.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Checked on every turn: Next may hand out a due delivery after ctx
	// ended, and a stopped worker would then cut, requeue and take it again
	// forever, so that Stop never returned.
	for ctx.Err() == nil {
		d, err := w.Queue.Next(ctx, w.Name)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, ErrQueueClosed) {
				w.Log.Error("queue read failed; delivery paused", "sink", w.Name, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
				continue
			}
			return
		}
		w.attempt(ctx, d)
	}
}

func (w *Worker) attempt(ctx context.Context, d *Delivery) {
	now := time.Now()
	if d.FirstTry.IsZero() {
		d.FirstTry = now
	}
	d.LastTry = now
	d.Attempts++
	if w.attempts != nil {
		w.attempts.Attempting(d)
	}
	var err error
	if w.status != nil {
		d.Status, err = w.status.SendStatus(ctx, d.Event)
	} else {
		err = w.Sink.Send(ctx, d.Event)
	}
	took := time.Since(now)
	var outcome string
	var store func(*Delivery) error
	switch {
	case err == nil:
		outcome, store = "success", w.Queue.Done
	case ctx.Err() != nil:
		// Shutting down or the sink was replaced: not the receiver's fault,
		// so the attempt does not count.
		d.Attempts--
		d.NotBefore = time.Now()
		if w.attempts != nil {
			w.attempts.Abandoned(d)
		}
		w.end(w.Queue.Retry(d), d)
		return
	default:
		// Stored with the delivery and shown by the dead-letter API: a
		// receiver's answer may echo the credentials it was sent.
		d.LastError = redact.String(err.Error())
		wait, reason := w.nextWait(d, err)
		if reason != "" {
			outcome, store = "dead", w.Queue.Dead
			d.LastError = fmt.Sprintf("%s: %s", reason, d.LastError)
		} else {
			outcome, store = "retry", w.Queue.Retry
			d.NotBefore = time.Now().Add(wait)
		}
	}
	// Once the queue has a retry or dead letter back, another goroutine may
	// take it and attempt it again: the log line and the observer get this
	// attempt's copy. A delivery done is never handed out again.
	seen := d
	if outcome != "success" {
		c := *d
		seen = &c
	}
	w.end(store(d), seen)
	if w.Observer != nil {
		w.Observer.Delivered(seen, outcome, took, err)
	}
}

func (w *Worker) end(err error, d *Delivery) {
	if err != nil {
		w.Log.Error("queue update failed; the delivery will be attempted again after restart",
			"sink", w.Name, "event_id", d.Event.ID, "err", err)
	}
}

// nextWait returns how long to wait before the next attempt, or a reason to
// give up now.
func (w *Worker) nextWait(d *Delivery, err error) (time.Duration, string) {
	if IsPermanent(err) {
		return 0, "permanent failure"
	}
	if d.Attempts >= w.Retry.MaxAttempts {
		return 0, fmt.Sprintf("gave up after %d attempts", d.Attempts)
	}
	wait := Backoff(w.Retry, d.Attempts)
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > wait {
		wait = ra.After
	}
	wait += jitter(wait)
	if w.Retry.MaxAge > 0 && time.Since(d.FirstTry)+wait > w.Retry.MaxAge {
		return 0, fmt.Sprintf("gave up: next attempt would be past max_age %s", w.Retry.MaxAge)
	}
	return wait, ""
}

// Backoff is the wait after the given number of failed attempts, before
// jitter: initial_interval × multiplier^(attempts-1), capped at max_interval.
func Backoff(r config.Retry, attempts int) time.Duration {
	f := float64(r.InitialInterval) * math.Pow(r.Multiplier, float64(attempts-1))
	if f > float64(r.MaxInterval) || math.IsInf(f, 0) {
		return r.MaxInterval
	}
	return time.Duration(f)
}

// jitter adds up to 20 % so that many deliveries failing together do not
// retry together.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)/5 + 1))
}
