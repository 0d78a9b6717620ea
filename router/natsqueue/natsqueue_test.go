package natsqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/router"
	"switchboard/router/natsqueue/natstest"
	"switchboard/router/queuetest"
)

// These tests run against real nats-servers started in the test process
// (natstest), each with its JetStream file store in t.TempDir(). Two
// Queues on one server are two replicas.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t testing.TB, url string, mod ...func(*Options)) *Queue {
	t.Helper()
	opts := Options{URL: url, DedupWindow: time.Hour, AckWait: 2 * time.Second, Log: quiet,
		ConnectTimeout: 5 * time.Second, PublishTimeout: 2 * time.Second}
	for _, m := range mod {
		m(&opts)
	}
	q, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

var epoch = queuetest.Epoch

func event(source, id string) *router.Event { return queuetest.Event(source, id) }

func routed(sinks []string, events ...*router.Event) []router.Routed {
	return queuetest.Routed(sinks, events...)
}

func enqueue(t testing.TB, q *Queue, sinks []string, events ...*router.Event) []router.Routed {
	t.Helper()
	return queuetest.Enqueue(t, q, sinks, events...)
}

func next(t testing.TB, q *Queue, sink string, within time.Duration) *router.Delivery {
	t.Helper()
	return queuetest.Next(t, q, sink, within)
}

// none asserts that no delivery for sink comes within d.
func none(t testing.TB, q *Queue, sink string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if got, err := q.Next(ctx, sink); err == nil {
		t.Fatalf("Next(%s) = event %s attempt %d, want nothing", sink, got.Event.ID, got.Attempts)
	}
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sameEvent(t testing.TB, got, want *router.Event) {
	t.Helper()
	gj, _ := got.MarshalJSON()
	wj, _ := want.MarshalJSON()
	if string(gj) != string(wj) || string(got.Body) != string(want.Body) || !reflect.DeepEqual(got.Headers, want.Headers) ||
		!got.Time.Equal(want.Time) || !got.ReceivedAt.Equal(want.ReceivedAt) {
		t.Fatalf("event read back differs:\n got %s body %q headers %v\nwant %s body %q headers %v", gj, got.Body, got.Headers, wj, want.Body, want.Headers)
	}
}

func TestEnqueueNextDone(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL)
	ev := event("bird", "e1")
	ev.Body = []byte(`{"events":[` + string(ev.RawPayload) + `]}`) // a batch body, not the payload
	enqueue(t, q, []string{"crm", "archive"}, ev)
	for _, sink := range []string{"crm", "archive"} {
		d := next(t, q, sink, 5*time.Second)
		if d.Sink != sink || d.Attempts != 0 || !d.FirstTry.IsZero() {
			t.Errorf("%s: delivery %+v", sink, d)
		}
		sameEvent(t, d.Event, ev)
		if err := q.Done(d); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "both deliveries acked", func() bool {
		st := q.Stats()
		return st["crm"] == [2]int{} && st["archive"] == [2]int{}
	})
	none(t, q, "crm", 300*time.Millisecond)
}

// Two Queues on one server are two replicas: a provider's retry reaching
// the other one is a duplicate, whether it comes with sinks or not.
func TestDuplicateOnAnotherReplica(t *testing.T) {
	srv := natstest.RunServer(t)
	a, b := open(t, srv.URL), open(t, srv.URL)
	first := enqueue(t, a, []string{"crm"}, event("bird", "e1"))
	if first[0].Duplicate {
		t.Fatal("first delivery of e1 marked duplicate")
	}
	again := enqueue(t, b, []string{"crm"}, event("bird", "e1"), event("bird", "e2"), event("other", "e1"))
	if !again[0].Duplicate || again[1].Duplicate || again[2].Duplicate {
		t.Fatalf("duplicates = %v %v %v, want true false false", again[0].Duplicate, again[1].Duplicate, again[2].Duplicate)
	}
	// Routed nowhere is remembered too.
	if r := enqueue(t, a, nil, event("bird", "n1")); r[0].Duplicate {
		t.Fatal("n1 duplicate at first sight")
	}
	if r := enqueue(t, b, []string{"crm"}, event("bird", "n1")); !r[0].Duplicate {
		t.Fatal("n1 routed nowhere, then its retry with sinks was not a duplicate")
	}
	waitFor(t, 5*time.Second, "3 deliveries queued", func() bool { return a.Stats()["crm"][0] == 3 })
}

