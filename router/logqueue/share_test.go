package logqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/router"
)

// Each sink's share of queue.max_bytes: one sink down must never fill
// max_bytes for the others (issue 10.6).

// sinkBytes returns each sink's pending bytes once every submitted
// operation is applied.
func sinkBytes(q *Queue) map[string]int64 {
	q.barrierOp(func() error { return nil })
	q.mu.Lock()
	defer q.mu.Unlock()
	out := map[string]int64{}
	for _, s := range q.st.sinks {
		out[s.name] = s.bytes
	}
	return out
}

func shareOf(q *Queue) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.share()
}

// A sink that is down fills its share and no more: its new deliveries
// become dead letters saying why, every event is accepted, the healthy
// sink gets every one, and after a restart and a replay the down sink
// gets every one too.
func TestSinkPastItsShareDeadLettersItsNewDeliveries(t *testing.T) {
	size := storedSize(t, []string{"down", "up"}, event("app", "s00"))
	// Room for five and a half events (their sizes differ by a byte or
	// two: a record holds the nanoseconds of when it was queued).
	q := open(t, Options{MaxBytes: 11 * size})
	q.SetSinks(2)
	share := shareOf(q)
	if share != 11*size/2 {
		t.Fatalf("share = %d, want max_bytes/2 = %d", share, 11*size/2)
	}
	const n = 20
	for i := range n {
		b := enqueue(t, q, []string{"down", "up"}, event("app", fmt.Sprintf("s%02d", i)))
		if b[0].Duplicate {
			t.Fatalf("event %d marked duplicate", i)
		}
		d := next(t, q, "up")
		if d.Event.ID != fmt.Sprintf("s%02d", i) {
			t.Fatalf("up got %s, want s%02d", d.Event.ID, i)
		}
		q.Done(d)
		if got := sinkBytes(q)["down"]; got > share {
			t.Fatalf("after event %d down holds %d bytes, more than its share %d", i, got, share)
		}
	}
	st := q.Stats()
	if st["down"] != [2]int{5, n - 5} || st["up"] != [2]int{0, 0} {
		t.Fatalf("stats = %v, want down 5 queued + %d dead, up all delivered", st, n-5)
	}
	if got := sinkBytes(q); got["down"] != pendingBytes(q) || got["up"] != 0 {
		t.Errorf("sink bytes = %v, queue %d: want down holding all of it", got, pendingBytes(q))
	}
	list, err := listDead(q)
	if err != nil || len(list) != n-5 {
		t.Fatalf("dead letters = %d, %v", len(list), err)
	}
	for i, dl := range list {
		want := fmt.Sprintf("backlog full: this sink's share of queue.max_bytes (%d bytes: %d over 2 sinks) already holds %d bytes of queued events",
			share, 11*size, sinkBytes(q)["down"])
		if dl.Sink != "down" || dl.EventID != fmt.Sprintf("s%02d", i+5) || dl.LastError != want {
			t.Errorf("dead letter %d = %s %s %q;\nwant down s%02d %q", i, dl.Sink, dl.EventID, dl.LastError, i+5, want)
		}
	}

	before := sinkBytes(q)
	q = reopen(t, q)
	q.SetSinks(2)
	if got := sinkBytes(q); got["down"] != before["down"] || got["up"] != 0 {
		t.Errorf("after restart sink bytes = %v, want %v", got, before)
	}
	enqueue(t, q, []string{"down", "up"}, event("app", "s20"))
	if st := q.Stats()["down"]; st != [2]int{5, n - 4} {
		t.Errorf("after restart down = %v, want its share still full", st)
	}
	q.Done(next(t, q, "up"))

	// The sink is back: it drains its share, and the replay delivers the
	// rest.
	got := map[string]int{}
	for range 5 {
		d := next(t, q, "down")
		got[d.Event.ID]++
		q.Done(d)
	}
	if n, err := q.Replay(nil); err != nil || n != 16 {
		t.Fatalf("Replay = %d, %v; want 16", n, err)
	}
	for range 16 {
		d := next(t, q, "down")
		got[d.Event.ID]++
		q.Done(d)
	}
	for i := range n + 1 {
		if id := fmt.Sprintf("s%02d", i); got[id] != 1 {
			t.Errorf("down got %s %d times", id, got[id])
		}
	}
	if err := q.checkInvariants(); err != nil {
		t.Fatal(err)
	}
	if b := sinkBytes(q); b["down"] != 0 || b["up"] != 0 || pendingBytes(q) != 0 {
		t.Errorf("all delivered, yet sink bytes %v, queue %d", b, pendingBytes(q))
	}
}

