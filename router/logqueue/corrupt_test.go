package logqueue_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"switchboard/router"
	"switchboard/router/logqueue"
)

// damagedBase builds a queue spread over several segments: events pending,
// some delivered, a dead letter, remembered ids. It returns its directory
// and the segment files, oldest first.
func damagedBase(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	opts := logqueue.Options{Dir: dir, SegmentSize: 2048, DedupWindow: time.Hour, Log: quietLog()}
	q, err := logqueue.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 40 {
		if _, err := enq(ctx, q, "crm", fmt.Sprintf("ev-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		d := take(t, q, "crm")
		if i == 4 {
			d.Attempts, d.LastError = 1, "permanent failure"
			q.Dead(d)
		} else {
			q.Done(d)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	segs := files(t, dir, "seg-")
	if len(segs) < 4 {
		t.Fatalf("the base queue has %d segments; the cases need at least 4", len(segs))
	}
	return dir, segs
}

func files(t *testing.T, dir, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func overwrite(t *testing.T, name string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func garbage(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	return b
}

// Every kind of damage to every kind of file stops the start with one
// error that names the file, says what is wrong and what to do; never a
// panic, never a silent empty queue (issue 10.4).
func TestDamageStopsTheStartWithOneClearError(t *testing.T) {
	base, baseSegs := damagedBase(t)
	rename := func(dir, name string) string { return filepath.Join(dir, filepath.Base(name)) }
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string, segs []string)
		file   func(dir string, segs []string) string // the file the error names
		says   string
	}{
		{
			name:   "a sealed segment truncated mid-record",
			damage: func(t *testing.T, dir string, s []string) { os.Truncate(s[1], logqueue.FileSize(t, s[1])-10) },
			file:   func(dir string, s []string) string { return s[1] },
			says:   "was truncated or appended to",
		},
		{
			name:   "a sealed segment truncated to its header",
			damage: func(t *testing.T, dir string, s []string) { os.Truncate(s[1], 40) },
			file:   func(dir string, s []string) string { return s[1] },
			says:   "was truncated or appended to",
		},
		{
			name:   "a sealed segment emptied",
			damage: func(t *testing.T, dir string, s []string) { os.Truncate(s[2], 0) },
			file:   func(dir string, s []string) string { return s[2] },
			says:   "it is empty (0 bytes)",
		},
		{
			name:   "a sealed segment shorter than a header",
			damage: func(t *testing.T, dir string, s []string) { os.Truncate(s[0], 17) },
			file:   func(dir string, s []string) string { return s[0] },
			says:   "shorter than a file header",
		},
		{
			name: "a sealed segment appended to",
			damage: func(t *testing.T, dir string, s []string) {
				b, _ := os.ReadFile(s[1])
				os.WriteFile(s[1], append(b, b[40:200]...), 0o640)
			},
			file: func(dir string, s []string) string { return s[1] },
			says: "was truncated or appended to",
		},
		{
			name:   "garbage in the middle of a sealed segment",
			damage: func(t *testing.T, dir string, s []string) { overwrite(t, s[1], 300, garbage(64)) },
			file:   func(dir string, s []string) string { return s[1] },
			says:   "at offset",
		},
		{
			name:   "one flipped bit in a sealed segment",
			damage: func(t *testing.T, dir string, s []string) { flipBit(t, s[2], logqueue.FileSize(t, s[2])/2) },
			file:   func(dir string, s []string) string { return s[2] },
			says:   "",
		},
		{
			name:   "garbage over a segment's header",
			damage: func(t *testing.T, dir string, s []string) { overwrite(t, s[1], 0, garbage(40)) },
			file:   func(dir string, s []string) string { return s[1] },
			says:   "does not start with the queue's file header",
		},
		{
			name:   "a segment's header checksum broken",
			damage: func(t *testing.T, dir string, s []string) { flipBit(t, s[1], 20) },
			file:   func(dir string, s []string) string { return s[1] },
			says:   "its file header fails its checksum",
		},
		{
			name:   "the last segment truncated below what was synced",
			damage: func(t *testing.T, dir string, s []string) { os.Truncate(last(s), logqueue.FileSize(t, last(s))-5) },
			file:   func(dir string, s []string) string { return last(s) },
			says:   "shorter than the",
		},
		{
			name:   "the last segment emptied",
			damage: func(t *testing.T, dir string, s []string) { os.Truncate(last(s), 0) },
			file:   func(dir string, s []string) string { return last(s) },
			says:   "it is empty (0 bytes)",
		},
		{
			name:   "garbage in the synced part of the last segment",
			damage: func(t *testing.T, dir string, s []string) { overwrite(t, last(s), 60, garbage(16)) },
			file:   func(dir string, s []string) string { return last(s) },
			says:   "at offset",
		},
		{
			name:   "a middle segment deleted",
			damage: func(t *testing.T, dir string, s []string) { os.Remove(s[2]) },
			file:   func(dir string, s []string) string { return s[2] },
			says:   "it is missing",
		},
		{
			name:   "the first segment deleted",
			damage: func(t *testing.T, dir string, s []string) { os.Remove(s[0]) },
			file:   func(dir string, s []string) string { return s[0] },
			says:   "it is missing",
		},
		{
			name:   "the last segment deleted",
			damage: func(t *testing.T, dir string, s []string) { os.Remove(last(s)) },
			file:   func(dir string, s []string) string { return last(s) },
			says:   "it is missing",
		},
		{
			name: "two segments swapped",
			damage: func(t *testing.T, dir string, s []string) {
				os.Rename(s[1], s[1]+".x")
				os.Rename(s[2], s[1])
				os.Rename(s[1]+".x", s[2])
			},
			file: func(dir string, s []string) string { return s[1] },
			says: "its header says it is file number",
		},
		{
			name:   "the checkpoint deleted",
			damage: func(t *testing.T, dir string, s []string) { os.Remove(filepath.Join(dir, "queue.state")) },
			file:   func(dir string, s []string) string { return filepath.Join(dir, "queue.state") },
			says:   "it is missing, but the directory holds",
		},
		{
			name:   "the checkpoint emptied",
			damage: func(t *testing.T, dir string, s []string) { os.Truncate(filepath.Join(dir, "queue.state"), 0) },
			file:   func(dir string, s []string) string { return filepath.Join(dir, "queue.state") },
			says:   "it is 0 bytes long",
		},
		{
			name:   "the checkpoint truncated",
			damage: func(t *testing.T, dir string, s []string) { os.Truncate(filepath.Join(dir, "queue.state"), 50) },
			file:   func(dir string, s []string) string { return filepath.Join(dir, "queue.state") },
			says:   "it is 50 bytes long",
		},
		{
			name: "garbage in the checkpoint",
			damage: func(t *testing.T, dir string, s []string) {
				overwrite(t, filepath.Join(dir, "queue.state"), 30, garbage(8))
			},
			file: func(dir string, s []string) string { return filepath.Join(dir, "queue.state") },
			says: "fails its checksum",
		},
		{
			name:   "the dedup file deleted",
			damage: func(t *testing.T, dir string, s []string) { os.Remove(files(t, dir, "ddp-")[0]) },
			file:   func(dir string, s []string) string { return rename(dir, "ddp-0000000000000001.log") },
			says:   "it is missing",
		},
		{
			name:   "garbage in the dedup file",
			damage: func(t *testing.T, dir string, s []string) { overwrite(t, files(t, dir, "ddp-")[0], 50, garbage(20)) },
			file:   func(dir string, s []string) string { return rename(dir, "ddp-0000000000000001.log") },
			says:   "at offset",
		},
		{
			name:   "the dedup file truncated",
			damage: func(t *testing.T, dir string, s []string) { os.Truncate(files(t, dir, "ddp-")[0], 45) },
			file:   func(dir string, s []string) string { return rename(dir, "ddp-0000000000000001.log") },
			says:   "shorter than the",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := logqueue.CrashCopy(t, base) // each case damages its own copy
			segs := make([]string, len(baseSegs))
			for i, s := range baseSegs {
				segs[i] = rename(dir, s)
			}
			tc.damage(t, dir, segs)
			want := tc.file(dir, segs)
			for _, open := range []struct {
				name string
				fn   func() error
			}{
				{"Open", func() error {
					q, err := logqueue.Open(logqueue.Options{Dir: dir, Log: quietLog()})
					if err == nil {
						q.Close()
					}
					return err
				}},
				{"Check", func() error { _, err := logqueue.Check(logqueue.Options{Dir: dir, Log: quietLog()}); return err }},
			} {
				err := open.fn()
				var damage *logqueue.DamageError
				if !errors.As(err, &damage) {
					t.Fatalf("%s: %v, want a DamageError", open.name, err)
				}
				msg := err.Error()
				if damage.File != want || !strings.Contains(msg, want) {
					t.Errorf("%s names %s, want %s:\n%s", open.name, damage.File, want, msg)
				}
				if !strings.Contains(msg, tc.says) {
					t.Errorf("%s: error does not say %q:\n%s", open.name, tc.says, msg)
				}
				for _, remedy := range []string{"Restore " + dir + " from a backup", "switchboard queue salvage --to NEWDIR", "move " + dir + " aside"} {
					if !strings.Contains(msg, remedy) {
						t.Errorf("%s: error does not say %q:\n%s", open.name, remedy, msg)
					}
				}
			}
			// Salvage gets back every event it can read, and never panics.
			to := filepath.Join(t.TempDir(), "salvaged")
			r, err := logqueue.Salvage(logqueue.Options{Dir: dir, Log: quietLog()}, to)
			if err != nil {
				t.Fatalf("Salvage: %v", err)
			}
			if r.Bytes == 0 {
				t.Errorf("salvage reports 0 bytes read (report %+v)", r)
			}
			q, err := logqueue.Open(logqueue.Options{Dir: to, Log: quietLog()})
			if err != nil {
				t.Fatalf("the salvaged queue does not open: %v", err)
			}
			defer q.Close()
			// Acknowledgements in damaged places are lost: those deliveries
			// come back. Events there are lost.
			if st := q.Stats()["crm"]; st[0] == 0 || st[0] > 40 || st[1] > 1 {
				t.Errorf("salvaged queue holds %v for crm (report %+v)", st, r)
			}
		})
	}
}

func last(s []string) string { return s[len(s)-1] }

func flipBit(t *testing.T, name string, off int64) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x10
	if err := os.WriteFile(name, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// A crash's torn write past what was synced is cut off, said in the log,
// and costs nothing that was answered as stored. Zeros there are the
// log's clean end (the zeros kept ahead of it, fill.go): cut off quietly.
func TestTornTailIsCutOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail []byte
		warn string // "" for none
	}{
		{"zeros", make([]byte, 300), ""},
		{"half a record", []byte{200, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9}, "queue file ended in a torn write (a crash during an unsynced write); cut off"},
		{"half a record, then zeros", append([]byte{200, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9}, make([]byte, 4096)...),
			"queue file ended in a torn write (a crash during an unsynced write); cut off"},
		{"zeros, then garbage", append(make([]byte, 4096), garbage(100)...), "cut off"},
		{"garbage", garbage(100), "cut off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, segs := damagedBase(t)
			dir := logqueue.CrashCopy(t, base) // each case damages its own copy
			lastSeg := filepath.Join(dir, filepath.Base(last(segs)))
			before := logqueue.FileSize(t, lastSeg)
			f, _ := os.OpenFile(lastSeg, os.O_WRONLY|os.O_APPEND, 0)
			f.Write(tc.tail)
			f.Close()
			var logs logBuffer
			q, err := logqueue.Open(logqueue.Options{Dir: dir, Log: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("Open with a torn tail: %v", err)
			}
			defer q.Close()
			// (Zeros alone are what the queue keeps past its end anyway.)
			if bytes.ContainsFunc(tc.tail, func(r rune) bool { return r != 0 }) {
				if b, err := os.ReadFile(lastSeg); err != nil || bytes.Contains(b[before:], tc.tail) {
					t.Errorf("after the start the tail is still there (%v)", err)
				}
			}
			if tc.warn == "" {
				if logs.count("torn write") != 0 || logs.count("bytes_discarded") != 0 {
					t.Errorf("zeros past the end were logged as a torn write:\n%s", logs.b.String())
				}
			} else if logs.count(tc.warn) != 1 || logs.count(fmt.Sprintf("bytes_discarded=%d", len(tc.tail))) != 1 {
				t.Errorf("log does not say the tail was cut off:\n%s", logs.b.String())
			}
			if st := q.Stats()["crm"]; st != [2]int{35, 1} {
				t.Errorf("after cutting a torn tail: %v, want 35 pending and 1 dead", st)
			}
			seen := map[string]bool{}
			for range 35 {
				d := take(t, q, "crm")
				seen[d.Event.ID] = true
				q.Done(d)
			}
			for i := 5; i < 40; i++ {
				if id := fmt.Sprintf("ev-%02d", i); !seen[id] {
					t.Errorf("%s lost", id)
				}
			}
			// Closed, the file is its records: the tail is gone, and what
			// followed is the completions written since.
			q.Close()
			b, err := os.ReadFile(lastSeg)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(b)) < before || bytes.Contains(b[before:], tc.tail) {
				t.Errorf("last segment is %d bytes, was %d; the tail is still there", len(b), before)
			}
		})
	}
}

// A delivery whose record cannot be read is never skipped: it becomes a
// dead letter with the error and its raw bytes, counted, and replayable.
func TestUnreadableRecordBecomesADeadLetter(t *testing.T) {
	dir := t.TempDir()
	q, err := logqueue.Open(logqueue.Options{Dir: dir, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := enq(ctx, q, "crm", "fine", "broken"); err != nil {
		t.Fatal(err)
	}
	q.Close()
	// Damage the event inside "broken"'s record and mend its checksum: a
	// record that is intact on disk but cannot be decoded (a bug, or a
	// format this build does not know).
	seg := files(t, dir, "seg-")[0]
	b, _ := os.ReadFile(seg)
	i := strings.Index(string(b), "broken") // the event's id field: length, then bytes
	start, end := recordAround(t, b, i)
	b[i-2] = 0xFF // the event's flags: no such flags
	reframe(b[start:end])
	os.WriteFile(seg, b, 0o640)

	// queue check says so before a start does anything about it.
	r, err := logqueue.Check(logqueue.Options{Dir: dir, Log: quietLog()})
	if err != nil || r.Unreadable != 1 {
		t.Fatalf("Check = %+v, %v; want 1 unreadable record and no damage", r, err)
	}

	var logs logBuffer
	unreadable := newCounter()
	q, err = logqueue.Open(logqueue.Options{Dir: dir, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Metrics: &logqueue.Metrics{Unreadable: unreadable}})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer q.Close()
	d := take(t, q, "crm")
	if d.Event.ID != "fine" {
		t.Fatalf("delivered %s, want fine", d.Event.ID)
	}
	q.Done(d)
	var page router.DeadPage
	waitUntil(t, "the unreadable delivery to become a dead letter", func() bool {
		page, err = q.ListDead(router.DeadQuery{})
		return err == nil && len(page.Items) == 1
	})
	dl, err := q.GetDead(page.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dl.LastError, "unreadable: ") || len(dl.Raw) == 0 || !strings.Contains(string(dl.Raw), `"broken"`) {
		t.Errorf("dead letter = error %q, %d raw bytes; want the decode error and the record", dl.LastError, len(dl.Raw))
	}
	if counted(unreadable) != 1 {
		t.Errorf("unreadable records counted %v, want 1", counted(unreadable))
	}
	if logs.count("unreadable") == 0 {
		t.Error("not logged")
	}
	// Replayable: this build still cannot read it, so it comes back dead.
	if n, err := q.Replay([]string{dl.ID}); n != 1 || err != nil {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if d, err := q.Next(short, "crm"); err == nil {
		t.Fatalf("Next handed out %s, an unreadable delivery", d.Event.ID)
	}
	waitUntil(t, "the replayed unreadable delivery to die again", func() bool {
		page, err = q.ListDead(router.DeadQuery{})
		return err == nil && len(page.Items) == 1
	})
	if counted(unreadable) != 2 {
		t.Errorf("unreadable records counted %v, want 2", counted(unreadable))
	}
}

// recordAround returns the bounds of the record of a segment holding
// byte i.
func recordAround(t *testing.T, b []byte, i int) (int, int) {
	t.Helper()
	for off := 40; off+8 <= len(b); {
		end := off + 8 + int(binary.LittleEndian.Uint32(b[off:]))
		if i >= off && i < end {
			return off, end
		}
		off = end
	}
	t.Fatalf("no record holds byte %d", i)
	return 0, 0
}

// reframe gives a record a checksum matching its content.
func reframe(frame []byte) {
	crc := crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), frame[:4])
	crc = crc32.Update(crc, crc32.MakeTable(crc32.Castagnoli), frame[8:])
	binary.LittleEndian.PutUint32(frame[4:], crc)
}

func newCounter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "c"})
}