// The stream's message ids catch what the bucket does not know yet: two
// replicas taking the same retry at once, or a request answered 503 after
// its messages were stored but before its id was remembered.
func TestDuplicateCaughtByMessageID(t *testing.T) {
	srv := natstest.RunServer(t)
	a, b := open(t, srv.URL), open(t, srv.URL)
	enqueue(t, a, []string{"crm", "archive"}, event("bird", "e1"))
	if err := a.seen.Purge(context.Background(), seenKey(event("bird", "e1"))); err != nil {
		t.Fatal(err)
	}
	r := enqueue(t, b, []string{"crm", "archive"}, event("bird", "e1"))
	if !r[0].Duplicate {
		t.Fatal("every message already stored, but not answered duplicate")
	}
	// Part stored before (one sink), part new (a sink added since): accepted.
	r = enqueue(t, b, []string{"crm", "slack"}, event("bird", "e3"))
	a.seen.Purge(context.Background(), seenKey(event("bird", "e3")))
	r = enqueue(t, b, []string{"crm", "email"}, event("bird", "e3"))
	if r[0].Duplicate {
		t.Fatal("a new (event, sink) message was stored, but the event answered duplicate")
	}
	waitFor(t, 5*time.Second, "deliveries queued once each", func() bool {
		st := a.Stats()
		return st["crm"][0] == 2 && st["archive"][0] == 1 && st["slack"][0] == 1 && st["email"][0] == 1
	})
}

// Two replicas taking the same event at the same moment queue it once.
func TestConcurrentRetriesQueueOnce(t *testing.T) {
	srv := natstest.RunServer(t)
	a, b := open(t, srv.URL), open(t, srv.URL)
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		for _, q := range []*Queue{a, b} {
			wg.Go(func() {
				if err := q.Enqueue(context.Background(), routed([]string{"crm"}, event("bird", fmt.Sprint("e", i)))); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	waitFor(t, 5*time.Second, "n deliveries", func() bool { return a.Stats()["crm"][0] == n })
	time.Sleep(200 * time.Millisecond)
	if got := a.Stats()["crm"][0]; got != n {
		t.Fatalf("%d deliveries queued for %d events posted to both replicas", got, n)
	}
}

func TestDedupHorizon(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL, func(o *Options) { o.DedupWindow = time.Second })
	// bird's signed requests stay valid for long: the daemon asks the queue
	// to remember its ids for an hour; app's get the queue's window.
	batch := func() []router.Routed {
		b := routed(nil, event("bird", "e1"), event("app", "e1"))
		b[0].Remember = time.Hour
		if err := q.Enqueue(context.Background(), b); err != nil {
			t.Fatalf("enqueue: %v", err)
		}
		return b
	}
	batch()
	time.Sleep(2500 * time.Millisecond) // past the generic window, and the key TTL granularity
	r := batch()
	if !r[0].Duplicate {
		t.Error("bird's e1 forgotten within its one-hour horizon")
	}
	if r[1].Duplicate {
		t.Error("app's e1 still remembered past its one-second window")
	}
}

func TestDedupOff(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL, func(o *Options) { o.DedupWindow = 0 })
	enqueue(t, q, []string{"crm"}, event("bird", "e1"))
	if r := enqueue(t, q, []string{"crm"}, event("bird", "e1")); r[0].Duplicate {
		t.Fatal("dedup is off, yet a duplicate")
	}
	waitFor(t, 5*time.Second, "two deliveries", func() bool { return q.Stats()["crm"][0] == 2 })
}

func TestRetryWaitsAndCountsAttempts(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL)
	enqueue(t, q, []string{"crm"}, event("bird", "e1"), event("bird", "e2"))
	d := next(t, q, "crm", 5*time.Second)
	queued := time.Now()
	d.Attempts, d.LastError, d.NotBefore = 1, "503", time.Now().Add(700*time.Millisecond)
	if err := q.Retry(d); err != nil {
		t.Fatal(err)
	}
	// The other event is not held up by the waiting retry.
	d2 := next(t, q, "crm", 2*time.Second)
	if d2.Event.ID != "e2" {
		t.Fatalf("got %s while e1 waits for its retry, want e2", d2.Event.ID)
	}
	q.Done(d2)
	d = next(t, q, "crm", 5*time.Second)
	if waited := time.Since(queued); waited < 600*time.Millisecond {
		t.Errorf("retry came after %v, want about 700ms", waited)
	}
	if d.Event.ID != "e1" || d.Attempts != 1 || d.FirstTry.IsZero() || time.Since(d.FirstTry) > 10*time.Second {
		t.Errorf("retried delivery: id %s attempts %d first try %v", d.Event.ID, d.Attempts, d.FirstTry)
	}
	q.Done(d)
}

