package logqueue

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"switchboard/router"
)

// benchEvent is a 450-byte event like the load harness's: a Bird-shaped
// payload with a distinct id.
func benchEvent(id string) *router.Event {
	raw := []byte(`{"id":"` + id + `","callId":"3b4b5a2e-7f5e-4c34-9a3e-2f1b8c9d0e11","channel":"x0","from":"+31612345678",` +
		`"to":"+31687654321","status":"failed","direction":"outgoing","duration":12,"createdAt":"2026-11-23T07:00:00.123Z",` +
		`"updatedAt":"2026-11-23T07:00:12.456Z","reason":"no-answer","attempt":1}`)
	return &router.Event{ID: id, Source: "bird", Event: "voice.outbound", Status: "failed", Time: epoch,
		ReceivedAt: epoch, RawPayload: raw, Body: raw,
		Headers: map[string]string{"content-type": "application/json", "user-agent": "Bird-Webhooks/1.0"}}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEnqueue measures accepting events, each fsynced before Enqueue
// returns, with 1 writer and with 32 at once (group commit). cpu-us/op is
// the CPU the process spends per event, the figure the design compares.
//
// With fsync=off the disk's own cost is left out: what remains is the
// queue's CPU per event.
func BenchmarkEnqueue(b *testing.B) {
	for _, c := range []struct {
		writers int
		fs      FS
	}{{1, nil}, {32, nil}, {1, noSync{OS}}, {32, noSync{OS}}} {
		name := fmt.Sprintf("writers=%d", c.writers)
		if c.fs != nil {
			name += "/fsync=off"
		}
		writers := c.writers
		b.Run(name, func(b *testing.B) {
			q := open(b, Options{DedupWindow: time.Hour, FS: c.fs})
			sinks := []string{"crm"}
			var n atomic.Int64
			b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			cpu := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				batch := make([]router.Routed, 1)
				for pb.Next() {
					batch[0] = router.Routed{Event: benchEvent(strconv.FormatInt(n.Add(1), 10)), Sinks: sinks}
					if err := q.Enqueue(context.Background(), batch); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}

// noSync is the real file system without fsync.
type noSync struct{ FS }

func (n noSync) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := n.FS.OpenFile(name, flag, perm)
	return noSyncFile{f}, err
}

type noSyncFile struct{ File }

func (noSyncFile) Sync() error { return nil }

// BenchmarkNextDone measures handing a queued delivery to a worker and
// acknowledging it: from memory (the event accepted moments ago) and read
// back from disk (after a restart, or a deferred retry).
func BenchmarkNextDone(b *testing.B) {
	for _, from := range []string{"memory", "disk"} {
		b.Run(from, func(b *testing.B) {
			hot := int64(0)
			if from == "disk" {
				hot = -1
			}
			q := open(b, Options{HotBytes: hot})
			for i := 0; i < b.N; i += 1000 {
				var batch []router.Routed
				for j := i; j < min(i+1000, b.N); j++ {
					batch = append(batch, router.Routed{Event: benchEvent(strconv.Itoa(j)), Sinks: []string{"crm"}})
				}
				if err := q.Enqueue(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			cpu := cpuTime()
			b.ResetTimer()
			for range b.N {
				d, err := q.Next(context.Background(), "crm")
				if err != nil {
					b.Fatal(err)
				}
				q.Done(d)
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N)/1e3, "cpu-us/op")
		})
	}
}

// restartReport is what the child process measured.
type restartReport struct {
	Ready   time.Duration
	CPU     time.Duration
	PeakRSS int64 // bytes
	Heap    uint64
	Pending int
}

// A million pending deliveries (issue 12): a restart is ready in under
// 2 s and the whole process stays under 128 MB of RSS. The backlog is one
// that built up over longer than the dedup window, so that no ids are
// remembered: their cost is per id accepted within the window, measured
// by TestDedupMemoryPerID. Writing them takes a while and 600 MB of disk,
// so the test runs only when SWITCHBOARD_BIG_TESTS is set (CI sets it) and
// not under the race detector.
func TestMillionPendingRestart(t *testing.T) {
	if os.Getenv("SWITCHBOARD_BIG_TESTS") == "" || raceEnabled || testing.Short() {
		t.Skip("set SWITCHBOARD_BIG_TESTS=1 (without -race) to write a million deliveries and time a restart")
	}
	const total = 1_000_000
	dir := t.TempDir()
	q := open(t, Options{Dir: dir})
	start := time.Now()
	for i := 0; i < total; i += 2000 {
		batch := make([]router.Routed, 0, 2000)
		for j := i; j < i+2000; j++ {
			batch = append(batch, router.Routed{Event: benchEvent(strconv.Itoa(j)), Sinks: []string{"crm"}})
		}
		if err := q.Enqueue(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d deliveries in %v (%d MB on disk)", total, time.Since(start).Round(time.Millisecond), q.DiskBytes()>>20)
	// The restart in a process of its own, so that its memory is its own.
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestartChild$", "-test.v")
	cmd.Env = append(os.Environ(), "LOGQUEUE_RESTART_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var r restartReport
	i := strings.Index(string(out), "REPORT ")
	if i < 0 {
		t.Fatalf("child printed no report:\n%s", out)
	}
	json.Unmarshal([]byte(strings.SplitN(string(out[i+7:]), "\n", 2)[0]), &r)
	t.Logf("restart with %d pending: ready in %v (%v of CPU), peak RSS %d MB, heap %d MB",
		r.Pending, r.Ready.Round(time.Millisecond), r.CPU.Round(time.Millisecond), r.PeakRSS>>20, r.Heap>>20)
	if r.Pending != total {
		t.Errorf("%d pending after the restart, want %d", r.Pending, total)
	}
	// On a busy machine the wall clock says more about the neighbours
	// than about the restart: the CPU it took must be under 2 s, and so
	// must the wall clock unless others took the CPU meanwhile.
	if r.CPU > 2*time.Second || r.Ready > 2*time.Second && r.Ready < r.CPU*3/2 {
		t.Errorf("ready after %v (%v of CPU), want under 2 s", r.Ready, r.CPU)
	}
	if r.PeakRSS > 128<<20 {
		t.Errorf("peak RSS %d MB, want under 128 MB", r.PeakRSS>>20)
	}
}

// TestRestartChild is the restart half of TestMillionPendingRestart.
func TestRestartChild(t *testing.T) {
	dir := os.Getenv("LOGQUEUE_RESTART_DIR")
	if dir == "" {
		t.Skip("run by TestMillionPendingRestart")
	}
	start, cpu := time.Now(), cpuTime()
	q, err := Open(Options{Dir: dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := q.Next(ctx, "crm")
	if err != nil {
		t.Fatal(err)
	}
	ready, used := time.Since(start), cpuTime()-cpu
	q.Retry(d)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := restartReport{Ready: ready, CPU: used, PeakRSS: peakRSS(), Heap: ms.HeapInuse, Pending: q.Stats()["crm"][0]}
	b, _ := json.Marshal(r)
	fmt.Printf("REPORT %s\n", b)
	q.Close()
}

// peakRSS reads the process's high-water resident set size.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// What remembering an accepted id costs in memory: the README's figure.
func TestDedupMemoryPerID(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("measures memory; not under -race or -short")
	}
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var d dedup
	now := time.Now().Unix()
	for i := range n {
		d.add(dedupEntry{key: keyOf("bird", strconv.Itoa(i)), expiry: now + 86400, horizon: 86400}, now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapInuse-before.HeapInuse) / n
	t.Logf("%.0f bytes of memory per remembered id (%d ids)", per, d.n)
	if per > 64 {
		t.Errorf("%.0f bytes per remembered id; the README says about 26", per)
	}
	runtime.KeepAlive(&d)
}