func counted(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// A queue.db of the previous version is not read, nor silently ignored:
// the start says how to move on.
func TestOldQueueFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "queue.db"), garbage(4096), 0o640)
	for name, open := range map[string]func() error{
		"Open":  func() error { _, err := logqueue.Open(logqueue.Options{Dir: dir, Log: quietLog()}); return err },
		"Check": func() error { _, err := logqueue.Check(logqueue.Options{Dir: dir, Log: quietLog()}); return err },
	} {
		err := open()
		if err == nil || !strings.Contains(err.Error(), "queue.db, a queue of an earlier switchboard version") ||
			!strings.Contains(err.Error(), "then move queue.db aside") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// One daemon per directory: a second Open fails at once, naming why.
func TestSecondOpenIsRefusedAtOnce(t *testing.T) {
	dir := t.TempDir()
	q, err := logqueue.Open(logqueue.Options{Dir: dir, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for name, open := range map[string]func() error{
		"Open":  func() error { _, err := logqueue.Open(logqueue.Options{Dir: dir, Log: quietLog()}); return err },
		"Check": func() error { _, err := logqueue.Check(logqueue.Options{Dir: dir, Log: quietLog()}); return err },
		"Salvage": func() error {
			_, err := logqueue.Salvage(logqueue.Options{Dir: dir, Log: quietLog()}, t.TempDir())
			return err
		},
	} {
		if err := open(); err == nil || !strings.Contains(err.Error(), "in use by") {
			t.Errorf("%s beside an open queue: %v", name, err)
		}
	}
}

// Something else where the lock file goes (a directory) stops the start
// with what to do, in Open and in the offline tools alike.
func TestLockFileInTheWay(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "LOCK"), 0o750); err != nil {
		t.Fatal(err)
	}
	want := "queue.dir " + dir + ": cannot take its lock file LOCK: is a directory; it holds no data: if it is not a file, remove it"
	for name, open := range map[string]func() error{
		"Open":  func() error { _, err := logqueue.Open(logqueue.Options{Dir: dir, Log: quietLog()}); return err },
		"Check": func() error { _, err := logqueue.Check(logqueue.Options{Dir: dir, Log: quietLog()}); return err },
	} {
		if err := open(); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v\nwant it to start with %q", name, err, want)
		}
	}
}
