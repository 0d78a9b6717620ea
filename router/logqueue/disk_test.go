package logqueue_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"switchboard/router"
	"switchboard/router/logqueue"
	"switchboard/router/logqueue/logqueuetest"
)

// logBuffer collects a queue's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func ev(id string) *router.Event {
	raw := []byte(`{"id":"` + id + `","status":"failed"}`)
	return &router.Event{ID: id, Source: "app", Event: "e", Status: "failed", Time: time.Unix(1e9, 0).UTC(),
		ReceivedAt: time.Unix(1e9, 5).UTC(), RawPayload: raw, Body: raw}
}

func enq(ctx context.Context, q *logqueue.Queue, sink string, ids ...string) ([]router.Routed, error) {
	var b []router.Routed
	for _, id := range ids {
		b = append(b, router.Routed{Event: ev(id), Sinks: []string{sink}})
	}
	return b, q.Enqueue(ctx, b)
}

func take(t *testing.T, q *logqueue.Queue, sink string) *router.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := q.Next(ctx, sink)
	if err != nil {
		t.Fatalf("Next(%s): %v", sink, err)
	}
	return d
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A full disk (issue 10.5): Enqueue fails (sources answer 503, never 200),
// Ready says why, each failed write is counted and the run of failures is
// logged once; the outcomes workers report meanwhile are kept, not applied
// in memory before they are written, and written once the disk recovers.
func TestFullDiskRefusesEventsAndKeepsOutcomes(t *testing.T) {
	for _, mode := range []string{"write", "fsync"} {
		t.Run(mode, func(t *testing.T) {
			disk := logqueuetest.NewDisk()
			var logs logBuffer
			writeErrors := prometheus.NewCounter(prometheus.CounterOpts{Name: "w"})
			dir := t.TempDir()
			opts := logqueue.Options{Dir: dir, FS: disk, DedupWindow: time.Hour,
				Log: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: &logqueue.Metrics{WriteErrors: writeErrors}}
			q, err := logqueue.Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { q.Close() }()
			ctx := context.Background()
			if _, err := enq(ctx, q, "crm", "done", "retry", "dead"); err != nil {
				t.Fatal(err)
			}
			d1, d2, d3 := take(t, q, "crm"), take(t, q, "crm"), take(t, q, "crm")
			if mode == "write" {
				disk.SetFull(true)
			} else {
				disk.SetSyncFails(true)
			}

			now := time.Now()
			d2.Attempts, d2.FirstTry, d2.LastTry, d2.NotBefore, d2.LastError = 1, now, now, now, "503 Service Unavailable"
			d3.Attempts, d3.LastError = 1, "permanent failure: 400"
			for _, err := range []error{q.Done(d1), q.Retry(d2), q.Dead(d3)} {
				if err != nil {
					t.Fatalf("outcome refused: %v", err)
				}
			}
			start := time.Now()
			_, err = enq(ctx, q, "crm", "refused")
			if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "queue cannot write to disk") {
				t.Fatalf("Enqueue on a full disk = %v, want an error naming the full disk", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Enqueue took %v to fail", took)
			}
			if err := q.Ready(); err == nil || !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("Ready on a full disk = %v", err)
			}
			// The retry is not back on the schedule while its state is not
			// written. (When only fsync fails, it is written: outcomes do
			// not wait for an fsync of their own.)
			if mode == "write" {
				short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				if d, err := q.Next(short, "crm"); err == nil {
					t.Errorf("Next handed out %s while its retry state could not be written", d.Event.ID)
				}
				cancel()
			}
			waitUntil(t, "several failed writes", func() bool { return testutil.ToFloat64(writeErrors) >= 3 })
			// Refused events are not remembered: the provider's retry must
			// be accepted later.
			if q.Seen("app", "refused") {
				t.Error("a refused event is remembered for dedup")
			}
			if n := logs.count("queue cannot write to disk"); n != 1 {
				t.Errorf("the failure was logged %d times, want once per run of failures", n)
			}

			disk.SetFull(false)
			disk.SetSyncFails(false)
			waitUntil(t, "the queue to write again", func() bool { return q.Ready() == nil })
			if logs.count("queue writes to disk again") != 1 {
				t.Error("the recovery was not logged")
			}
			var r *router.Delivery
			if mode == "write" {
				r = take(t, q, "crm")
			} else {
				r = d2
			}
			if r.Event.ID != "retry" || r.Attempts != 1 || r.LastError != "503 Service Unavailable" || !r.FirstTry.Equal(now) {
				t.Errorf("after recovery: %s attempts %d error %q first %v; want the retry with its state", r.Event.ID, r.Attempts, r.LastError, r.FirstTry)
			}
			waitUntil(t, "the dead letter", func() bool { return q.Stats()["crm"] == [2]int{1, 1} })
			if b, err := enq(ctx, q, "crm", "refused"); err != nil || b[0].Duplicate {
				t.Fatalf("the provider's retry after recovery: %v, duplicate %v", err, b[0].Duplicate)
			}

			// What was written after the recovery survives a restart.
			q.Retry(r)
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			opts.FS = nil
			q, err = logqueue.Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			if st := q.Stats()["crm"]; st != [2]int{2, 1} {
				t.Errorf("after restart: %v, want the retry and the refused event's retry queued, one dead letter", st)
			}
			page, err := q.ListDead(router.DeadQuery{})
			if err != nil || len(page.Items) != 1 || page.Items[0].EventID != "dead" || page.Items[0].LastError != "permanent failure: 400" {
				t.Errorf("dead letters after restart: %+v, %v", page.Items, err)
			}
			got := map[string]int{}
			for range 2 {
				d := take(t, q, "crm")
				got[d.Event.ID] = d.Attempts
				q.Done(d)
			}
			if got["retry"] != 1 || got["refused"] != 0 || len(got) != 2 {
				t.Errorf("after restart delivered %v, want retry (attempt 1) and refused", got)
			}
		})
	}
}

