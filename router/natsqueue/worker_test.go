package natsqueue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/router"
	"switchboard/router/natsqueue/natstest"
)

// failingSink fails every send of the events named in fail.
type failingSink struct {
	mu    sync.Mutex
	fail  map[string]bool
	sends map[string]int
}

func (s *failingSink) Send(ctx context.Context, e *router.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends[e.ID]++
	if s.fail[e.ID] {
		return errors.New("503 from receiver")
	}
	return nil
}

func (s *failingSink) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sends[id]
}

// The router's worker on this queue: the retry policy counts attempts
// from the delivery count and dead-letters after max_attempts, while the
// other events go through.
func TestWorkerRetriesThenDeadLetters(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL)
	sink := &failingSink{fail: map[string]bool{"bad": true}, sends: map[string]int{}}
	retry := config.Retry{MaxAttempts: 3, InitialInterval: 50 * time.Millisecond, MaxInterval: 100 * time.Millisecond, Multiplier: 2, MaxAge: time.Hour}
	q.ConfigureSink("crm", 2)
	w := &router.Worker{Name: "crm", Sink: sink, Retry: retry, Concurrency: 2, Queue: q, Log: quiet}
	w.Start(context.Background())
	t.Cleanup(w.Stop)
	enqueue(t, q, []string{"crm"}, event("app", "bad"), event("app", "good1"), event("app", "good2"))
	var list []router.DeadLetter
	waitFor(t, 10*time.Second, "the bad event dead", func() bool { list, _ = q.allDead(); return len(list) == 1 })
	dl := list[0]
	if dl.EventID != "bad" || dl.Attempts != 3 || dl.LastError != "gave up after 3 attempts: 503 from receiver" || dl.FirstTry.IsZero() {
		t.Errorf("dead letter %+v", dl)
	}
	if n := sink.count("bad"); n != 3 {
		t.Errorf("bad sent %d times, want 3", n)
	}
	if sink.count("good1") != 1 || sink.count("good2") != 1 {
		t.Errorf("good events sent %d and %d times", sink.count("good1"), sink.count("good2"))
	}
	waitFor(t, 5*time.Second, "nothing pending", func() bool { return q.Stats()["crm"] == [2]int{0, 1} })
	waitFor(t, 5*time.Second, "idle", q.Idle)
}
