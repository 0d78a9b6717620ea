package router_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/router"
	"switchboard/router/logqueue"
	"switchboard/router/queuetest"
)

// fakeSink is an in-process router.Sink that answers from a script and
// records every call.
type fakeSink struct {
	// answer returns the result of the n-th call (1-based) for an event.
	answer func(e *router.Event, n int) error

	mu    sync.Mutex
	calls []call
}

type call struct {
	event      string
	start, end time.Time
}

func (s *fakeSink) Send(ctx context.Context, e *router.Event) error {
	s.mu.Lock()
	n := 1
	for _, c := range s.calls {
		if c.event == e.ID {
			n++
		}
	}
	s.mu.Unlock()
	start := time.Now()
	var err error
	if s.answer != nil {
		err = s.answer(e, n)
	}
	s.mu.Lock()
	s.calls = append(s.calls, call{event: e.ID, start: start, end: time.Now()})
	s.mu.Unlock()
	return err
}

func (s *fakeSink) callsFor(id string) []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []call
	for _, c := range s.calls {
		if c.event == id {
			out = append(out, c)
		}
	}
	return out
}

var _ router.Sink = (*fakeSink)(nil)

// outcomes is a DeliveryObserver that keeps a copy of each delivery as it
// was when the outcome was reported.
type outcomes struct {
	delay time.Duration

	mu   sync.Mutex
	list []outcome
	ch   chan struct{}
}

type outcome struct {
	event     string
	outcome   string
	attempts  int
	notBefore time.Time
	lastError string
	err       string
}

func newOutcomes() *outcomes { return &outcomes{ch: make(chan struct{}, 1000)} }

func (o *outcomes) Delivered(d *router.Delivery, outcome_ string, took time.Duration, err error) {
	if o.delay > 0 {
		time.Sleep(o.delay) // a slow observer: a log line to a busy terminal
	}
	oc := outcome{event: d.Event.ID, outcome: outcome_, attempts: d.Attempts, notBefore: d.NotBefore, lastError: d.LastError}
	if err != nil {
		oc.err = err.Error()
	}
	o.mu.Lock()
	o.list = append(o.list, oc)
	o.mu.Unlock()
	o.ch <- struct{}{}
}

// waitFinal waits until n deliveries reached success or dead.
func (o *outcomes) waitFinal(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		o.mu.Lock()
		final := 0
		for _, oc := range o.list {
			if oc.outcome != "retry" {
				final++
			}
		}
		o.mu.Unlock()
		if final >= n {
			return
		}
		select {
		case <-o.ch:
		case <-deadline:
			t.Fatalf("only %d of %d deliveries finished: %+v", final, n, o.for_(""))
		}
	}
}

// for_ returns the outcomes of one event ("" for all).
func (o *outcomes) for_(id string) []outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []outcome
	for _, oc := range o.list {
		if id == "" || oc.event == id {
			out = append(out, oc)
		}
	}
	return out
}

