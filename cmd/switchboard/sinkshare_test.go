package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSinkDownNeverFillsTheQueueForTheOthers: with a small queue.max_bytes
// and one of two sinks answering 503 (its retries far apart), every
// request is still answered 200 and the healthy sink gets every event: the
// down sink holds at most its half of max_bytes, and its new deliveries
// past that are dead letters saying so in `dlq list`. Once it is back and
// `dlq replay --all` has run, it gets every event too.
func TestSinkDownNeverFillsTheQueueForTheOthers(t *testing.T) {
	down := newReceiver(t, http.StatusServiceUnavailable)
	up := newReceiver(t, http.StatusOK)
	s := newSite(t, "max_bytes: 16KiB", genericSource+"sinks:\n"+
		fmt.Sprintf("  down: { type: http, url: %q, retry: { initial_interval: 2s, max_interval: 2s, max_attempts: 1000 } }\n", down.url())+
		httpSink("up", up.url(), "")+`rules:
  - name: both
    to: [down, up]
`)
	p := s.start()
	const n = 200
	ids := make([]string, n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				ids[i] = fmt.Sprint("share-", i)
				code, ans, err := s.post(genericEvent(ids[i]))
				if err != nil || code != http.StatusOK || ans["status"] != "accepted" {
					t.Errorf("post %s: %d %v %v; want 200 accepted", ids[i], code, ans, err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if missing := up.waitDelivered(ids, 15*time.Second); len(missing) > 0 {
		t.Fatalf("%d of %d events never reached the healthy sink", len(missing), n)
	}

	code, out, errOut := s.cli("dlq", "list")
	if code != 0 {
		t.Fatalf("dlq list: exit %d: %s", code, errOut)
	}
	rows := parseDLQList(t, out)
	dead := map[string]bool{}
	for _, r := range rows {
		if r.sink != "down" || !strings.HasPrefix(r.lastError, "backlog full: this sink's share of queue.max_bytes (8192 bytes: 16384 over 2 sinks) already holds ") {
			t.Errorf("dead letter %+v; want down's, past its share of queue.max_bytes", r)
		}
		dead[r.eventID] = true
	}
	t.Logf("down: %d dead letters, %d queued", len(rows), n-len(rows))
	if len(rows) < n/2 {
		t.Errorf("%d dead letters; with 16KiB shared by 2 sinks most of %d events cannot wait for down", len(rows), n)
	}
	if strings.Count(p.logs.String(), "sink backlog full") == 0 {
		t.Error("no warning that down's backlog is full")
	}
	waitFor(t, 10*time.Second, `switchboard_dead_letters{sink="down"} counts them`, func() bool {
		v, ok := s.metric(`switchboard_dead_letters{sink="down"}`)
		return ok && int(v) == len(rows)
	})

	// down is back: its queued deliveries go at their next attempt, the
	// replayed ones at once.
	down.setStatus(http.StatusOK)
	code, out, errOut = s.cli("dlq", "replay", "--all")
	if code != 0 {
		t.Fatalf("dlq replay --all: exit %d: %s %s", code, out, errOut)
	}
	if missing := down.waitDelivered(ids, 20*time.Second); len(missing) > 0 {
		t.Fatalf("after replay %d events never reached down, e.g. %v", len(missing), missing[0])
	}
	got := down.delivered()
	for _, id := range ids {
		if h := len(up.hitsFor(id)); h != 1 || got[id] != 1 {
			t.Errorf("%s delivered %d times to up and %d to down, want once each", id, h, got[id])
		}
	}
	if left := s.deadLetters(); len(left) != 0 {
		t.Errorf("%d dead letters left after the replay", len(left))
	}
}