// An event whose every delivery went to the dead letters is stored: it is
// answered as accepted, remembered for dedup, and counted as dead bytes.
func TestEventDeadForEverySinkIsStillAccepted(t *testing.T) {
	size := storedSize(t, []string{"a", "b"}, event("app", "f0"))
	q := open(t, Options{MaxBytes: 3 * size, DedupWindow: time.Hour})
	q.SetSinks(2)
	enqueue(t, q, []string{"a", "b"}, event("app", "f0"))
	pending := pendingBytes(q)
	b := enqueue(t, q, []string{"a", "b"}, event("app", "f1"))
	if b[0].Duplicate {
		t.Fatal("marked duplicate")
	}
	if st := q.Stats(); st["a"] != [2]int{1, 1} || st["b"] != [2]int{1, 1} {
		t.Errorf("stats = %v, want one queued and one dead letter each", st)
	}
	p, dead := q.StoredBytes()
	if p != pending || dead == 0 {
		t.Errorf("bytes = %d pending, %d dead; want %d pending and f1 as dead", p, dead, pending)
	}
	if !q.Seen("app", "f1") {
		t.Error("a stored event is not remembered: the provider's retry would store it again")
	}
	if b := enqueue(t, q, []string{"a", "b"}, event("app", "f1")); !b[0].Duplicate {
		t.Error("the retry of a dead-lettered event is not a duplicate")
	}
	dl, err := q.GetDead(mustDeadID(t, q, "a", "f1"))
	if err != nil || dl.Event == nil {
		t.Fatalf("GetDead = %v, %v", dl, err)
	}
	sameEvent(t, dl.Event, event("app", "f1"))
}

func mustDeadID(t *testing.T, q *Queue, sink, eventID string) string {
	t.Helper()
	list, err := listDead(q)
	if err != nil {
		t.Fatal(err)
	}
	for _, dl := range list {
		if dl.Sink == sink && dl.EventID == eventID {
			return dl.ID
		}
	}
	t.Fatalf("no dead letter of %s for %s in %v", eventID, sink, list)
	return ""
}

// With one sink configured nothing changes: it has all of max_bytes, and
// past it sources answer 503 (the provider retries) rather than the event
// going to the dead letters. The same without SetSinks.
func TestOneSinkHasAllOfMaxBytes(t *testing.T) {
	size := storedSize(t, []string{"only"}, event("app", "o0"))
	for _, sinks := range []int{0, 1} {
		t.Run(fmt.Sprint(sinks, " sinks"), func(t *testing.T) {
			q := open(t, Options{MaxBytes: size + size/2})
			q.SetSinks(sinks)
			enqueue(t, q, []string{"only"}, event("app", "o0"))
			err := q.Enqueue(context.Background(), routed([]string{"only"}, event("app", "o1")))
			if !errors.Is(err, router.ErrQueueFull) {
				t.Fatalf("past max_bytes: %v, want ErrQueueFull", err)
			}
			if st := q.Stats()["only"]; st != [2]int{1, 0} {
				t.Errorf("stats = %v, want one queued, no dead letter", st)
			}
		})
	}
}

// A sink within its share is never refused because another is past its
// own; and max_bytes itself still holds: after a reload that adds sinks,
// a sink may hold more than its new share, and an event that fits its
// sinks' shares but not max_bytes is refused (503), never stored past it.
func TestMaxBytesHoldsWhenSharesShrink(t *testing.T) {
	size := storedSize(t, []string{"a"}, event("app", "g0"))
	q := open(t, Options{MaxBytes: 4*size + size/2})
	q.SetSinks(1)
	for i := range 3 {
		enqueue(t, q, []string{"a"}, event("app", fmt.Sprint("g", i)))
	}
	q.SetSinks(2) // b added: a holds three events, over its new share of two
	enqueue(t, q, []string{"b"}, event("app", "g3"))
	err := q.Enqueue(context.Background(), routed([]string{"b"}, event("app", "g4")))
	if !errors.Is(err, router.ErrQueueFull) {
		t.Fatalf("an event past max_bytes = %v, want ErrQueueFull", err)
	}
	// a's new deliveries go to the dead letters: a is past its share.
	enqueue(t, q, []string{"a"}, event("app", "g5"))
	if st := q.Stats(); st["a"] != [2]int{3, 1} || st["b"] != [2]int{1, 0} {
		t.Errorf("stats = %v", st)
	}
	if p := pendingBytes(q); p > q.opts.MaxBytes {
		t.Errorf("%d bytes pending, past max_bytes %d", p, q.opts.MaxBytes)
	}
}

