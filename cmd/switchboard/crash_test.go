package main

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrashKill9LosesNothing is DESIGN.md's delivery guarantee under a
// crash: the real binary takes concurrent load while its sink is down, is
// killed with SIGKILL mid-stream, and restarted with the sink up. Every id
// that was answered 200 must arrive; duplicates are allowed (deliveries in
// flight at the crash, and events whose answer the crash swallowed).
func TestCrashKill9LosesNothing(t *testing.T) {
	rc := newReceiver(t, http.StatusServiceUnavailable) // the sink is down
	s := newSite(t, "", genericSource+"sinks:\n"+httpSink("crm", rc.url(), "")+`rules:
  - name: everything
    to: [crm]
`)
	p := s.start()

	const posters = 8
	var (
		mu       sync.Mutex
		accepted []string
		killing  atomic.Bool // from here on, failed posts are expected
		stop     atomic.Bool // the daemon is dead: stop posting
		refused  atomic.Int32
		wg       sync.WaitGroup
	)
	for g := range posters {
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				id := fmt.Sprintf("g%d-%d", g, n)
				code, ans, err := s.post(genericEvent(id))
				switch {
				case err != nil || code != http.StatusOK:
					if !killing.Load() {
						refused.Add(1)
						t.Logf("post %s before the kill: %d %v %v", id, code, ans, err)
					}
				case ans["status"] != "accepted" || ans["id"] != id:
					t.Errorf("post %s: answer %v", id, ans)
				default:
					mu.Lock()
					accepted = append(accepted, id)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	killing.Store(true)
	p.kill9() // while the posters are still sending
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	ids := append([]string(nil), accepted...)
	mu.Unlock()
	if len(ids) < 50 {
		t.Fatalf("only %d events accepted in 1.5s; the test proves nothing", len(ids))
	}
	if n := refused.Load(); n > 0 {
		t.Errorf("%d posts failed before the kill", n)
	}
	if n := len(rc.delivered()); n > 0 {
		t.Fatalf("%d events delivered while the sink answered 503", n)
	}
	attempts := rc.requests()

	rc.setStatus(http.StatusOK)
	s.start()
	start := time.Now()
	missing := rc.waitDelivered(ids, 30*time.Second)
	took := time.Since(start)
	if len(missing) > 0 {
		sort.Strings(missing)
		if len(missing) > 20 {
			missing = append(missing[:20], "...")
		}
		t.Fatalf("%d of %d events answered 200 never arrived after the restart: %v", len(missing), len(ids), missing)
	}
	got := rc.delivered()
	dups, extra := 0, 0
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	for id, n := range got {
		dups += n - 1
		if !want[id] {
			extra++ // accepted, but the kill swallowed the answer
		}
	}
	t.Logf("%d events answered 200 before the kill (%d failed attempts while the sink was down); all delivered %v after restart; %d duplicates; %d delivered events whose 200 was lost to the kill",
		len(ids), attempts, took.Round(time.Millisecond), dups, extra)
}
