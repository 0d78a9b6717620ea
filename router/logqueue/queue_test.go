package logqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"switchboard/router"
	"switchboard/router/queuetest"
)

// These tests run against real files in t.TempDir(). They are in the
// package so that they can check the accounting behind queue.max_bytes.

func open(t testing.TB, opts Options) *Queue {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	q, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// reopen closes q and opens its directory again with the same options.
func reopen(t *testing.T, q *Queue) *Queue {
	t.Helper()
	if err := q.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return open(t, q.opts)
}

// pendingBytes is what counts toward queue.max_bytes.
func pendingBytes(q *Queue) int64 {
	p, _ := q.StoredBytes()
	return p
}

// storedSize is the room one event takes in a queue when routed to sinks.
func storedSize(t testing.TB, sinks []string, e *router.Event) int64 {
	t.Helper()
	q := open(t, Options{})
	enqueue(t, q, sinks, e)
	return pendingBytes(q)
}

// listDead returns every dead letter, oldest first.
func listDead(q *Queue) ([]router.DeadLetter, error) {
	var out []router.DeadLetter
	cursor := ""
	for {
		page, err := q.ListDead(router.DeadQuery{Limit: 7, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	slices.Reverse(out)
	return out, nil
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

// next takes the next due delivery of sink, failing after a bound.
func next(t testing.TB, q *Queue, sink string) *router.Delivery {
	t.Helper()
	return queuetest.Next(t, q, sink, 5*time.Second)
}

// empty asserts that sink has nothing due for a short while.
func empty(t *testing.T, q *Queue, sink string, wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if d, err := q.Next(ctx, sink); err == nil {
		t.Fatalf("sink %s: unexpected delivery %s of event %s", sink, d.ID, d.Event.ID)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sink %s: Next: %v, want a deadline", sink, err)
	}
}

// eventually polls cond: Done, Retry and Dead are committed after they
// return, in the writer's next commit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sameEvent(t *testing.T, got, want *router.Event) {
	t.Helper()
	if got.ID != want.ID || got.Source != want.Source || got.Event != want.Event || got.Status != want.Status {
		t.Errorf("event = %s/%s/%s/%s, want %s/%s/%s/%s", got.ID, got.Source, got.Event, got.Status,
			want.ID, want.Source, want.Event, want.Status)
	}
	if !got.Time.Equal(want.Time) || !got.ReceivedAt.Equal(want.ReceivedAt) {
		t.Errorf("times = %v %v, want %v %v", got.Time, got.ReceivedAt, want.Time, want.ReceivedAt)
	}
	if !reflect.DeepEqual(got.Fields(), want.Fields()) {
		t.Errorf("payload = %#v, want %#v", got.Fields(), want.Fields())
	}
	if !bytes.Equal(got.RawPayload, want.RawPayload) {
		t.Errorf("raw payload = %s, want %s", got.RawPayload, want.RawPayload)
	}
	if !reflect.DeepEqual(got.Headers, want.Headers) {
		t.Errorf("headers = %v, want %v", got.Headers, want.Headers)
	}
	if !bytes.Equal(got.Body, want.Body) || (got.Body == nil) != (want.Body == nil) {
		t.Errorf("body = %q, want %q", got.Body, want.Body)
	}
	gj, _ := got.MarshalJSON()
	wj, _ := want.MarshalJSON()
	if !bytes.Equal(gj, wj) {
		t.Errorf("normalized event =\n%s\nwant\n%s", gj, wj)
	}
}

func TestRoundTripKeepsTheEventIntact(t *testing.T) {
	q := open(t, Options{})
	same := event("app", "same-body")
	other := event("app", "other-body")
	other.Body = []byte("id=other-body&status=failed")
	bare := event("app", "no-body-no-headers")
	bare.Body, bare.Headers = nil, nil
	enqueue(t, q, []string{"crm"}, same, other, bare)

	for _, want := range []*router.Event{same, other, bare} {
		d := next(t, q, "crm")
		if d.Sink != "crm" || d.Attempts != 0 || d.LastError != "" || !d.FirstTry.IsZero() {
			t.Errorf("fresh delivery = %+v", d)
		}
		sameEvent(t, d.Event, want)
		if err := q.Done(d); err != nil {
			t.Fatal(err)
		}
	}
	empty(t, q, "crm", 50*time.Millisecond)
	eventually(t, "acknowledged events to be deleted", func() bool { return pendingBytes(q) == 0 })
	if st := q.Stats()["crm"]; st != [2]int{0, 0} {
		t.Errorf("stats = %v, want nothing queued", st)
	}
}

func TestOneEventSeveralSinksIsStoredOnce(t *testing.T) {
	q := open(t, Options{})
	e := event("app", "fan-out")
	enqueue(t, q, []string{"a", "b"}, e)
	one := storedSize(t, []string{"a"}, event("app", "fan-out"))
	stored := pendingBytes(q)
	if stored < one || stored > one+16 {
		t.Errorf("stored %d bytes for one event to two sinks, want about %d (one record)", stored, one)
	}
	da, db := next(t, q, "a"), next(t, q, "b")
	sameEvent(t, da.Event, e)
	sameEvent(t, db.Event, e)
	q.Done(da)
	// The record stays while b still needs it, even across a restart.
	eventually(t, "a's ack", func() bool { return q.Stats()["a"][0] == 0 })
	q = reopen(t, q)
	if pendingBytes(q) != stored {
		t.Errorf("after a's ack and a restart: %d bytes stored, want %d", pendingBytes(q), stored)
	}
	db = next(t, q, "b")
	sameEvent(t, db.Event, e)
	q.Done(db)
	empty(t, q, "a", 20*time.Millisecond)
	eventually(t, "b's ack", func() bool { return q.Stats()["b"][0] == 0 && pendingBytes(q) == 0 })
	q = reopen(t, q)
	if pendingBytes(q) != 0 {
		t.Errorf("after both acks: %d bytes stored, want 0", pendingBytes(q))
	}
}

func TestReopenResumesReadyAndDelayedDeliveries(t *testing.T) {
	q := open(t, Options{})
	first, second := event("app", "first"), event("app", "second")
	enqueue(t, q, []string{"crm"}, first, second)

	d := next(t, q, "crm")
	if d.Event.ID != "first" {
		t.Fatalf("first delivery is %s, want first (FIFO)", d.Event.ID)
	}
	now := time.Now()
	d.Attempts, d.FirstTry, d.LastTry = 1, now, now
	d.NotBefore = now.Add(300 * time.Millisecond)
	d.LastError = "POST http://crm/: 503 Service Unavailable"
	if err := q.Retry(d); err != nil {
		t.Fatal(err)
	}

	q = reopen(t, q)
	if st := q.Stats()["crm"]; st[0] != 2 {
		t.Errorf("after reopen: %d deliveries queued, want 2", st[0])
	}
	r := next(t, q, "crm")
	if r.Event.ID != "second" {
		t.Fatalf("after reopen the ready delivery comes first; got %s", r.Event.ID)
	}
	sameEvent(t, r.Event, second)
	q.Done(r)

	r = next(t, q, "crm")
	if got := time.Now(); got.Before(d.NotBefore) {
		t.Errorf("delayed delivery handed out at %v, before its NotBefore %v", got, d.NotBefore)
	}
	if r.Event.ID != "first" || r.Attempts != 1 || r.LastError != d.LastError {
		t.Errorf("resumed delivery: event %s, attempts %d, last error %q; want first, 1, %q",
			r.Event.ID, r.Attempts, r.LastError, d.LastError)
	}
	if !r.NotBefore.Equal(d.NotBefore) || !r.FirstTry.Equal(d.FirstTry) || !r.LastTry.Equal(d.LastTry) {
		t.Errorf("times after reopen: first %v last %v notBefore %v; want %v %v %v",
			r.FirstTry, r.LastTry, r.NotBefore, d.FirstTry, d.LastTry, d.NotBefore)
	}
	sameEvent(t, r.Event, first)
	q.Done(r)
}

func TestRetryPersistsAttemptsAndLastError(t *testing.T) {
	q := open(t, Options{})
	enqueue(t, q, []string{"crm"}, event("app", "r1"))
	for attempt := 1; attempt <= 3; attempt++ {
		d := next(t, q, "crm")
		if d.Attempts != attempt-1 {
			t.Fatalf("attempt %d: delivery says %d attempts made", attempt, d.Attempts)
		}
		if d.FirstTry.IsZero() {
			d.FirstTry = time.Now()
		}
		d.Attempts, d.LastTry, d.NotBefore = attempt, time.Now(), time.Now()
		d.LastError = "failure " + strconv.Itoa(attempt)
		if err := q.Retry(d); err != nil {
			t.Fatal(err)
		}
		q = reopen(t, q)
	}
	d := next(t, q, "crm")
	if d.Attempts != 3 || d.LastError != "failure 3" || d.FirstTry.IsZero() {
		t.Errorf("after 3 retries and restarts: attempts %d, last error %q, first try %v", d.Attempts, d.LastError, d.FirstTry)
	}
}

// TestRetryDueAtOnceCarriesItsState: a retry due sooner than the next
// commit (a short backoff under write load, a slow fsync) must be handed
// out with the attempts, first try and last error it was put back with;
// otherwise max_attempts and max_age never fire for it.
func TestRetryDueAtOnceCarriesItsState(t *testing.T) {
	q := open(t, Options{})
	enqueue(t, q, []string{"crm"}, event("app", "r"))
	d := next(t, q, "crm")
	first := time.Now()
	d.Attempts, d.FirstTry, d.LastTry, d.NotBefore, d.LastError = 1, first, first, first, "503"
	if err := q.Retry(d); err != nil {
		t.Fatal(err)
	}
	r := next(t, q, "crm")
	if r.Attempts != 1 || r.LastError != "503" || !r.FirstTry.Equal(first) {
		t.Errorf("retaken at once: attempts %d, last error %q, first try %v; want 1, 503, %v",
			r.Attempts, r.LastError, r.FirstTry, first)
	}
}

func TestDeadLetterListShowReplay(t *testing.T) {
	q := open(t, Options{})
	e := event("app", "dl1")
	enqueue(t, q, []string{"crm", "archive"}, e)
	d := next(t, q, "crm")
	first := time.Now().Add(-time.Minute)
	d.Attempts, d.FirstTry, d.LastTry = 3, first, time.Now()
	d.LastError = "gave up after 3 attempts: POST http://crm/: 500 Internal Server Error"
	if err := q.Dead(d); err != nil {
		t.Fatal(err)
	}
	var list []router.DeadLetter
	eventually(t, "the dead letter", func() bool {
		var err error
		list, err = listDead(q)
		if err != nil {
			t.Fatal(err)
		}
		return len(list) == 1
	})
	dl := list[0]
	if dl.Sink != "crm" || dl.EventID != "dl1" || dl.Source != "app" || dl.EventName != "voice.outbound" ||
		dl.Attempts != 3 || dl.LastError != d.LastError || dl.DeadAt.IsZero() || !dl.FirstTry.Equal(first) || dl.Event != nil {
		t.Errorf("listed dead letter = %+v", dl)
	}
	if st := q.Stats()["crm"]; st != [2]int{0, 1} {
		t.Errorf("crm stats = %v, want 0 queued, 1 dead", st)
	}

	// It survives a restart, event included.
	q = reopen(t, q)
	got, err := q.GetDead(dl.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Event == nil {
		t.Fatal("GetDead returned no event")
	}
	sameEvent(t, got.Event, e)
	if got.Attempts != 3 || got.LastError != d.LastError || got.Sink != "crm" {
		t.Errorf("GetDead = %+v", got)
	}
	if st := q.Stats()["crm"]; st != [2]int{0, 1} {
		t.Errorf("after reopen crm stats = %v, want 0 queued, 1 dead", st)
	}
	for _, id := range []string{"999", "nope", ""} {
		if _, err := q.GetDead(id); !errors.Is(err, router.ErrNotFound) {
			t.Errorf("GetDead(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := q.Replay([]string{"999"}); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("Replay of an unknown id = %v, want ErrNotFound", err)
	}

	n, err := q.Replay([]string{dl.ID})
	if err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v; want 1", n, err)
	}
	if list, _ := listDead(q); len(list) != 0 {
		t.Errorf("after replay %d dead letters remain", len(list))
	}
	r := next(t, q, "crm")
	if r.Attempts != 0 || r.LastError != "" {
		t.Errorf("replayed delivery: attempts %d, last error %q; want a fresh count", r.Attempts, r.LastError)
	}
	sameEvent(t, r.Event, e)
	q.Done(r)
	// archive's delivery was never touched.
	a := next(t, q, "archive")
	sameEvent(t, a.Event, e)
	q.Done(a)
	q = reopen(t, q)
	if pendingBytes(q) != 0 || q.Stats()["crm"] != [2]int{} {
		t.Errorf("after delivery: %d bytes, crm stats %v; want nothing", pendingBytes(q), q.Stats()["crm"])
	}
}

func TestReplayAllAndPurgeAll(t *testing.T) {
	q := open(t, Options{})
	for i := range 3 {
		enqueue(t, q, []string{"crm"}, event("app", fmt.Sprint("e", i)))
		d := next(t, q, "crm")
		d.Attempts, d.LastError = 1, "permanent failure"
		q.Dead(d)
	}
	eventually(t, "3 dead letters", func() bool { l, _ := listDead(q); return len(l) == 3 })
	if n, err := q.Replay(nil); n != 3 || err != nil {
		t.Fatalf("Replay(all) = %d, %v", n, err)
	}
	for range 3 {
		d := next(t, q, "crm")
		d.LastError = "again"
		q.Dead(d)
	}
	eventually(t, "3 dead letters again", func() bool { l, _ := listDead(q); return len(l) == 3 })
	if n, err := q.Purge(nil); n != 3 || err != nil {
		t.Fatalf("Purge(all) = %d, %v", n, err)
	}
	if pendingBytes(q) != 0 || q.Stats()["crm"] != [2]int{} {
		t.Errorf("after purge: %d bytes, stats %v", pendingBytes(q), q.Stats()["crm"])
	}
}

// Dead letters do not count toward queue.max_bytes (issue 10.6): one sink
// down must not make every source answer 503. Purging a dead letter frees
// its event for good.
func TestDeadLettersDoNotCountTowardMaxBytes(t *testing.T) {
	size := storedSize(t, []string{"crm"}, event("app", "p1"))
	// Room for one event record, not two.
	q := open(t, Options{MaxBytes: size + size/2})
	enqueue(t, q, []string{"crm"}, event("app", "p1"))
	if err := q.Enqueue(context.Background(), routed([]string{"crm"}, event("app", "p2"))); !errors.Is(err, router.ErrQueueFull) {
		t.Fatalf("second event: %v, want ErrQueueFull", err)
	}
	d := next(t, q, "crm")
	d.Attempts, d.LastError = 1, "permanent failure: 400"
	q.Dead(d)
	eventually(t, "the dead letter", func() bool { l, _ := listDead(q); return len(l) == 1 })
	// A record holds the time its delivery was queued, whose nanoseconds
	// take one to five bytes: sizes are compared within that.
	about := func(got, want int64) bool { return got >= want-4 && got <= want+4 }
	if p, dead := q.StoredBytes(); p != 0 || !about(dead, size) {
		t.Errorf("bytes = %d pending, %d dead; want 0 and about %d", p, dead, size)
	}
	// The dead letter keeps its event, but not the room of pending ones.
	enqueue(t, q, []string{"crm"}, event("app", "p2"))
	if n, err := q.Purge([]string{"12345"}); !errors.Is(err, router.ErrNotFound) || n != 0 {
		t.Errorf("Purge of an unknown id = %d, %v; want ErrNotFound", n, err)
	}
	list, _ := listDead(q)
	n, err := q.Purge([]string{list[0].ID})
	if err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1", n, err)
	}
	if _, err := q.GetDead(list[0].ID); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("GetDead after purge = %v, want ErrNotFound", err)
	}
	if st := q.Stats()["crm"]; st != [2]int{1, 0} {
		t.Errorf("stats after purge = %v, want p2 queued, none dead", st)
	}
	p2, dead := q.StoredBytes()
	if !about(p2, size) || dead != 0 {
		t.Errorf("bytes after purge = %d pending, %d dead; want about %d, 0", p2, dead, size)
	}
	q = reopen(t, q)
	if p, dead := q.StoredBytes(); p != p2 || dead != 0 {
		t.Errorf("bytes after purge and reopen = %d pending, %d dead; want %d, 0", p, dead, p2)
	}
	sameEvent(t, next(t, q, "crm").Event, event("app", "p2"))
}

func TestDeadLetterSinksMovesRemovedSinks(t *testing.T) {
	q := open(t, Options{})
	enqueue(t, q, []string{"kept", "gone"}, event("app", "s1"), event("app", "s2"))
	// One of gone's deliveries is waiting for a retry.
	d := next(t, q, "gone")
	d.Attempts, d.NotBefore, d.LastError = 1, time.Now().Add(time.Hour), "503"
	q.Retry(d)

	n, err := q.DeadLetterSinks(func(s string) bool { return s != "gone" }, "sink removed")
	if err != nil || n != 2 {
		t.Fatalf("DeadLetterSinks = %d, %v; want 2", n, err)
	}
	list, err := listDead(q)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListDead = %v, %v; want 2", list, err)
	}
	for _, dl := range list {
		if dl.Sink != "gone" || dl.LastError != "sink removed" {
			t.Errorf("dead letter = %+v, want sink gone with reason %q", dl, "sink removed")
		}
	}
	if st := q.Stats(); st["gone"] != [2]int{0, 2} || st["kept"] != [2]int{2, 0} {
		t.Errorf("stats = %v", st)
	}
	empty(t, q, "gone", 20*time.Millisecond)
	for _, id := range []string{"s1", "s2"} {
		k := next(t, q, "kept")
		if k.Event.ID != id {
			t.Errorf("kept got %s, want %s", k.Event.ID, id)
		}
		q.Done(k)
	}
	// Nothing left to move: no commit, no error.
	if n, err := q.DeadLetterSinks(func(s string) bool { return s != "gone" }, "sink removed"); n != 0 || err != nil {
		t.Errorf("second DeadLetterSinks = %d, %v", n, err)
	}
	q = reopen(t, q)
	if st := q.Stats(); st["gone"] != [2]int{0, 2} {
		t.Errorf("after reopen stats = %v", st)
	}
}

func TestDedupWithinWindow(t *testing.T) {
	q := open(t, Options{DedupWindow: time.Hour})
	b := enqueue(t, q, []string{"crm"}, event("app", "x"))
	if b[0].Duplicate {
		t.Fatal("first accept marked duplicate")
	}
	if !q.Seen("app", "x") {
		t.Error("Seen(app, x) = false after accepting it")
	}
	if q.Seen("other", "x") || q.Seen("app", "y") {
		t.Error("Seen reports events never accepted")
	}
	b = enqueue(t, q, []string{"crm"}, event("app", "x"), event("app", "z"))
	if !b[0].Duplicate || b[1].Duplicate {
		t.Errorf("duplicates = %v %v, want true false", b[0].Duplicate, b[1].Duplicate)
	}
	// Same id, another source: a different event.
	b = enqueue(t, q, []string{"crm"}, event("other", "x"))
	if b[0].Duplicate {
		t.Error("same id from another source marked duplicate")
	}
	// An event routed nowhere is remembered too (issue 10.9): a replay of
	// it must not be routed once the config routes it somewhere.
	enqueue(t, q, nil, event("app", "unrouted"))
	if !q.Seen("app", "unrouted") {
		t.Error("an event without sinks was not remembered")
	}
	if b := enqueue(t, q, []string{"crm"}, event("app", "unrouted")); !b[0].Duplicate {
		t.Error("a retry of an unrouted event was routed")
	}
	if st := q.Stats()["crm"]; st[0] != 3 {
		t.Errorf("%d deliveries queued, want 3 (x, z, other/x)", st[0])
	}
	q = reopen(t, q)
	if !q.Seen("app", "x") {
		t.Error("dedup forgotten across a restart")
	}
	b = enqueue(t, q, []string{"crm"}, event("app", "x"))
	if !b[0].Duplicate {
		t.Error("accept after restart not marked duplicate")
	}
	if st := q.Stats()["crm"]; st[0] != 3 {
		t.Errorf("%d deliveries queued, want 3", st[0])
	}
}

// Remembered ids survive a crash whether or not they reached the dedup
// chunks: those that did are read back from the chunks (their events'
// copies are not read again), the others from their events' records.
func TestDedupSurvivesACrash(t *testing.T) {
	dir := t.TempDir()
	q := open(t, Options{Dir: dir, DedupWindow: time.Hour})
	enqueue(t, q, []string{"crm"}, event("app", "flushed"))
	enqueue(t, q, nil, event("app", "flushed-unrouted"))
	if err := q.barrierOp(func() error {
		if err := q.flushDedup(q.now()); err != nil {
			return err
		}
		return q.checkpoint()
	}); err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, []string{"crm"}, event("app", "recent"))
	crashed := open(t, Options{Dir: crashCopy(t, dir), DedupWindow: time.Hour})
	crashed.mu.Lock()
	remembered := crashed.st.dedup.n
	crashed.mu.Unlock()
	if remembered != 3 {
		t.Errorf("%d ids remembered after the crash, want 3", remembered)
	}
	for _, id := range []string{"flushed", "flushed-unrouted", "recent"} {
		if !crashed.Seen("app", id) {
			t.Errorf("%s forgotten across a crash", id)
		}
		if b := enqueue(t, crashed, []string{"crm"}, event("app", id)); !b[0].Duplicate {
			t.Errorf("a retry of %s after the crash was routed again", id)
		}
	}
}

// syncFailFS fails the next fsync of a file whose name starts with prefix.
type syncFailFS struct {
	FS
	prefix string
	fail   atomic.Bool
}

func (s *syncFailFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := s.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasPrefix(filepath.Base(name), s.prefix) {
		return f, err
	}
	return syncFailFile{f, s}, nil
}

type syncFailFile struct {
	File
	fs *syncFailFS
}

func (f syncFailFile) Sync() error {
	if f.fs.fail.CompareAndSwap(true, false) {
		return syscall.EIO
	}
	return f.File.Sync()
}

// A failed fsync of a dedup chunk leaves in doubt the keys it covered:
// they are written again, and the chunk holding them is not deleted as if
// they had expired, so that a restart, which reads the keys of events
// before the dedup position from the chunks only, still knows them.
func TestDedupKeysSurviveAFailedChunkSync(t *testing.T) {
	dir := t.TempDir()
	fs := &syncFailFS{FS: OS, prefix: "ddp-"}
	q := open(t, Options{Dir: dir, FS: fs, DedupWindow: time.Hour})
	enqueue(t, q, []string{"crm"}, event("app", "a"))
	fs.fail.Store(true)
	if err := q.barrierOp(func() error {
		q.housekeeping(false) // the chunk's fsync fails
		q.housekeeping(false) // written again, the position moves on
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fs.fail.Load() {
		t.Fatal("no dedup chunk was synced: the test did not fail the fsync it meant to")
	}
	crashed := open(t, Options{Dir: crashCopy(t, dir), DedupWindow: time.Hour})
	if !crashed.Seen("app", "a") {
		t.Fatal("an id whose chunk fsync failed once is forgotten after a crash: a retry would be routed again")
	}
}

func TestConcurrentDuplicatesAreRoutedOnce(t *testing.T) {
	q := open(t, Options{DedupWindow: time.Hour})
	var wg sync.WaitGroup
	var dups atomic.Int32
	for range 16 {
		wg.Go(func() {
			b := enqueue(t, q, []string{"crm"}, event("app", "same"))
			if b[0].Duplicate {
				dups.Add(1)
			}
		})
	}
	wg.Wait()
	if dups.Load() != 15 {
		t.Errorf("%d of 16 concurrent accepts of one id marked duplicate, want 15", dups.Load())
	}
	if st := q.Stats()["crm"]; st[0] != 1 {
		t.Errorf("%d deliveries queued, want 1", st[0])
	}
}

func TestDedupWindowZeroDisablesDedup(t *testing.T) {
	q := open(t, Options{})
	for range 2 {
		if b := enqueue(t, q, []string{"crm"}, event("app", "x")); b[0].Duplicate {
			t.Error("marked duplicate with dedup off")
		}
	}
	if q.Seen("app", "x") {
		t.Error("Seen = true with dedup off")
	}
	if st := q.Stats()["crm"]; st[0] != 2 {
		t.Errorf("%d deliveries queued, want 2", st[0])
	}
}

func TestMaxBytesRejectsWholeBatchAndWritesNothing(t *testing.T) {
	size := storedSize(t, []string{"a", "b"}, event("app", "m1"))
	q := open(t, Options{MaxBytes: 2*size - 1, DedupWindow: time.Hour})
	err := q.Enqueue(context.Background(), routed([]string{"a", "b"}, event("app", "m1"), event("app", "m2")))
	if !errors.Is(err, router.ErrQueueFull) {
		t.Fatalf("Enqueue past max_bytes = %v, want ErrQueueFull", err)
	}
	if b := pendingBytes(q); b != 0 {
		t.Errorf("%d bytes accounted after a refused batch", b)
	}
	for sink, st := range q.Stats() {
		if st != [2]int{} {
			t.Errorf("sink %s stats %v after a refused batch", sink, st)
		}
	}
	if q.Seen("app", "m1") {
		t.Error("a refused event is remembered for dedup: the provider's retry would be dropped")
	}
	q = reopen(t, q)
	if b := pendingBytes(q); b != 0 || len(q.Stats()) != 0 {
		t.Errorf("after reopen: %d bytes, stats %v; want nothing stored", b, q.Stats())
	}
	empty(t, q, "a", 20*time.Millisecond)
	// One event fits, and a provider retry of it is accepted.
	b := enqueue(t, q, []string{"a", "b"}, event("app", "m1"))
	if b[0].Duplicate {
		t.Error("retry of a refused event marked duplicate")
	}
	if err := q.Enqueue(context.Background(), routed([]string{"a"}, event("app", "m2"))); !errors.Is(err, router.ErrQueueFull) {
		t.Errorf("second event = %v, want ErrQueueFull", err)
	}
	// A duplicate needs no room.
	if b := enqueue(t, q, []string{"a"}, event("app", "m1")); !b[0].Duplicate {
		t.Error("duplicate of a stored event not marked")
	}
}

func TestConcurrentEnqueueDeliversEachOnce(t *testing.T) {
	q := open(t, Options{DedupWindow: time.Hour})
	const writers, each = 32, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := q.Enqueue(context.Background(), routed([]string{"crm"}, event("app", fmt.Sprintf("%d-%d", w, i)))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if st := q.Stats()["crm"]; st[0] != writers*each {
		t.Fatalf("%d deliveries queued, want %d", st[0], writers*each)
	}
	// Several consumers, as a sink with concurrency does.
	var mu sync.Mutex
	got := map[string]int{}
	var consumers sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var taken atomic.Int32
	for range 4 {
		consumers.Go(func() {
			for {
				d, err := q.Next(ctx, "crm")
				if err != nil {
					return
				}
				mu.Lock()
				got[d.Event.ID]++
				mu.Unlock()
				q.Done(d)
				if taken.Add(1) == writers*each {
					cancel()
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { consumers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("consumers took only %d of %d deliveries", taken.Load(), writers*each)
	}
	for w := range writers {
		for i := range each {
			if id := fmt.Sprintf("%d-%d", w, i); got[id] != 1 {
				t.Errorf("event %s delivered %d times", id, got[id])
			}
		}
	}
	if len(got) != writers*each {
		t.Errorf("%d distinct events delivered, want %d", len(got), writers*each)
	}
	empty(t, q, "crm", 50*time.Millisecond)
}

// Each sink takes its own deliveries, first queued first. An event for
// several sinks is one delivery per sink, each with an id of its own (dead
// letters are stored under it). A delivery in flight still counts as queued
// and keeps the queue from being idle.
func TestEachSinkTakesItsDeliveriesInOrder(t *testing.T) {
	q := open(t, Options{})
	enqueue(t, q, []string{"crm", "archive"}, event("app", "e1"), event("app", "e2"))
	enqueue(t, q, []string{"archive"}, event("app", "e3"))
	if st := q.Stats(); len(st) != 2 || st["crm"] != [2]int{2, 0} || st["archive"] != [2]int{3, 0} {
		t.Errorf("stats = %v, want crm 2 queued, archive 3", st)
	}
	if q.Idle() {
		t.Error("Idle with deliveries due")
	}
	ids := map[string]string{}
	take := func(sink string) *router.Delivery {
		t.Helper()
		d := next(t, q, sink)
		if d.Sink != sink || d.Attempts != 0 || d.ID == "" {
			t.Errorf("delivery = %+v", d)
		}
		if prev, ok := ids[d.ID]; ok {
			t.Errorf("delivery id %s handed out twice: %s, then %s/%s", d.ID, prev, sink, d.Event.ID)
		}
		ids[d.ID] = sink + "/" + d.Event.ID
		return d
	}
	var got []string
	for range 3 {
		d := take("archive")
		got = append(got, d.Event.ID)
		if err := q.Done(d); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"e1", "e2", "e3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("archive got %q, want %q", got, want)
	}
	empty(t, q, "archive", 20*time.Millisecond)
	d := take("crm")
	if d.Event.ID != "e1" {
		t.Errorf("crm got %s first, want e1", d.Event.ID)
	}
	if st := q.Stats(); st["crm"] != [2]int{2, 0} || st["archive"] != [2]int{0, 0} {
		t.Errorf("stats with one in flight = %v, want crm 2 queued, archive 0", st)
	}
	if q.Idle() {
		t.Error("Idle with a delivery in flight")
	}
	q.Done(d)
	if d := take("crm"); d.Event.ID != "e2" {
		t.Errorf("crm got %s second, want e2", d.Event.ID)
	} else {
		q.Done(d)
	}
	if !q.Idle() {
		t.Error("not Idle once every delivery is done")
	}
	if st := q.Stats(); st["crm"] != [2]int{0, 0} || st["archive"] != [2]int{0, 0} {
		t.Errorf("stats at the end = %v, want nothing queued", st)
	}
}

// Delayed retries are never handed out before their NotBefore, and come in
// the order they fall due, whatever order they were put back in.
func TestDelayedRetriesComeInDueOrder(t *testing.T) {
	q := open(t, Options{})
	enqueue(t, q, []string{"crm"}, event("app", "late"), event("app", "early"), event("app", "middle"))
	now := time.Now()
	due := map[string]time.Time{
		"late":   now.Add(500 * time.Millisecond),
		"early":  now.Add(300 * time.Millisecond),
		"middle": now.Add(400 * time.Millisecond),
	}
	for range 3 {
		d := next(t, q, "crm")
		d.Attempts, d.LastError, d.NotBefore = 1, "503", due[d.Event.ID]
		if err := q.Retry(d); err != nil {
			t.Fatal(err)
		}
	}
	if st := q.Stats()["crm"]; st != [2]int{3, 0} {
		t.Errorf("stats = %v, want the 3 retries counted as queued", st)
	}
	var got []string
	for range 3 {
		d := next(t, q, "crm")
		if now := time.Now(); now.Before(due[d.Event.ID]) {
			t.Errorf("%s handed out %v before its NotBefore", d.Event.ID, due[d.Event.ID].Sub(now))
		}
		if d.Attempts != 1 || d.LastError != "503" {
			t.Errorf("%s: attempts %d, last error %q; want 1, 503", d.Event.ID, d.Attempts, d.LastError)
		}
		got = append(got, d.Event.ID)
		q.Done(d)
	}
	if want := []string{"early", "middle", "late"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order = %q, want %q", got, want)
	}
}

// A Next waiting for a retry due in an hour must wake for a fresh delivery.
// A retry not yet due leaves the queue idle once it is rescheduled.
func TestNewDeliveryWakesAWaitingNext(t *testing.T) {
	q := open(t, Options{})
	enqueue(t, q, []string{"crm"}, event("app", "slow"))
	d := next(t, q, "crm")
	d.NotBefore = time.Now().Add(time.Hour)
	if err := q.Retry(d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the retry to be rescheduled", q.Idle)
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
	time.Sleep(20 * time.Millisecond) // let it wait (if it does not yet, it finds the delivery queued)
	enqueue(t, q, []string{"crm"}, event("app", "fresh"))
	if id := <-got; id != "fresh" {
		t.Errorf("Next returned %s, want the fresh delivery", id)
	}
}

// Consumers already waiting when deliveries arrive, as a sink's workers
// are, take each delivery exactly once, and every one of them.
func TestWaitingConsumersTakeEachDeliveryOnce(t *testing.T) {
	q := open(t, Options{})
	const n, consumers, batch = 300, 8, 50
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for range consumers {
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
	// Enqueue while the consumers already wait, in several batches.
	for i := 0; i < n; i += batch {
		var events []*router.Event
		for j := i; j < i+batch; j++ {
			events = append(events, event("app", fmt.Sprintf("e%d", j)))
		}
		enqueue(t, q, []string{"crm"}, events...)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
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
	if st := q.Stats()["crm"]; st != [2]int{0, 0} {
		t.Errorf("stats = %v, want nothing queued", st)
	}
	empty(t, q, "crm", 20*time.Millisecond)
}

func TestSecondOpenOfTheSameDirFails(t *testing.T) {
	q := open(t, Options{})
	start := time.Now()
	q2, err := Open(Options{Dir: q.opts.Dir, Log: q.log})
	if err == nil {
		q2.Close()
		t.Fatal("second Open of the same dir succeeded")
	}
	if !strings.Contains(err.Error(), "in use by another switchboard process") {
		t.Errorf("error = %q, want it to say the dir is in use by another switchboard process", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("second Open took %v to fail", time.Since(start))
	}
	// After Close the directory is free again.
	q = reopen(t, q)
	_ = q
}

// inFlight is how many of sink's deliveries the queue counts as handed out
// and not yet finished in writing.
func inFlight(q *Queue, sink string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.st.sinks[q.sink(sink)].inFlight
}

// A finished delivery's completion rides along with the next write: an
// Enqueue after Done carries it, so the delivery is gone once that Enqueue
// returns, with no write of its own.
func TestDoneRidesWithTheNextEnqueue(t *testing.T) {
	q := open(t, Options{})
	enqueue(t, q, []string{"a"}, event("app", "e1"))
	d := next(t, q, "a")
	if err := q.Done(d); err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, []string{"b"}, event("app", "e2"))
	if n := inFlight(q, "a"); n != 0 {
		t.Fatalf("after the next Enqueue, %d deliveries of a still in flight; the completion did not ride along", n)
	}
}

// With nothing else to write, a completion is written on its own, soon:
// a crash after that (a copy of the files taken while the queue is open)
// does not deliver it again.
func TestDoneIsWrittenAloneWhenNothingElseIs(t *testing.T) {
	dir := t.TempDir()
	q := open(t, Options{Dir: dir})
	enqueue(t, q, []string{"a"}, event("app", "e1"), event("app", "e2"))
	d := next(t, q, "a")
	if err := q.Done(d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the completion to be written", func() bool { return inFlight(q, "a") == 0 })
	crashed := open(t, Options{Dir: crashCopy(t, dir)})
	if got := next(t, crashed, "a"); got.Event.ID == d.Event.ID {
		t.Fatalf("after a crash, %s is delivered again although its completion was written", got.Event.ID)
	}
	empty(t, crashed, "a", 50*time.Millisecond)
}

// Done after Close is refused, as every change is.
func TestDoneAfterCloseIsRefused(t *testing.T) {
	q := open(t, Options{})
	enqueue(t, q, []string{"a"}, event("app", "e1"))
	d := next(t, q, "a")
	q.Close()
	if err := q.Done(d); !errors.Is(err, router.ErrQueueClosed) {
		t.Fatalf("Done after Close = %v, want ErrQueueClosed", err)
	}
}

func TestCloseUnblocksNext(t *testing.T) {
	q, err := Open(Options{Dir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// Two Nexts wait for a sink with nothing queued, one for a delivery due
	// in an hour.
	enqueue(t, q, []string{"delayed"}, event("app", "later"))
	d := next(t, q, "delayed")
	d.NotBefore = time.Now().Add(time.Hour)
	q.Retry(d)
	errc := make(chan error, 3)
	for _, sink := range []string{"idle", "idle", "delayed"} {
		go func() {
			_, err := q.Next(context.Background(), sink)
			errc <- err
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		select {
		case err := <-errc:
			if !errors.Is(err, router.ErrQueueClosed) {
				t.Errorf("Next after Close = %v, want ErrQueueClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock Next")
		}
	}
	if _, err := q.Next(context.Background(), "idle"); !errors.Is(err, router.ErrQueueClosed) {
		t.Errorf("Next on a closed queue = %v", err)
	}
	if err := q.Enqueue(context.Background(), routed([]string{"a"}, event("app", "late"))); !errors.Is(err, router.ErrQueueClosed) {
		t.Errorf("Enqueue on a closed queue = %v, want ErrQueueClosed", err)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// A sink that is down for hours must not fill the queue for the others:
// past its backlog bound, its new deliveries become dead letters (the
// event kept) while other sinks' deliveries queue as usual.
func TestFullBacklogDeadLettersThatSinkOnly(t *testing.T) {
	q := open(t, Options{MaxPendingPerSink: 2})
	for i := range 4 {
		enqueue(t, q, []string{"down", "up"}, event("app", fmt.Sprint("b", i)))
		q.Done(next(t, q, "up")) // up delivers as it goes
	}
	st := q.Stats()
	if st["down"] != [2]int{2, 2} || st["up"] != [2]int{0, 0} {
		t.Fatalf("stats = %v, want down 2 queued + 2 dead, up all delivered", st)
	}
	list, err := listDead(q)
	if err != nil || len(list) != 2 {
		t.Fatalf("dead letters = %v, %v", list, err)
	}
	for _, dl := range list {
		if dl.Sink != "down" || !strings.HasPrefix(dl.LastError, "backlog full: 2 deliveries were already queued") {
			t.Errorf("dead letter = %+v", dl)
		}
		if time.Since(dl.DeadAt) > time.Minute || time.Since(dl.DeadAt) < 0 {
			t.Errorf("dead letter died at %v, want now", dl.DeadAt)
		}
	}
	if age := q.OldestPending(time.Now())["down"]; age <= 0 || age > time.Minute {
		t.Errorf("oldest pending delivery of down is %v old, want a few milliseconds", age)
	}
	// The dead letters keep their events: a replay once the sink drains
	// delivers them.
	for range 2 {
		q.Done(next(t, q, "down"))
	}
	if n, err := q.Replay(nil); n != 2 || err != nil {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	ids := map[string]bool{}
	for range 2 {
		d := next(t, q, "down")
		ids[d.Event.ID] = true
		q.Done(d)
	}
	if !ids["b2"] || !ids["b3"] {
		t.Errorf("replayed %v, want b2 and b3", ids)
	}
}