func TestDeadLettersListShowReplayPurge(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL)
	other := open(t, srv.URL)
	enqueue(t, q, []string{"crm"}, event("bird", "e1"), event("bird", "e2"), event("bird", "e3"))
	for range 3 {
		d := next(t, q, "crm", 5*time.Second)
		d.Attempts, d.FirstTry, d.LastTry = 3, epoch, epoch.Add(time.Minute)
		d.LastError = "gave up after 3 attempts: 500 from " + d.Event.ID + "\r\nX-Injected: yes"
		if err := q.Dead(d); err != nil {
			t.Fatal(err)
		}
	}
	list, err := other.allDead() // any replica sees them
	if err != nil || len(list) != 3 {
		t.Fatalf("ListDead = %d, %v", len(list), err)
	}
	dl := list[0]
	if dl.Sink != "crm" || dl.EventID != "e1" || dl.Source != "bird" || dl.EventName != "voice.outbound" || dl.Attempts != 3 ||
		!dl.FirstTry.Equal(epoch) || dl.DeadAt.IsZero() || !strings.HasSuffix(dl.LastError, "\r\nX-Injected: yes") || dl.Event != nil {
		t.Errorf("dead letter: %+v", dl)
	}
	full, err := other.GetDead(dl.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, full.Event, event("bird", "e1"))
	if _, err := other.GetDead("999"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("GetDead(999) = %v, want ErrNotFound", err)
	}
	if _, err := other.Replay([]string{list[1].ID, "999"}); !errors.Is(err, router.ErrNotFound) {
		t.Fatalf("Replay with an unknown id = %v, want ErrNotFound and nothing replayed", err)
	}
	if n, err := other.Replay([]string{list[1].ID}); n != 1 || err != nil {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	d := next(t, q, "crm", 5*time.Second)
	if d.Event.ID != "e2" || d.Attempts != 0 {
		t.Errorf("replayed delivery %s attempts %d, want e2 with a fresh count", d.Event.ID, d.Attempts)
	}
	q.Done(d)
	if n, err := other.Purge([]string{list[0].ID}); n != 1 || err != nil {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	if n, err := other.Purge(nil); n != 1 || err != nil {
		t.Fatalf("Purge all = %d, %v", n, err)
	}
	if list, _ := q.allDead(); len(list) != 0 {
		t.Fatalf("%d dead letters after purging all", len(list))
	}
}

func TestDeadLetterPages(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL)
	var events []*router.Event
	for i := range 7 {
		events = append(events, event("bird", fmt.Sprint("e", i)))
	}
	enqueue(t, q, []string{"crm", "slack"}, events...)
	for range 7 {
		for _, sink := range []string{"crm", "slack"} {
			d := next(t, q, sink, 5*time.Second)
			d.LastError = "permanent failure: 400 from " + sink
			if d.Event.ID == "e3" {
				d.LastError = "permanent failure: Template Error"
			}
			q.Dead(d)
		}
	}
	var ids []string
	query := router.DeadQuery{Sink: "crm", Limit: 3}
	for {
		page, err := q.ListDead(query)
		if err != nil {
			t.Fatal(err)
		}
		for _, dl := range page.Items {
			if dl.Sink != "crm" {
				t.Errorf("sink filter let %s through", dl.Sink)
			}
			ids = append(ids, dl.EventID)
		}
		if page.NextCursor == "" {
			break
		}
		query.Cursor = page.NextCursor
	}
	if want := "e6 e5 e4 e3 e2 e1 e0"; strings.Join(ids, " ") != want {
		t.Errorf("pages gave %v, want newest first %s", ids, want)
	}
	page, err := q.ListDead(router.DeadQuery{Text: "template error"})
	if err != nil || len(page.Items) != 2 || page.NextCursor != "" {
		t.Fatalf("text filter: %+v %v", page, err)
	}
	if _, err := q.ListDead(router.DeadQuery{Cursor: "x"}); err == nil {
		t.Error("a bad cursor was taken")
	}
}

