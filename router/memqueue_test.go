package router_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"switchboard/router"
)

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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := q.Next(ctx, sink)
	if err != nil {
		t.Fatalf("Next(%s): %v", sink, err)
	}
	return d
}

// nothingDue checks that Next for sink has nothing within a short wait.
func nothingDue(t *testing.T, q router.Queue, sink string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if d, err := q.Next(ctx, sink); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next(%s) = %+v, %v; want nothing due", sink, d, err)
	}
}

func TestMemQueueHandsOutOneDeliveryPerSinkInOrder(t *testing.T) {
	q := router.NewMemQueue()
	defer q.Close()
	enqueue(t, q, []string{"crm", "archive"}, "e1", "e2")
	enqueue(t, q, []string{"archive"}, "e3")
	if got, want := q.Depth(), map[string]int{"crm": 2, "archive": 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("Depth = %v, want %v", got, want)
	}
	var got []string
	for range 3 {
		d := next(t, q, "archive")
		if d.Sink != "archive" || d.Attempts != 0 || d.ID == "" {
			t.Errorf("delivery = %+v", d)
		}
		got = append(got, d.Event.ID)
		if err := q.Done(d); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"e1", "e2", "e3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("archive got %q, want %q", got, want)
	}
	nothingDue(t, q, "archive")
	if d := next(t, q, "crm"); d.Event.ID != "e1" {
		t.Errorf("crm got %s first", d.Event.ID)
	}
	if got, want := q.Depth(), map[string]int{"crm": 2, "archive": 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("Depth with one in flight = %v, want %v", got, want)
	}
	if q.Idle() {
		t.Error("Idle with a delivery in flight")
	}
}

func TestMemQueueDeliveryIDsAreDistinct(t *testing.T) {
	q := router.NewMemQueue()
	defer q.Close()
	enqueue(t, q, []string{"a", "b"}, "e1", "e2")
	seen := map[string]bool{}
	for _, sink := range []string{"a", "a", "b", "b"} {
		d := next(t, q, sink)
		if seen[d.ID] {
			t.Errorf("delivery id %s handed out twice", d.ID)
		}
		seen[d.ID] = true
	}
}

func TestMemQueueRetryIsNotDueBeforeNotBefore(t *testing.T) {
	q := router.NewMemQueue()
	defer q.Close()
	enqueue(t, q, []string{"crm"}, "e1")
	d := next(t, q, "crm")
	d.Attempts, d.LastError = 1, "503"
	notBefore := time.Now().Add(300 * time.Millisecond)
	d.NotBefore = notBefore
	if err := q.Retry(d); err != nil {
		t.Fatal(err)
	}
	if q.Idle() != true {
		t.Error("a delayed retry is not due: the queue is idle")
	}
	if got := q.Depth()["crm"]; got != 1 {
		t.Errorf("Depth = %d, want the delayed retry counted", got)
	}
	// Waiting until shortly before NotBefore gives nothing. (On a loaded
	// machine the waiter may only run after NotBefore; then it may get the
	// delivery, but never earlier.)
	ctx, cancel := context.WithDeadline(context.Background(), notBefore.Add(-100*time.Millisecond))
	defer cancel()
	again, err := q.Next(ctx, "crm")
	if err == nil {
		if now := time.Now(); now.Before(notBefore) {
			t.Fatalf("handed out %s before NotBefore", notBefore.Sub(now))
		}
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next before NotBefore = %v; want nothing due", err)
	} else {
		again = next(t, q, "crm")
		if now := time.Now(); now.Before(notBefore) {
			t.Errorf("handed out %s before NotBefore", notBefore.Sub(now))
		}
	}
	if again != d || again.Attempts != 1 || again.LastError != "503" {
		t.Errorf("retried delivery = %+v, want the same one with its attempts", again)
	}
}

func TestMemQueueRetryAlreadyDueIsHandedOutAtOnce(t *testing.T) {
	q := router.NewMemQueue()
	defer q.Close()
	enqueue(t, q, []string{"crm"}, "e1")
	d := next(t, q, "crm")
	d.NotBefore = time.Now().Add(-time.Second)
	q.Retry(d)
	if again := next(t, q, "crm"); again != d {
		t.Errorf("got %+v", again)
	}
}