// On a full disk the zeros kept ahead of the log's end run out: this disk
// fails even a write over them (a real one takes it, the blocks being
// there), the write is taken back, and the filler, woken to fill again from
// there, fails and rests. The queue refuses events while writes fail, takes
// them again after, loses none it accepted, and the zeros come back.
func TestFullDiskPastTheZeros(t *testing.T) {
	disk := logqueuetest.NewDisk()
	dir := t.TempDir()
	const seg = 1 << 20
	opts := logqueue.Options{Dir: dir, FS: disk, SegmentSize: seg, Log: quietLog()}
	q, err := logqueue.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { q.Close() }()
	ctx := context.Background()
	head := filepath.Join(dir, "seg-0000000000000001.log")
	headSize := func() int64 {
		st, err := os.Stat(head)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	waitUntil(t, "zeros ahead of the end", func() bool { return headSize() == seg })
	if _, err := enq(ctx, q, "a", "before"); err != nil {
		t.Fatal(err)
	}
	disk.SetFull(true)
	if _, err := enq(ctx, q, "a", "during"); err == nil {
		t.Fatal("an Enqueue on a full disk succeeded")
	}
	if got := headSize(); got >= seg {
		t.Errorf("after the failed write the head is %d bytes: not taken back to its records", got)
	}
	disk.SetFull(false)
	waitUntil(t, "the disk to take events again", func() bool {
		_, err := enq(ctx, q, "a", "after")
		return err == nil
	})
	waitUntil(t, "the zeros to come back", func() bool { return headSize() == seg })
	q.Close()
	if q, err = logqueue.Open(opts); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"before", "after"} {
		if d := take(t, q, "a"); d.Event.ID != id {
			t.Fatalf("delivery of %s, want %s", d.Event.ID, id)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if d, err := q.Next(short, "a"); err == nil {
		t.Fatalf("delivery of %s, want none left", d.Event.ID)
	}
}