func TestQueueFull(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL, func(o *Options) { o.MaxBytes = 4096 })
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = q.Enqueue(context.Background(), routed([]string{"crm"}, event("bird", fmt.Sprint("e", i))))
	}
	if !errors.Is(err, router.ErrQueueFull) {
		t.Fatalf("past max_bytes: %v, want ErrQueueFull", err)
	}
	// Taking deliveries gives room back.
	for range 3 {
		q.Done(next(t, q, "crm", 5*time.Second))
	}
	waitFor(t, 5*time.Second, "room after acks", func() bool {
		return q.Enqueue(context.Background(), routed([]string{"crm"}, event("bird", "late"))) == nil
	})
}

func TestBacklogFullBecomesDeadLetter(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL, func(o *Options) { o.MaxPendingPerSink = 2 })
	enqueue(t, q, []string{"crm", "archive"}, event("bird", "e1"), event("bird", "e2"), event("bird", "e3"))
	enqueue(t, q, []string{"archive"}, event("bird", "e4"))
	list, err := q.allDead()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, dl := range list {
		got = append(got, dl.Sink+"/"+dl.EventID)
		if !strings.HasPrefix(dl.LastError, "backlog full") {
			t.Errorf("reason %q", dl.LastError)
		}
	}
	if strings.Join(got, " ") != "crm/e3 archive/e3 archive/e4" {
		t.Errorf("dead on arrival: %v", got)
	}
	st := q.Stats()
	if st["crm"] != [2]int{2, 1} || st["archive"] != [2]int{2, 2} {
		t.Errorf("stats %v", st)
	}
}

func TestDeadLetterLimits(t *testing.T) {
	srv := natstest.RunServer(t)
	var mu sync.Mutex
	var dropped []string
	q := open(t, srv.URL, func(o *Options) {
		o.DeadLetterMaxAge = time.Hour
		o.DeadLetterMaxBytes = 1500
		o.Dropped = func(dl router.DeadLetter) {
			mu.Lock()
			dropped = append(dropped, dl.EventID)
			mu.Unlock()
		}
	})
	for i := range 6 {
		enqueue(t, q, []string{"crm"}, event("bird", fmt.Sprint("e", i)))
		d := next(t, q, "crm", 5*time.Second)
		d.LastError = "permanent failure"
		q.Dead(d)
	}
	q.dropOldDeadLetters(time.Now())
	list, _ := q.allDead()
	if len(list) == 0 || len(list) == 6 || list[len(list)-1].EventID != "e5" {
		t.Fatalf("after the size limit: %d left (%v), want the newest few", len(list), list)
	}
	mu.Lock()
	if len(dropped) != 6-len(list) || dropped[0] != "e0" {
		t.Errorf("dropped %v, want the oldest first", dropped)
	}
	mu.Unlock()
	q.dropOldDeadLetters(time.Now().Add(2 * time.Hour))
	if list, _ := q.allDead(); len(list) != 0 {
		t.Errorf("%d dead letters older than max age kept", len(list))
	}
}

