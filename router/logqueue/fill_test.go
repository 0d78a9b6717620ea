package logqueue

import (
	"bytes"
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/router"
)

// headFile returns the head segment's name and the queue's idea of its
// end, read on the writer's side of the lock.
func headFile(q *Queue) (string, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.seg.name(q.seg.last), q.seg.size
}

func fileSize(t *testing.T, name string) int64 {
	t.Helper()
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// A running queue keeps zeros written ahead of its head's end, as far as
// the window (here the segment size), so that the group commit's fsync does
// not grow the file; nothing but zeros lies past the end.
func TestZerosAreKeptAheadOfTheEnd(t *testing.T) {
	const seg = 1 << 20
	q := open(t, Options{SegmentSize: seg})
	enqueue(t, q, []string{"a"}, event("app", "e1"), event("app", "e2"))
	name, end := headFile(q)
	eventually(t, "zeros ahead of the end", func() bool {
		q.seg.fill.mu.Lock()
		defer q.seg.fill.mu.Unlock()
		return q.seg.fill.zeroEnd.Load() == seg
	})
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != seg {
		t.Fatalf("head is %d bytes, want the window (the segment size, %d)", len(b), seg)
	}
	if i := bytes.IndexFunc(b[end:], func(r rune) bool { return r != 0 }); i >= 0 {
		t.Fatalf("byte %d past the end (%d) is not zero", end+int64(i), end)
	}
}

// A crash leaves zeros past the end: the start reads them as the log's
// clean end, loses nothing and warns of nothing.
func TestCrashWithZerosPastTheEnd(t *testing.T) {
	dir := t.TempDir()
	q := open(t, Options{Dir: dir, SegmentSize: 1 << 20})
	var want []*router.Event
	for i := range 50 {
		e := event("app", fmt.Sprint("e", i))
		want = append(want, e)
		enqueue(t, q, []string{"a"}, e)
	}
	eventually(t, "zeros ahead of the end", func() bool { return q.seg.fill.zeroEnd.Load() > q.seg.fill.end.Load() })
	name, end := headFile(q)
	copied := crashCopy(t, dir)
	if got := fileSize(t, filepath.Join(copied, filepath.Base(name))); got <= end {
		t.Fatalf("the crashed head is %d bytes, its records end at %d: no zeros to read", got, end)
	}
	// The tools see the same: no torn bytes, no damage.
	r, err := Check(Options{Dir: copied, Log: slog.New(slog.DiscardHandler)})
	if err != nil || r.TornBytes != 0 || len(r.Damaged) != 0 {
		t.Errorf("check of the crashed queue: %v, torn %d, damaged %q", err, r.TornBytes, r.Damaged)
	}
	r, err = Salvage(Options{Dir: copied, Log: slog.New(slog.DiscardHandler)}, t.TempDir())
	if err != nil || len(r.Damaged) != 0 || r.DamagedBytes != 0 {
		t.Errorf("salvage of the crashed queue: %v, damaged %q (%d bytes)", err, r.Damaged, r.DamagedBytes)
	}
	// Read once the queue is closed: its goroutines log no more.
	var logs bytes.Buffer
	crashed := open(t, Options{Dir: copied, SegmentSize: 1 << 20, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, e := range want {
		sameEvent(t, next(t, crashed, "a").Event, e)
	}
	empty(t, crashed, "a", 20*time.Millisecond)
	crashed.Close()
	if strings.Contains(logs.String(), "torn") || strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("zeros past the end were logged:\n%s", logs.String())
	}
}

// crashCopy copies a running queue's directory as a crash would leave it:
// queue.state first, so that the files it lists are at least as long as it
// says when they are copied after it, and without a checkpoint being
// written (*.tmp) or the lock.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := func(e os.DirEntry) int {
		if e.Name() == stateFile {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(names, func(a, b os.DirEntry) int { return cmp.Compare(first(a), first(b)) })
	for _, e := range names {
		if e.Name() == lockName || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// CrashCopy and FileSize are for the tests outside the package.
var (
	CrashCopy = crashCopy
	FileSize  = fileSize
)

// Segments are sealed at the length of their records, whatever the zeros
// did, while writes race the filler (events bigger than its chunk, so the
// writer outruns it) and the head rolls every few events; the sealed
// lengths are checked by the next start, and every event reads back whole.
func TestSealedSegmentsHoldOnlyRecords(t *testing.T) {
	defer func(w int64) { fillWindow = w }(fillWindow)
	fillWindow = 64 << 10 // smaller than the big events: the writer outruns the zeros
	dir := t.TempDir()
	const seg = 2 << 20
	q := open(t, Options{Dir: dir, SegmentSize: seg})
	big := strings.Repeat("x", 300<<10)
	var mu sync.Mutex
	var want []*router.Event
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				e := event("app", fmt.Sprintf("w%d-%d", w, i))
				if i%3 == 0 {
					e.RawPayload = []byte(`{"big":"` + big + `"}`)
					e.Body = e.RawPayload
				}
				enqueue(t, q, []string{"a"}, e)
				mu.Lock()
				want = append(want, e)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	q.mu.Lock()
	segs := q.seg.last
	q.mu.Unlock()
	if segs < 3 {
		t.Fatalf("only %d segments: the test wants several rolls", segs)
	}
	q = reopen(t, q) // a sealed length that is not the file's would stop this start
	q.mu.Lock()
	for n := q.seg.first; n < q.seg.last; n++ {
		if got, want := fileSize(t, q.seg.name(n)), q.seg.files[n].size; got != want {
			t.Errorf("%s is %d bytes, sealed at %d", q.seg.name(n), got, want)
		}
	}
	q.mu.Unlock()
	got := map[string]*router.Event{}
	for range want {
		d := next(t, q, "a")
		got[d.Event.ID] = d.Event
	}
	for _, e := range want {
		if g := got[e.ID]; g == nil {
			t.Errorf("%s lost", e.ID)
		} else if !bytes.Equal(g.RawPayload, e.RawPayload) || !bytes.Equal(g.Body, e.Body) {
			t.Errorf("%s came back with a payload of %d bytes, want %d", e.ID, len(g.RawPayload), len(e.RawPayload))
		}
	}
}

// Closed, a queue's files hold only their records: the zeros go.
func TestCloseCutsTheZeros(t *testing.T) {
	q := open(t, Options{SegmentSize: 1 << 20})
	enqueue(t, q, []string{"a"}, event("app", "e1"))
	eventually(t, "zeros ahead of the end", func() bool { return q.seg.fill.zeroEnd.Load() > q.seg.fill.end.Load() })
	name, _ := headFile(q)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 1<<20 || b[len(b)-1] == 0 && b[len(b)-2] == 0 && b[len(b)-3] == 0 && b[len(b)-4] == 0 {
		t.Errorf("after Close the head is %d bytes and ends in zeros", len(b))
	}
	reopen(t, q)
}