func TestMemQueueDelayedRetriesComeInDueOrder(t *testing.T) {
	q := router.NewMemQueue()
	defer q.Close()
	enqueue(t, q, []string{"crm"}, "late", "early", "middle")
	now := time.Now()
	due := map[string]time.Duration{"late": 60 * time.Millisecond, "early": 20 * time.Millisecond, "middle": 40 * time.Millisecond}
	for range 3 {
		d := next(t, q, "crm")
		d.NotBefore = now.Add(due[d.Event.ID])
		q.Retry(d)
	}
	var got []string
	for range 3 {
		d := next(t, q, "crm")
		if time.Now().Before(d.NotBefore) {
			t.Errorf("%s handed out before its NotBefore", d.Event.ID)
		}
		got = append(got, d.Event.ID)
		q.Done(d)
	}
	if want := []string{"early", "middle", "late"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order = %q, want %q", got, want)
	}
}

// A worker waiting on a far retry must wake for a fresh delivery.
func TestMemQueueNewDeliveryWakesAWaitingNext(t *testing.T) {
	q := router.NewMemQueue()
	defer q.Close()
	enqueue(t, q, []string{"crm"}, "slow")
	d := next(t, q, "crm")
	d.NotBefore = time.Now().Add(time.Hour)
	q.Retry(d)
	got := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d, err := q.Next(ctx, "crm")
		if err != nil {
			got <- err.Error()
			return
		}
		got <- d.Event.ID
	}()
	time.Sleep(10 * time.Millisecond)
	enqueue(t, q, []string{"crm"}, "fresh")
	if id := <-got; id != "fresh" {
		t.Errorf("Next returned %s, want the fresh delivery", id)
	}
}

func TestMemQueueDead(t *testing.T) {
	q := router.NewMemQueue()
	defer q.Close()
	enqueue(t, q, []string{"crm"}, "e1", "e2")
	d := next(t, q, "crm")
	d.Attempts, d.LastError = 3, "gave up after 3 attempts: 503"
	if err := q.Dead(d); err != nil {
		t.Fatal(err)
	}
	dead := q.DeadLetters()
	if len(dead) != 1 || dead[0] != d || dead[0].LastError != "gave up after 3 attempts: 503" {
		t.Fatalf("DeadLetters = %+v", dead)
	}
	if got := q.Depth()["crm"]; got != 1 {
		t.Errorf("Depth = %d, want 1 (the dead letter no longer counts)", got)
	}
	// The copy does not alias the queue's list.
	dead[0] = nil
	if q.DeadLetters()[0] == nil {
		t.Error("DeadLetters returned the queue's own slice")
	}
	if d := next(t, q, "crm"); d.Event.ID != "e2" {
		t.Errorf("next after dead = %s", d.Event.ID)
	}
}

func TestMemQueueCloseUnblocksNext(t *testing.T) {
	q := router.NewMemQueue()
	errs := make(chan error, 3)
	for _, sink := range []string{"crm", "crm", "archive"} {
		go func() {
			_, err := q.Next(context.Background(), sink)
			errs <- err
		}()
	}
	time.Sleep(10 * time.Millisecond)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		select {
		case err := <-errs:
			if !errors.Is(err, router.ErrQueueClosed) {
				t.Errorf("Next after Close = %v, want ErrQueueClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Next still blocked after Close")
		}
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := q.Next(context.Background(), "crm"); !errors.Is(err, router.ErrQueueClosed) {
		t.Errorf("Next on a closed queue = %v", err)
	}
	err := q.Enqueue(context.Background(), []router.Routed{{Event: &router.Event{ID: "x"}, Sinks: []string{"crm"}}})
	if !errors.Is(err, router.ErrQueueClosed) {
		t.Errorf("Enqueue on a closed queue = %v", err)
	}
}

func TestMemQueueNextHonoursContext(t *testing.T) {
	q := router.NewMemQueue()
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() {
		_, err := q.Next(ctx, "crm")
		errs <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case err := <-errs:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Next = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next still blocked after cancel")
	}
}

func TestMemQueueConcurrentNextHandsEachDeliveryOutOnce(t *testing.T) {
	q := router.NewMemQueue()
	defer q.Close()
	const n, workers = 300, 8
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				d, err := q.Next(ctx, "crm")
				if err != nil {
					return
				}
				mu.Lock()
				seen[d.Event.ID]++
				total := len(seen)
				mu.Unlock()
				q.Done(d)
				if total == n {
					cancel()
				}
			}
		})
	}
	// Enqueue while the workers already wait, in several batches.
	for i := 0; i < n; i += 50 {
		var ids []string
		for j := i; j < i+50; j++ {
			ids = append(ids, fmt.Sprintf("e%d", j))
		}
		enqueue(t, q, []string{"crm"}, ids...)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("only %d of %d deliveries handed out", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s handed out %d times", id, c)
		}
	}
	if len(seen) != n {
		t.Errorf("%d deliveries handed out, want %d", len(seen), n)
	}
	if !q.Idle() {
		t.Error("queue not idle after every delivery is done")
	}
}