// The replicas' sweep enforces the limits by itself within seconds, as
// the embedded queue does (it once ran every 30 seconds).
func TestDeadLetterLimitsSweptSoon(t *testing.T) {
	srv := natstest.RunServer(t)
	var dropped atomic.Int32
	q := open(t, srv.URL, func(o *Options) {
		o.DeadLetterMaxBytes = 1
		o.Dropped = func(router.DeadLetter) { dropped.Add(1) }
	})
	enqueue(t, q, []string{"crm"}, event("bird", "e0"))
	d := next(t, q, "crm", 5*time.Second)
	d.LastError = "permanent failure"
	if err := q.Dead(d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*sweepEvery, "the dead letter past dead_letter_max_bytes dropped", func() bool {
		list, err := q.allDead()
		return err == nil && len(list) == 0 && dropped.Load() == 1
	})
}

func TestDeadLetterSinks(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL)
	enqueue(t, q, []string{"crm", "gone"}, event("bird", "e1"), event("bird", "e2"))
	n, err := q.DeadLetterSinks(func(s string) bool { return s != "gone" }, "sink removed")
	if n != 2 || err != nil {
		t.Fatalf("DeadLetterSinks = %d, %v", n, err)
	}
	list, _ := q.allDead()
	if len(list) != 2 || list[0].Sink != "gone" || list[0].LastError != "sink removed" {
		t.Fatalf("dead letters %+v", list)
	}
	if st := q.Stats(); st["crm"][0] != 2 || st["gone"][0] != 0 {
		t.Errorf("stats %v", st)
	}
}

// A sink removed from this replica's config but still pulled by another
// (a rolling update) keeps its deliveries.
func TestDeadLetterSinksLeavesOthersSinks(t *testing.T) {
	srv := natstest.RunServer(t)
	a, b := open(t, srv.URL), open(t, srv.URL)
	enqueue(t, a, []string{"slow"}, event("bird", "e1"))
	next(t, b, "slow", 5*time.Second) // b has the sink, is sending e1 and pulls for more
	enqueue(t, a, []string{"slow"}, event("bird", "e2"))
	if n, err := a.DeadLetterSinks(func(string) bool { return false }, "sink removed"); n != 0 || err != nil {
		t.Fatalf("DeadLetterSinks = %d, %v; want 0 while another replica delivers the sink", n, err)
	}
}

func TestUnreadableRecordBecomesDeadLetter(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL)
	if _, err := q.js.Publish(context.Background(), q.names.subject("crm"), []byte("\x00garbage")); err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, []string{"crm"}, event("bird", "e1"))
	if d := next(t, q, "crm", 5*time.Second); d.Event.ID != "e1" {
		t.Fatalf("got %s", d.Event.ID)
	}
	list, _ := q.allDead()
	if len(list) != 1 || !strings.HasPrefix(list[0].LastError, "unreadable record") {
		t.Fatalf("dead letters %+v", list)
	}
}

// A replica that dies holding a delivery loses nothing: after the ack
// deadline the other replica gets it.
func TestDeadReplicasDeliveryGoesToAnother(t *testing.T) {
	srv := natstest.RunServer(t)
	a, b := open(t, srv.URL), open(t, srv.URL)
	enqueue(t, a, []string{"crm"}, event("bird", "e1"))
	next(t, a, "crm", 5*time.Second)
	a.nc.Close() // like kill -9: no ack, no nak, the connection just goes
	d := next(t, b, "crm", 10*time.Second)
	if d.Event.ID != "e1" || d.Attempts != 1 {
		t.Fatalf("got %s attempt %d", d.Event.ID, d.Attempts)
	}
	b.Done(d)
}

// A slow delivery keeps its ack deadline moving: nobody else gets it.
func TestSlowDeliveryIsNotTakenByAnother(t *testing.T) {
	srv := natstest.RunServer(t)
	a, b := open(t, srv.URL), open(t, srv.URL) // AckWait 2s
	enqueue(t, a, []string{"crm"}, event("bird", "e1"))
	d := next(t, a, "crm", 5*time.Second)
	none(t, b, "crm", 5*time.Second) // 2.5 ack waits
	if err := a.Done(d); err != nil {
		t.Fatal(err)
	}
	none(t, b, "crm", 3*time.Second)
}

