package logqueue

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"switchboard/router"
)

// tick runs the writer's housekeeping now, with any compaction it starts
// carried to the end, as the writer does between writes.
func tick(t testing.TB, q *Queue) {
	t.Helper()
	err := q.barrierOp(func() error {
		q.housekeeping(false)
		for q.w.compSeg != 0 {
			if err := q.compactStep(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("housekeeping: %v", err)
	}
}

// segmentBytes is the size of the segment files on disk.
func segmentBytes(t testing.TB, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "seg-") {
			info, _ := e.Info()
			n += info.Size()
		}
	}
	return n
}

func liveBytes(q *Queue) int64 {
	p, d := q.StoredBytes()
	return p + d
}

// drainAll delivers everything queued for sink.
func drainAll(t testing.TB, q *Queue, sink string) int {
	t.Helper()
	n := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		d, err := q.Next(ctx, sink)
		cancel()
		if err != nil {
			return n
		}
		q.Done(d)
		n++
	}
}

// A drained backlog gives its space back while the daemon runs: the
// segments it filled are deleted (issue 12: bbolt kept 268 MB after a
// 200,000-event backlog drained).
func TestDrainedBacklogGivesSpaceBack(t *testing.T) {
	const seg = 64 << 10
	q := open(t, Options{SegmentSize: seg, DedupWindow: time.Hour})
	dir := q.opts.Dir
	for i := range 2000 {
		enqueue(t, q, []string{"crm"}, event("app", fmt.Sprint("b", i)))
	}
	full := segmentBytes(t, dir)
	if full < 10*seg {
		t.Fatalf("the backlog takes %d bytes; the test needs more segments", full)
	}
	if n := drainAll(t, q, "crm"); n != 2000 {
		t.Fatalf("drained %d, want 2000", n)
	}
	eventually(t, "every ack to be written", func() bool { return liveBytes(q) == 0 })
	q.mu.Lock()
	if q.st.hotBytes != 0 || len(q.st.hot) != 0 {
		t.Errorf("after draining, %d events (%d bytes) are still kept in memory", len(q.st.hot), q.st.hotBytes)
	}
	q.mu.Unlock()
	tick(t, q)
	tick(t, q) // the dedup keys are saved, then the segments go
	if got := segmentBytes(t, dir); got > 2*headerSize+seg {
		t.Errorf("after draining a %d-byte backlog the segments take %d bytes", full, got)
	}
	// The ids are still remembered though their segments are gone.
	q = reopen(t, q)
	if b := enqueue(t, q, []string{"crm"}, event("app", "b7")); !b[0].Duplicate {
		t.Error("an id accepted before the segments were deleted is forgotten")
	}
}

// When few records in old segments are live (a sink that died long ago,
// old dead letters), compaction copies them forward and the old segments
// go: the disk used stays within twice what is live, plus two segments.
func TestCompactionKeepsDiskWithinTwiceLive(t *testing.T) {
	const seg = 32 << 10
	q := open(t, Options{SegmentSize: seg})
	dir := q.opts.Dir
	// Every 50th event also goes to a sink that is down; one of them
	// retried, one dead-lettered.
	var slow []string
	for i := range 1500 {
		sinks := []string{"fast"}
		if i%50 == 0 {
			sinks = append(sinks, "down")
			slow = append(slow, fmt.Sprint("c", i))
		}
		enqueue(t, q, sinks, event("app", fmt.Sprint("c", i)))
	}
	drainAll(t, q, "fast")
	d := next(t, q, "down")
	d.Attempts, d.FirstTry, d.LastTry, d.NotBefore, d.LastError = 1, epoch, epoch, time.Now().Add(time.Hour), "503"
	q.Retry(d)
	dead := next(t, q, "down")
	dead.Attempts, dead.LastError = 2, "permanent failure: 400"
	q.Dead(dead)
	eventually(t, "the acks", func() bool {
		l, _ := listDead(q)
		return q.Stats()["fast"][0] == 0 && len(l) == 1
	})
	// The retry is written when a Next no longer finds it in flight.
	eventually(t, "the retry", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.st.sinks[q.st.sinkIdx["down"]].inFlight == 0
	})
	before := segmentBytes(t, dir)
	for range 3 {
		tick(t, q)
	}
	live := liveBytes(q)
	after := segmentBytes(t, dir)
	if after > 2*live+3*seg || after >= before {
		t.Errorf("segments take %d bytes (before compaction %d) for %d live bytes; want at most 2x live plus slack", after, before, live)
	}
	// Everything live survives the copies, and a restart, with its state.
	q = reopen(t, q)
	if st := q.Stats()["down"]; st != [2]int{len(slow) - 1, 1} {
		t.Fatalf("down: %v, want %d queued and 1 dead", st, len(slow)-1)
	}
	list, _ := listDead(q)
	if len(list) != 1 || list[0].EventID != dead.Event.ID || list[0].Attempts != 2 || list[0].LastError != "permanent failure: 400" {
		t.Errorf("dead letter after compaction: %+v", list)
	}
	got := map[string]*router.Delivery{}
	for range len(slow) - 2 {
		d := next(t, q, "down")
		got[d.Event.ID] = d
		sameEvent(t, d.Event, event("app", d.Event.ID))
		q.Done(d)
	}
	for _, id := range slow {
		if got[id] == nil && id != d.Event.ID && id != dead.Event.ID {
			t.Errorf("%s lost in compaction", id)
		}
	}
	// The retry is still due in an hour, with its attempts.
	empty(t, q, "down", 50*time.Millisecond)
	st := q.Stats()["down"]
	if st[0] != 1 {
		t.Errorf("the delayed retry: %v", st)
	}
}

