package router_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"switchboard/router"
)

// statusSink answers each event 503 first, then 200, as an HTTP receiver
// that was briefly down.
type statusSink struct {
	mu    sync.Mutex
	calls map[string]int
}

func (s *statusSink) Send(ctx context.Context, e *router.Event) error {
	_, err := s.SendStatus(ctx, e)
	return err
}

func (s *statusSink) SendStatus(ctx context.Context, e *router.Event) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[e.ID]++
	if s.calls[e.ID] == 1 {
		return 503, errors.New("503 Service Unavailable")
	}
	return 200, nil
}

// attemptLog is an observer that also hears when attempts start.
type attemptLog struct {
	mu       sync.Mutex
	started  int
	statuses []int
	inFlight int // started minus ended, never below 0
	bad      bool
	done     chan struct{}
}

func (a *attemptLog) Attempting(d *router.Delivery) {
	a.mu.Lock()
	a.started++
	a.inFlight++
	a.mu.Unlock()
}

func (a *attemptLog) Abandoned(d *router.Delivery) {
	a.mu.Lock()
	a.inFlight--
	a.mu.Unlock()
}

func (a *attemptLog) Delivered(d *router.Delivery, outcome string, took time.Duration, err error) {
	a.mu.Lock()
	a.inFlight--
	if a.inFlight < 0 {
		a.bad = true
	}
	a.statuses = append(a.statuses, d.Status)
	a.mu.Unlock()
	if outcome == "success" {
		a.done <- struct{}{}
	}
}

// TestWorkerReportsStatusAndAttempts checks that a StatusSink's answers
// reach the observer in Delivery.Status, and that every attempt started
// is reported ended.
func TestWorkerReportsStatusAndAttempts(t *testing.T) {
	q := openQueue(t)
	obs := &attemptLog{done: make(chan struct{}, 1)}
	w := &router.Worker{Name: "crm", Sink: &statusSink{calls: map[string]int{}}, Retry: fast, Concurrency: 1, Queue: q, Observer: obs, Log: quiet}
	w.Start(context.Background())
	t.Cleanup(w.Stop)
	enqueue(t, q, []string{"crm"}, "e1")
	select {
	case <-obs.done:
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered within 10s")
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.statuses) != 2 || obs.statuses[0] != 503 || obs.statuses[1] != 200 {
		t.Errorf("statuses = %v, want [503 200]", obs.statuses)
	}
	if obs.started != 2 || obs.inFlight != 0 || obs.bad {
		t.Errorf("started %d, in flight %d after the end (went negative: %v); want 2 and 0", obs.started, obs.inFlight, obs.bad)
	}
}