// Concurrent Enqueues reserve their room: the share is never overrun by
// requests deciding at the same time. Neither sink delivers here, so both
// fill their shares, and every event is still accepted.
func TestShareHoldsUnderConcurrentEnqueues(t *testing.T) {
	size := storedSize(t, []string{"down", "up"}, event("app", "c0000"))
	q := open(t, Options{MaxBytes: 20 * size})
	q.SetSinks(2)
	const writers, each = 16, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("c%02d%02d", w, i)
				if err := q.Enqueue(context.Background(), routed([]string{"down", "up"}, event("app", id))); err != nil {
					t.Errorf("Enqueue %s: %v", id, err)
				}
			}
		})
	}
	wg.Wait()
	st, b, share := q.Stats(), sinkBytes(q), shareOf(q)
	for _, s := range []string{"down", "up"} {
		if st[s][0]+st[s][1] != writers*each || st[s][0] < 9 {
			t.Errorf("%s: %d queued + %d dead, want %d in all and its share (10 events) queued", s, st[s][0], st[s][1], writers*each)
		}
		if b[s] > share || b[s]+size+size/10 <= share {
			t.Errorf("%s holds %d bytes, want its share %d filled and not overrun", s, b[s], share)
		}
	}
	if err := q.checkInvariants(); err != nil {
		t.Fatal(err)
	}
}