// Closing a replica gives back what it pulled but had not handed out, at
// once, not after the ack deadline.
func TestCloseGivesBackWhatItHolds(t *testing.T) {
	srv := natstest.RunServer(t)
	a := open(t, srv.URL, func(o *Options) { o.AckWait = time.Minute })
	b := open(t, srv.URL, func(o *Options) { o.AckWait = time.Minute })
	enqueue(t, a, []string{"crm"}, event("bird", "e1"), event("bird", "e2"))
	a.Done(next(t, a, "crm", 5*time.Second)) // a's pump now holds e2
	waitFor(t, 5*time.Second, "e2 pulled by a", func() bool {
		c, _ := a.work.Consumer(context.Background(), "crm")
		return c != nil && c.CachedInfo().NumAckPending == 1
	})
	a.Close()
	if d := next(t, b, "crm", 5*time.Second); d.Event.ID != "e2" {
		t.Fatalf("got %s", d.Event.ID)
	}
	if _, err := a.Next(context.Background(), "crm"); !errors.Is(err, router.ErrQueueClosed) {
		t.Errorf("Next after Close: %v", err)
	}
	if err := a.Enqueue(context.Background(), routed([]string{"crm"}, event("bird", "e3"))); !errors.Is(err, router.ErrQueueClosed) {
		t.Errorf("Enqueue after Close: %v", err)
	}
}

// With the server down, Enqueue fails at once (503, never 200), Ready
// says why, and both recover when it is back, with what was queued
// before still there.
func TestServerDownAndBack(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL)
	enqueue(t, q, []string{"crm"}, event("bird", "before"))
	if err := q.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	srv.Stop()
	start := time.Now()
	err := q.Enqueue(context.Background(), routed([]string{"crm"}, event("bird", "during")))
	if err == nil {
		t.Fatal("Enqueue with the server down answered nil")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Enqueue took %v to fail", took)
	}
	waitFor(t, 5*time.Second, "not ready", func() bool { return q.Ready() != nil })
	t.Logf("while down: Enqueue: %v; Ready: %v", err, q.Ready())
	srv.Start()
	waitFor(t, 10*time.Second, "ready again", func() bool { return q.Ready() == nil })
	enqueue(t, q, []string{"crm"}, event("bird", "after"))
	got := map[string]bool{}
	for range 2 {
		d := next(t, q, "crm", 10*time.Second)
		got[d.Event.ID] = true
		q.Done(d)
	}
	if !got["before"] || !got["after"] {
		t.Fatalf("delivered %v", got)
	}
}

func TestOpenFailsClearly(t *testing.T) {
	_, err := Open(Options{URL: "nats://127.0.0.1:1", ConnectTimeout: 500 * time.Millisecond, Log: quiet})
	if err == nil || !strings.Contains(err.Error(), "cannot connect to NATS at nats://127.0.0.1:1 (queue.nats.url)") {
		t.Fatalf("err = %v", err)
	}
	// Credentials in the URL stay out of the message (it is logged).
	_, err = Open(Options{URL: "nats://ops:hunter2@127.0.0.1:1", ConnectTimeout: 500 * time.Millisecond, Log: quiet})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "nats://<secret>@127.0.0.1:1") {
		t.Fatalf("err = %v", err)
	}
	// A server without JetStream.
	o := natstest.Options("plain", t.TempDir())
	o.JetStream = false
	plain := natstest.Run(t, o)
	_, err = Open(Options{URL: plain.URL, ConnectTimeout: 2 * time.Second, Log: quiet})
	if err == nil || !strings.Contains(err.Error(), "check that JetStream is enabled") {
		t.Fatalf("err = %v", err)
	}
}