// `switchboard queue compact`: everything live rewritten, the rest given
// back.
func TestOfflineCompact(t *testing.T) {
	q := open(t, Options{SegmentSize: 16 << 10})
	for i := range 300 {
		enqueue(t, q, []string{"a"}, event("app", fmt.Sprint("o", i)))
	}
	for range 290 {
		q.Done(next(t, q, "a"))
	}
	eventually(t, "the acks", func() bool { return q.Stats()["a"][0] == 10 })
	before, after, err := q.Compact()
	if err != nil {
		t.Fatal(err)
	}
	if after >= before/3 {
		t.Errorf("compact: %d bytes before, %d after", before, after)
	}
	q = reopen(t, q)
	for i := 290; i < 300; i++ {
		d := next(t, q, "a")
		if d.Event.ID != fmt.Sprint("o", i) {
			t.Errorf("after compact got %s, want o%d (order kept)", d.Event.ID, i)
		}
		sameEvent(t, d.Event, event("app", d.Event.ID))
		q.Done(d)
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Dead letters have their own bounds (issue 10.6): past
// dead_letter_max_age or dead_letter_max_bytes the oldest go first, each
// logged at error with its id, sink and event id, and counted.
func TestDeadLetterBoundsDropTheOldest(t *testing.T) {
	clock := &fakeClock{now: epoch}
	var logs syncLog
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"sink"})
	size := storedSize(t, []string{"crm"}, event("app", "x"))
	q := open(t, Options{Now: clock.Now, DeadLetterMaxAge: time.Hour, DeadLetterMaxBytes: 3*size + size/2,
		Log: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: &Metrics{DeadLettersDropped: dropped}})
	die := func(id string) {
		enqueue(t, q, []string{"crm"}, event("app", id))
		d := next(t, q, "crm")
		d.LastError = "permanent failure"
		q.Dead(d)
		eventually(t, id+"'s death", func() bool { _, dead := q.StoredBytes(); return dead > 0 && q.Stats()["crm"][0] == 0 })
		clock.Add(10 * time.Minute)
	}
	for _, id := range []string{"d1", "d2", "d3"} {
		die(id)
	}
	tick(t, q)
	if l, _ := listDead(q); len(l) != 3 {
		t.Fatalf("%d dead letters within both bounds, want 3", len(l))
	}
	// Past max_bytes: the oldest goes.
	die("d4")
	tick(t, q)
	l, _ := listDead(q)
	if len(l) != 3 || l[0].EventID != "d2" {
		t.Fatalf("after a 4th dead letter past max_bytes: %+v", l)
	}
	if !strings.Contains(logs.String(), "dead letter dropped: dead letters exceed queue.dead_letter_max_bytes") ||
		!strings.Contains(logs.String(), "event_id=d1") || !strings.Contains(logs.String(), "sink=crm") {
		t.Errorf("the drop is not logged with its event:\n%s", logs.String())
	}
	// Past max_age: d2 died at +10m, so at +71m it is older than an hour.
	clock.Add(31 * time.Minute)
	tick(t, q)
	if l, _ := listDead(q); len(l) != 2 || l[0].EventID != "d3" {
		t.Fatalf("past max_age: %+v", l)
	}
	if !strings.Contains(logs.String(), "older than queue.dead_letter_max_age (1h0m0s)") || !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("the age drop is not logged at error:\n%s", logs.String())
	}
	if n := testutil.ToFloat64(dropped.WithLabelValues("crm")); n != 2 {
		t.Errorf("dropped counted %v, want 2", n)
	}
	// Pending deliveries are never dropped, however old.
	enqueue(t, q, []string{"crm"}, event("app", "pending"))
	clock.Add(100 * time.Hour)
	tick(t, q)
	if st := q.Stats()["crm"]; st != [2]int{1, 0} {
		t.Errorf("after 100 hours: %v, want the pending delivery kept and the dead letters dropped", st)
	}
	q = reopen(t, q)
	if st := q.Stats()["crm"]; st != [2]int{1, 0} {
		t.Errorf("after a restart: %v", st)
	}
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Each source's ids are remembered for its own horizon (issue 10.9): a
// signed request replayed within its validity window is not routed again,
// events routed nowhere included, across restarts and after the segments
// that held them are deleted; and forgotten after it.
func TestDedupHorizonPerSource(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	q := open(t, Options{Now: clock.Now, DedupWindow: time.Hour, SegmentSize: 16 << 10})
	accept := func(id string, remember time.Duration, sinks ...string) bool {
		t.Helper()
		b := []router.Routed{{Event: event("bird", id), Sinks: sinks, Remember: remember}}
		if err := q.Enqueue(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		return b[0].Duplicate
	}
	accept("signed", 24*time.Hour, "crm")
	accept("signed-nowhere", 24*time.Hour)
	accept("plain", 0, "crm")
	drainAll(t, q, "crm")
	eventually(t, "the acks", q.Idle)
	// Enough traffic that the first segments are deleted.
	for i := range 300 {
		enqueue(t, q, []string{"crm"}, event("other", fmt.Sprint("f", i)))
	}
	drainAll(t, q, "crm")
	eventually(t, "the acks", func() bool { return liveBytes(q) == 0 })
	tick(t, q)
	tick(t, q)
	q = reopen(t, q)
	clock.Add(2 * time.Hour)
	tick(t, q)
	if !accept("signed", 24*time.Hour, "crm") || !accept("signed-nowhere", 24*time.Hour, "crm") {
		t.Error("a signed request replayed inside its window was routed again")
	}
	if accept("plain", 0, "crm") {
		t.Error("an id past dedup_window is still remembered")
	}
	clock.Add(29 * time.Hour) // past 1.25 horizons
	tick(t, q)
	if accept("signed", 24*time.Hour, "crm") {
		t.Error("an id past its horizon is still remembered")
	}
}