// Every transition keeps each sink's pending bytes exact (checked against
// the tables): enqueue, in flight, done, retry, dead, replay, purge, sink
// removed, drop past the dead-letter bounds, compaction copies, restart
// and salvage.
func TestSinkBytesExactThroughEveryTransition(t *testing.T) {
	q := open(t, Options{SegmentSize: 1024, MaxBytes: 1 << 20})
	q.SetSinks(3)
	sinks := []string{"a", "b", "c"}
	check := func(step string) map[string]int64 {
		t.Helper()
		if err := q.checkInvariants(); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return sinkBytes(q)
	}
	var ids []*router.Event
	for i := range 12 {
		ids = append(ids, event("app", fmt.Sprint("t", i)))
	}
	enqueue(t, q, sinks, ids...)
	full := check("enqueue")
	if full["a"] != pendingBytes(q) || full["b"] != full["a"] || full["c"] != full["a"] {
		t.Fatalf("every sink waits for every event: %v, queue %d", full, pendingBytes(q))
	}
	a1 := next(t, q, "a")
	check("in flight")
	q.Done(a1)
	if got := check("done")["a"]; got >= full["a"] {
		t.Errorf("done: a holds %d, want less than %d", got, full["a"])
	}
	b1 := next(t, q, "b")
	b1.Attempts, b1.LastError, b1.NotBefore = 1, "503", time.Now().Add(time.Hour)
	q.Retry(b1)
	if got := check("retry")["b"]; got != full["b"] {
		t.Errorf("a retried delivery is still pending: b holds %d, want %d", got, full["b"])
	}
	c1 := next(t, q, "c")
	c1.Attempts, c1.LastError = 1, "400"
	q.Dead(c1)
	check("dead")
	if n, err := q.Replay(nil); n != 1 || err != nil {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	if got := check("replay")["c"]; got != full["c"] {
		t.Errorf("replayed: c holds %d, want %d", got, full["c"])
	}
	c1 = next(t, q, "c")
	c1.LastError = "400"
	q.Dead(c1)
	check("dead again")
	eventually(t, "the dead letter", func() bool { l, _ := listDead(q); return len(l) == 1 })
	if n, err := q.Purge(nil); n != 1 || err != nil {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	check("purge")
	if n, err := q.DeadLetterSinks(func(s string) bool { return s != "c" }, "sink removed"); n != 11 || err != nil {
		t.Fatalf("DeadLetterSinks = %d, %v", n, err)
	}
	if got := check("sink removed")["c"]; got != 0 {
		t.Errorf("removed sink c holds %d bytes", got)
	}
	// Past the dead-letter bounds: every dead letter goes.
	q.barrierOp(func() error { q.opts.DeadLetterMaxAge = time.Nanosecond; return nil })
	tick(t, q)
	q.barrierOp(func() error { q.opts.DeadLetterMaxAge = 0; return nil })
	if st := q.Stats()["c"]; st != [2]int{} {
		t.Errorf("after the drop c = %v", st)
	}
	check("drop")
	// The oldest segment is copied forward, each copy a different length
	// than its original, and deleted.
	enqueue(t, q, []string{"a"}, event("app", "u0"))
	first := q.seg.first
	err := q.barrierOp(func() error {
		q.housekeeping(false)
		q.w.compSeg, q.w.compOff = q.seg.first, 0
		for q.w.compSeg != 0 {
			if err := q.compactStep(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("compaction: %v", err)
	}
	if q.seg.first == first {
		t.Fatal("the oldest segment was not compacted away")
	}
	check("compaction")
	before := check("before restart")
	q = reopen(t, q)
	q.SetSinks(3)
	got := check("restart")
	for _, s := range sinks {
		if got[s] != before[s] {
			t.Errorf("after restart sink %s holds %d bytes, want %d", s, got[s], before[s])
		}
	}
	st := q.Stats()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() + "/salvaged"
	if _, err := Salvage(q.opts, dir); err != nil {
		t.Fatalf("Salvage: %v", err)
	}
	opts := q.opts
	opts.Dir = dir
	q = open(t, opts)
	q.SetSinks(3)
	after := check("salvage")
	if got := q.Stats(); fmt.Sprint(got) != fmt.Sprint(st) {
		t.Errorf("salvaged stats = %v, want %v", got, st)
	}
	// The copies' heads differ from the originals', so only roughly equal.
	for _, s := range sinks {
		if d := after[s] - before[s]; d < -64 || d > 64 {
			t.Errorf("salvaged %s holds %d bytes, before %d", s, after[s], before[s])
		}
	}
}

// A sink past its share is logged at warn at once, then at most every
// fullLogEvery with the count since the last line.
func TestSinkPastItsShareIsLoggedRateLimited(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	var buf logBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	size := storedSize(t, []string{"down", "up"}, event("app", "l0"))
	// Room for two events and a half: l0 and l1 are queued, l2 on go to
	// the dead letters.
	q := open(t, Options{MaxBytes: 5 * size, Now: now, Log: log})
	q.SetSinks(2)
	deliverUp := func() {
		q.Done(next(t, q, "up"))
		sinkBytes(q) // the Done written: up has room again
	}
	enqueue(t, q, []string{"down", "up"}, event("app", "l0"))
	deliverUp()
	for i := range 4 {
		enqueue(t, q, []string{"down", "up"}, event("app", fmt.Sprint("l", i+1)))
		deliverUp()
	}
	if st := q.Stats()["down"]; st != [2]int{2, 3} {
		t.Fatalf("down = %v, want 2 queued, 3 dead", st)
	}
	lines := buf.lines()
	if len(lines) != 1 {
		t.Fatalf("log = %v, want one line at once", lines)
	}
	want := map[string]any{"level": "WARN", "sink": "down", "count": 1.0, "limit": "share of queue.max_bytes",
		"share_bytes": float64(5 * size / 2), "max_bytes": float64(5 * size), "sinks": 2.0}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("log line %s = %v, want %v (%v)", k, lines[0][k], v, lines[0])
		}
	}
	clock.Add(int64(fullLogEvery))
	tick(t, q)
	lines = buf.lines()
	if len(lines) != 2 || lines[1]["count"] != 2.0 {
		t.Fatalf("log = %v, want a second line counting the 2 since", lines)
	}
	tick(t, q)
	if n := len(buf.lines()); n != 2 {
		t.Errorf("%d lines with no new dead letter, want 2", n)
	}
}

// logBuffer collects JSON log lines, safe for the writer goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) lines() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