// A replica starting on streams that another made with the same settings
// uses them as they are, quietly; one with other settings brings them to
// its own and says so.
func TestOpenOnExistingStreams(t *testing.T) {
	srv := natstest.RunServer(t)
	open(t, srv.URL, func(o *Options) { o.MaxBytes = 1 << 20; o.MaxPendingPerSink = 10 })
	var logs strings.Builder
	var mu sync.Mutex
	logTo := func(o *Options) {
		o.MaxBytes, o.MaxPendingPerSink = 1<<20, 10
		o.Log = slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return logs.Write(b)
		}), nil))
	}
	open(t, srv.URL, logTo)
	mu.Lock()
	if logs.Len() > 0 {
		t.Errorf("a replica with the same settings logged:\n%s", logs.String())
	}
	mu.Unlock()
	q := open(t, srv.URL, logTo, func(o *Options) { o.MaxBytes = 2 << 20 })
	mu.Lock()
	got := logs.String()
	mu.Unlock()
	if strings.Count(got, "changing the settings of an existing JetStream stream") != 1 || !strings.Contains(got, "max_bytes=\"1048576 -> 2097152\"") {
		t.Errorf("a replica with another max_bytes logged:\n%s", got)
	}
	info, err := q.work.Info(context.Background())
	if err != nil || info.Config.MaxBytes != 2<<20 || info.Config.MaxMsgsPerSubject != 10 {
		t.Fatalf("work stream after the update: %+v, %v", info, err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// A sink's concurrency changing (a reload) replaces its pump; a worker
// waiting in Next meanwhile is served by the new one, and the consumer
// takes the new limit.
func TestConfigureSinkReplacesPump(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL)
	q.ConfigureSink("crm", 1)
	got := make(chan *router.Delivery, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, err := q.Next(ctx, "crm")
		if err != nil {
			t.Error(err)
		}
		got <- d
	}()
	waitFor(t, 5*time.Second, "the first pump", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.pumps["crm"] != nil
	})
	q.ConfigureSink("crm", 8)
	enqueue(t, q, []string{"crm"}, event("bird", "e1"))
	d := <-got
	if d == nil || d.Event.ID != "e1" {
		t.Fatalf("got %v", d)
	}
	q.Done(d)
	c, err := q.work.Consumer(context.Background(), "crm")
	if err != nil || c.CachedInfo().Config.MaxAckPending != 8+retryHeadroom {
		t.Fatalf("consumer max_ack_pending: %v %v", c.CachedInfo().Config.MaxAckPending, err)
	}
}

func TestGauges(t *testing.T) {
	srv := natstest.RunServer(t)
	q := open(t, srv.URL, func(o *Options) { o.MaxBytes = 1 << 20 })
	q.ConfigureSink("idle", 1)
	enqueue(t, q, []string{"crm"}, event("bird", "e1"), event("bird", "e2"))
	time.Sleep(50 * time.Millisecond)
	if st := q.Stats(); st["crm"] != [2]int{2, 0} || st["idle"] != [2]int{} {
		t.Errorf("Stats = %v", st)
	}
	age := q.OldestPending(time.Now().Add(time.Minute))
	if age["crm"] < time.Minute || age["crm"] > time.Minute+10*time.Second || len(age) != 1 {
		t.Errorf("OldestPending a minute on = %v", age)
	}
	if used, limit := q.Bytes(); used <= 0 || limit != 1<<20 {
		t.Errorf("Bytes = %d, %d", used, limit)
	}
}

// A delivery pulled while every sender is busy keeps its ack deadline
// moving while it waits for one: another replica does not get it too.
func TestWaitingForASenderKeepsTheDelivery(t *testing.T) {
	srv := natstest.RunServer(t)
	a, b := open(t, srv.URL), open(t, srv.URL) // AckWait 2s
	a.ConfigureSink("crm", 1)
	enqueue(t, a, []string{"crm"}, event("bird", "e1"), event("bird", "e2"))
	d1 := next(t, a, "crm", 5*time.Second) // a's only sender is busy; a's pump holds e2
	waitFor(t, 5*time.Second, "e2 pulled by a", func() bool {
		c, _ := a.work.Consumer(context.Background(), "crm")
		return c != nil && c.CachedInfo().NumAckPending == 2
	})
	none(t, b, "crm", 5*time.Second) // 2.5 ack waits
	a.Done(d1)
	if d2 := next(t, a, "crm", 5*time.Second); d2.Event.ID != "e2" || d2.Attempts != 0 {
		t.Fatalf("got %s attempt %d, want e2 delivered once", d2.Event.ID, d2.Attempts)
	}
}