func (o *outcomes) names(id string) []string {
	var out []string
	for _, oc := range o.for_(id) {
		out = append(out, oc.outcome)
	}
	return out
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fast is a retry policy in milliseconds so that tests run quickly.
var fast = config.Retry{MaxAttempts: 3, InitialInterval: 2 * time.Millisecond, MaxInterval: 10 * time.Millisecond, Multiplier: 2}

// openQueue opens the durable queue, as the daemon runs on, in a fresh
// directory; it is closed when the test ends.
func openQueue(t *testing.T) *logqueue.Queue {
	t.Helper()
	q, err := logqueue.Open(logqueue.Options{Dir: t.TempDir(), Log: quiet})
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func enqueue(t *testing.T, q router.Queue, sinks []string, ids ...string) {
	t.Helper()
	var batch []router.Routed
	for _, id := range ids {
		batch = append(batch, router.Routed{Event: &router.Event{ID: id}, Sinks: sinks})
	}
	if err := q.Enqueue(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

// next takes the next due delivery for sink, failing the test if none
// comes within a generous deadline.
func next(t *testing.T, q router.Queue, sink string) *router.Delivery {
	t.Helper()
	return queuetest.Next(t, q, sink, 5*time.Second)
}

// deadLetters returns the queue's dead letters once every delivery handed
// to Dead is stored: Dead counts a dead letter in Stats at once, but the
// queue's writer stores it in its next commit.
func deadLetters(t *testing.T, q *logqueue.Queue) []router.DeadLetter {
	t.Helper()
	want := 0
	for _, st := range q.Stats() {
		want += st[1]
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		page, err := q.ListDead(router.DeadQuery{Limit: 1000})
		if err != nil {
			t.Fatalf("ListDead: %v", err)
		}
		list := page.Items
		if len(list) >= want {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters stored after 5s, want %d", len(list), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startWorker(t *testing.T, sink router.Sink, retry config.Retry, concurrency int, ids ...string) (*logqueue.Queue, *outcomes) {
	t.Helper()
	q := openQueue(t)
	obs := newOutcomes()
	w := &router.Worker{Name: "crm", Sink: sink, Retry: retry, Concurrency: concurrency, Queue: q, Observer: obs, Log: quiet}
	w.Start(context.Background())
	t.Cleanup(w.Stop) // before the queue's Close: cleanups run last first
	enqueue(t, q, []string{"crm"}, ids...)
	return q, obs
}

func TestWorkerSuccessIsDone(t *testing.T) {
	sink := &fakeSink{}
	q, obs := startWorker(t, sink, fast, 1, "e1", "e2")
	obs.waitFinal(t, 2)
	for _, id := range []string{"e1", "e2"} {
		got := obs.for_(id)
		if len(got) != 1 || got[0].outcome != "success" || got[0].attempts != 1 || got[0].err != "" {
			t.Errorf("%s: outcomes %+v", id, got)
		}
		if n := len(sink.callsFor(id)); n != 1 {
			t.Errorf("%s sent %d times", id, n)
		}
	}
	if dead, st := deadLetters(t, q), q.Stats()["crm"]; len(dead) != 0 || st != [2]int{0, 0} {
		t.Errorf("dead %+v, stats (queued, dead) %v", dead, st)
	}
}

func TestWorkerPermanentFailureIsDeadAtOnce(t *testing.T) {
	sink := &fakeSink{answer: func(*router.Event, int) error {
		return fmt.Errorf("crm answered: %w", router.Permanent(errors.New("400 bad request")))
	}}
	q, obs := startWorker(t, sink, fast, 1, "e1")
	obs.waitFinal(t, 1)
	want := []outcome{{event: "e1", outcome: "dead", attempts: 1,
		lastError: "permanent failure: crm answered: 400 bad request", err: "crm answered: 400 bad request"}}
	if got := obs.for_("e1"); !reflect.DeepEqual(got, want) {
		t.Errorf("outcomes:\n got %+v\nwant %+v", got, want)
	}
	dead := deadLetters(t, q)
	if len(dead) != 1 || dead[0].LastError != "permanent failure: crm answered: 400 bad request" || dead[0].Attempts != 1 {
		t.Fatalf("dead letters = %+v", dead)
	}
	if dead[0].FirstTry.IsZero() || dead[0].LastTry.Before(dead[0].FirstTry) {
		t.Errorf("attempt times: first %v last %v", dead[0].FirstTry, dead[0].LastTry)
	}
	if n := len(sink.callsFor("e1")); n != 1 {
		t.Errorf("sent %d times, want 1", n)
	}
}

func TestWorkerTransientFailureRetriesUntilMaxAttempts(t *testing.T) {
	sink := &fakeSink{answer: func(*router.Event, int) error { return errors.New("503 service unavailable") }}
	q, obs := startWorker(t, sink, fast, 1, "e1")
	obs.waitFinal(t, 1)
	if got, want := obs.names("e1"), []string{"retry", "retry", "dead"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("outcomes = %q, want %q", got, want)
	}
	dead := deadLetters(t, q)
	if len(dead) != 1 || dead[0].Attempts != 3 || dead[0].LastError != "gave up after 3 attempts: 503 service unavailable" {
		t.Fatalf("dead letters = %+v", dead)
	}
	calls := sink.callsFor("e1")
	ocs := obs.for_("e1")
	if len(calls) != 3 {
		t.Fatalf("sent %d times, want 3", len(calls))
	}
	for i, oc := range ocs[:2] {
		if oc.attempts != i+1 || oc.lastError != "503 service unavailable" {
			t.Errorf("retry %d: %+v", i+1, oc)
		}
		// Floor: at least the backoff after the failed attempt ended, and
		// the next attempt not before it.
		floor := calls[i].end.Add(router.Backoff(fast, i+1))
		if oc.notBefore.Before(floor) {
			t.Errorf("retry %d: NotBefore %v is %v before the backoff floor", i+1, oc.notBefore, floor.Sub(oc.notBefore))
		}
		if calls[i+1].start.Before(oc.notBefore) {
			t.Errorf("attempt %d started %v before NotBefore", i+2, oc.notBefore.Sub(calls[i+1].start))
		}
	}
}

func TestWorkerTransientThenSuccess(t *testing.T) {
	sink := &fakeSink{answer: func(_ *router.Event, n int) error {
		if n < 3 {
			return errors.New("connection refused")
		}
		return nil
	}}
	retry := fast
	retry.MaxAttempts = 5
	q, obs := startWorker(t, sink, retry, 1, "e1")
	obs.waitFinal(t, 1)
	if got, want := obs.names("e1"), []string{"retry", "retry", "success"}; !reflect.DeepEqual(got, want) {
		t.Errorf("outcomes = %q, want %q", got, want)
	}
	if dead := deadLetters(t, q); len(dead) != 0 {
		t.Errorf("dead letters: %+v", dead)
	}
}

func TestWorkerRetryAfterIsAFloor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		retry config.Retry
		after time.Duration
		floor time.Duration
	}{
		{
			name:  "longer than the backoff and than max_interval",
			retry: config.Retry{MaxAttempts: 2, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond, Multiplier: 2},
			after: 60 * time.Millisecond, floor: 60 * time.Millisecond,
		},
		{
			name:  "shorter than the backoff: the backoff stands",
			retry: config.Retry{MaxAttempts: 2, InitialInterval: 40 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2},
			after: time.Millisecond, floor: 40 * time.Millisecond,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &fakeSink{answer: func(_ *router.Event, n int) error {
				if n == 1 {
					return fmt.Errorf("wrapped: %w", router.RetryAfter(errors.New("429 too many requests"), tc.after))
				}
				return nil
			}}
			_, obs := startWorker(t, sink, tc.retry, 1, "e1")
			obs.waitFinal(t, 1)
			ocs := obs.for_("e1")
			calls := sink.callsFor("e1")
			if len(ocs) != 2 || ocs[0].outcome != "retry" || ocs[1].outcome != "success" || len(calls) != 2 {
				t.Fatalf("outcomes %+v, calls %d", ocs, len(calls))
			}
			if floor := calls[0].end.Add(tc.floor); ocs[0].notBefore.Before(floor) {
				t.Errorf("NotBefore is %v before now + %v", floor.Sub(ocs[0].notBefore), tc.floor)
			}
			if calls[1].start.Before(ocs[0].notBefore) {
				t.Errorf("second attempt %v early", ocs[0].notBefore.Sub(calls[1].start))
			}
			if ocs[0].lastError != "wrapped: 429 too many requests" {
				t.Errorf("last error = %q", ocs[0].lastError)
			}
		})
	}
}

func TestWorkerMaxAgeGivesUp(t *testing.T) {
	sink := &fakeSink{answer: func(*router.Event, int) error { return errors.New("timeout") }}
	retry := config.Retry{MaxAttempts: 100, InitialInterval: 50 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2, MaxAge: 20 * time.Millisecond}
	q, obs := startWorker(t, sink, retry, 1, "e1")
	obs.waitFinal(t, 1)
	dead := deadLetters(t, q)
	if len(dead) != 1 || dead[0].Attempts != 1 || dead[0].LastError != "gave up: next attempt would be past max_age 20ms: timeout" {
		t.Fatalf("dead letters = %+v", dead)
	}
	if got := obs.names("e1"); !reflect.DeepEqual(got, []string{"dead"}) {
		t.Errorf("outcomes = %q", got)
	}
}

func TestWorkerMaxAgeAllowsRetriesWithinIt(t *testing.T) {
	sink := &fakeSink{answer: func(*router.Event, int) error { return errors.New("timeout") }}
	retry := config.Retry{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond, Multiplier: 1, MaxAge: time.Hour}
	q, obs := startWorker(t, sink, retry, 1, "e1")
	obs.waitFinal(t, 1)
	if got := obs.names("e1"); !reflect.DeepEqual(got, []string{"retry", "retry", "dead"}) {
		t.Errorf("outcomes = %q", got)
	}
	if d := deadLetters(t, q); len(d) != 1 || d[0].LastError != "gave up after 3 attempts: timeout" {
		t.Errorf("dead letters = %+v", d)
	}
}

// Retries of one delivery must not hold up the others.
func TestWorkerRetryDoesNotBlockOtherDeliveries(t *testing.T) {
	sink := &fakeSink{answer: func(e *router.Event, n int) error {
		if e.ID == "slow" {
			return router.RetryAfter(errors.New("busy"), 200*time.Millisecond)
		}
		return nil
	}}
	retry := config.Retry{MaxAttempts: 2, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond, Multiplier: 1}
	_, obs := startWorker(t, sink, retry, 1, "slow", "a", "b")
	obs.waitFinal(t, 3)
	slow := sink.callsFor("slow")
	for _, id := range []string{"a", "b"} {
		if c := sink.callsFor(id); len(c) != 1 || !c[0].start.Before(slow[1].start) {
			t.Errorf("%s was not delivered while slow waited: %+v", id, c)
		}
	}
}

func TestWorkerConcurrentDeliveries(t *testing.T) {
	sink := &fakeSink{answer: func(e *router.Event, n int) error {
		if n == 1 {
			return errors.New("flaky")
		}
		return nil
	}}
	retry := config.Retry{MaxAttempts: 3, InitialInterval: time.Microsecond, MaxInterval: time.Microsecond, Multiplier: 1}
	var ids []string
	for i := range 40 {
		ids = append(ids, fmt.Sprintf("e%d", i))
	}
	q, obs := startWorker(t, sink, retry, 4, ids...)
	// Goroutines report in their own order: wait for every report.
	for len(obs.for_("")) < 2*len(ids) {
		select {
		case <-obs.ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d reports", len(obs.for_("")))
		}
	}
	for _, id := range ids {
		got := obs.names(id)
		slices.Sort(got)
		if !reflect.DeepEqual(got, []string{"retry", "success"}) {
			t.Errorf("%s: outcomes = %q", id, got)
		}
	}
	if dead := deadLetters(t, q); len(dead) != 0 {
		t.Errorf("dead letters: %d", len(dead))
	}
}

// The observer runs after the queue took the delivery back; with several
// goroutines another may already be attempting it again. What the observer
// sees must still be the attempt it is told about.
func TestWorkerObserverSeesTheAttemptItIsToldAbout(t *testing.T) {
	sink := &fakeSink{answer: func(e *router.Event, n int) error {
		if n == 1 {
			return errors.New("flaky")
		}
		return nil
	}}
	retry := config.Retry{MaxAttempts: 3, InitialInterval: time.Microsecond, MaxInterval: time.Microsecond, Multiplier: 1}
	q := openQueue(t)
	obs := newOutcomes()
	obs.delay = 20 * time.Millisecond
	w := &router.Worker{Name: "crm", Sink: sink, Retry: retry, Concurrency: 2, Queue: q, Observer: obs, Log: quiet}
	w.Start(context.Background())
	defer w.Stop()
	enqueue(t, q, []string{"crm"}, "e1")
	// Both reports, in whatever order the two goroutines make them.
	for len(obs.for_("e1")) < 2 {
		select {
		case <-obs.ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("outcomes: %+v", obs.for_("e1"))
		}
	}
	byOutcome := map[string]outcome{}
	for _, oc := range obs.for_("e1") {
		byOutcome[oc.outcome] = oc
	}
	if r := byOutcome["retry"]; r.attempts != 1 || r.lastError != "flaky" {
		t.Errorf("retry reported as %+v; want attempt 1 failing with flaky", r)
	}
	if s := byOutcome["success"]; s.attempts != 2 {
		t.Errorf("success reported as %+v; want attempt 2", s)
	}
}

// ctxSink is a sink whose attempts end only when their context does, as an
// HTTP request to a hung receiver would.
type ctxSink struct {
	started chan struct{}
	mu      sync.Mutex
	sends   int
}

func (s *ctxSink) Send(ctx context.Context, e *router.Event) error {
	s.mu.Lock()
	s.sends++
	s.mu.Unlock()
	select {
	case s.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return fmt.Errorf("request cut: %w", ctx.Err())
}

func TestWorkerStopPutsAnAttemptUnderWayBack(t *testing.T) {
	sink := &ctxSink{started: make(chan struct{}, 1)}
	q := openQueue(t)
	obs := newOutcomes()
	w := &router.Worker{Name: "crm", Sink: sink, Retry: fast, Queue: q, Observer: obs, Log: quiet}
	w.Start(context.Background())
	enqueue(t, q, []string{"crm"}, "e1", "e2")
	<-sink.started
	stopped := make(chan struct{})
	go func() { w.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		q.Close() // let the worker go, so that the test can report
		<-stopped
		t.Fatalf("Stop did not return: the worker kept attempting after its context ended (%d sends)", sink.sends)
	}
	if got := obs.for_(""); len(got) != 0 {
		t.Errorf("an attempt cut by Stop was reported: %+v", got)
	}
	if dead, st := deadLetters(t, q), q.Stats()["crm"]; len(dead) != 0 || st != [2]int{2, 0} {
		t.Fatalf("dead %+v, stats (queued, dead) %v; want both deliveries back in the queue", dead, st)
	}
	for range 2 {
		if d := next(t, q, "crm"); d.Attempts != 0 {
			t.Errorf("%s: attempts = %d; a cut attempt must not count", d.Event.ID, d.Attempts)
		}
	}
}

func TestBackoff(t *testing.T) {
	r := config.Retry{InitialInterval: time.Second, Multiplier: 2, MaxInterval: 30 * time.Second}
	for _, tc := range []struct {
		attempts int
		want     time.Duration
	}{
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{4, 8 * time.Second},
		{5, 16 * time.Second},
		{6, 30 * time.Second}, // 32s capped
		{7, 30 * time.Second},
		{100, 30 * time.Second},
		{5000, 30 * time.Second}, // 2^4999 is +Inf
	} {
		if got := router.Backoff(r, tc.attempts); got != tc.want {
			t.Errorf("Backoff(%d) = %v, want %v", tc.attempts, got, tc.want)
		}
	}
	constant := config.Retry{InitialInterval: 500 * time.Millisecond, Multiplier: 1, MaxInterval: time.Minute}
	for _, n := range []int{1, 2, 10} {
		if got := router.Backoff(constant, n); got != 500*time.Millisecond {
			t.Errorf("multiplier 1: Backoff(%d) = %v", n, got)
		}
	}
	odd := config.Retry{InitialInterval: 100 * time.Millisecond, Multiplier: 1.5, MaxInterval: time.Second}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 150 * time.Millisecond, 3: 225 * time.Millisecond, 7: time.Second} {
		if got := router.Backoff(odd, n); got != want {
			t.Errorf("multiplier 1.5: Backoff(%d) = %v, want %v", n, got, want)
		}
	}
	// The defaults: ten attempts, 1s+2s+...+256s = 8m31s of waits before
	// jitter (up to 20 % more).
	var total time.Duration
	for n := 1; n < config.DefaultRetry.MaxAttempts; n++ {
		total += router.Backoff(config.DefaultRetry, n)
	}
	if want := 8*time.Minute + 31*time.Second; total != want {
		t.Errorf("default policy waits %v in total before giving up, want %v", total, want)
	}
}

func TestErrorClassification(t *testing.T) {
	base := errors.New("400 bad request")
	perm := router.Permanent(base)
	for _, tc := range []struct {
		err       error
		permanent bool
	}{
		{perm, true},
		{fmt.Errorf("crm: %w", perm), true},
		{base, false},
		{router.RetryAfter(base, time.Second), false},
		{nil, false},
	} {
		if got := router.IsPermanent(tc.err); got != tc.permanent {
			t.Errorf("IsPermanent(%v) = %v", tc.err, got)
		}
	}
	if perm.Error() != "400 bad request" || !errors.Is(perm, base) {
		t.Errorf("Permanent must keep the message and wrap: %v", perm)
	}
	ra := router.RetryAfter(base, 3*time.Second)
	var rae *router.RetryAfterError
	if !errors.As(fmt.Errorf("x: %w", ra), &rae) || rae.After != 3*time.Second || ra.Error() != "400 bad request" || !errors.Is(ra, base) {
		t.Errorf("RetryAfter: %v", ra)
	}
}
