package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDuplicateAcceptIsNotRoutedAgain: a provider's retry of an accepted
// event is answered 200 "duplicate" and not delivered again, also after a
// restart.
func TestDuplicateAcceptIsNotRoutedAgain(t *testing.T) {
	rc := newReceiver(t, http.StatusOK)
	// One delivery at a time, in order: once a later event has arrived, a
	// second delivery of an earlier one would have arrived before it.
	s := newSite(t, "", genericSource+"sinks:\n"+httpSink("crm", rc.url(), "concurrency: 1")+`rules:
  - name: everything
    to: [crm]
`)
	p := s.start()
	s.mustAccept("dup-1", "accepted")
	s.mustAccept("dup-1", "duplicate")
	s.mustAccept("marker-1", "accepted")
	if missing := rc.waitDelivered([]string{"dup-1", "marker-1"}, 10*time.Second); len(missing) > 0 {
		t.Fatalf("not delivered: %v", missing)
	}
	if n := len(rc.hitsFor("dup-1")); n != 1 {
		t.Errorf("dup-1 delivered %d times, want 1", n)
	}

	// A provider retrying before its first attempt was answered: the
	// copies arrive together and share one group commit.
	const copies = 8
	answers := make([]string, copies)
	var wg sync.WaitGroup
	for i := range copies {
		wg.Go(func() {
			code, ans, err := s.post(genericEvent("dup-burst"))
			if err != nil || code != http.StatusOK {
				t.Errorf("post dup-burst: %d %v %v", code, ans, err)
			}
			answers[i], _ = ans["status"].(string)
		})
	}
	wg.Wait()
	sort.Strings(answers)
	if want := "accepted" + strings.Repeat(" duplicate", copies-1); strings.Join(answers, " ") != want {
		t.Errorf("%d concurrent posts of one id answered %v; want one accepted, the rest duplicate", copies, answers)
	}
	s.mustAccept("marker-burst", "accepted")
	if missing := rc.waitDelivered([]string{"marker-burst"}, 10*time.Second); len(missing) > 0 {
		t.Fatalf("not delivered: %v", missing)
	}
	if n := len(rc.hitsFor("dup-burst")); n != 1 {
		t.Errorf("dup-burst, posted %d times at once, delivered %d times; want 1", copies, n)
	}

	if code := p.term(); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}

	s.start()
	s.mustAccept("dup-1", "duplicate")
	s.mustAccept("marker-1", "duplicate")
	s.mustAccept("marker-2", "accepted")
	if missing := rc.waitDelivered([]string{"marker-2"}, 10*time.Second); len(missing) > 0 {
		t.Fatalf("not delivered: %v", missing)
	}
	if n := len(rc.hitsFor("dup-1")); n != 1 {
		t.Errorf("after restart: dup-1 delivered %d times, want 1", n)
	}
	if n := len(rc.hitsFor("marker-1")); n != 1 {
		t.Errorf("after restart: marker-1 delivered %d times, want 1", n)
	}
}

// TestQueueFullAnswers503: past queue.max_bytes sources answer 503 (the
// provider retries later) and nothing that was answered 200 is lost.
func TestQueueFullAnswers503(t *testing.T) {
	rc := newReceiver(t, http.StatusServiceUnavailable)
	s := newSite(t, "max_bytes: 2KiB", genericSource+"sinks:\n"+httpSink("crm", rc.url(), "")+`rules:
  - name: everything
    to: [crm]
`)
	s.start()
	var accepted []string
	full := 0
	for i := range 40 {
		id := fmt.Sprint("q-", i)
		code, ans, err := s.post(genericEvent(id))
		if err != nil {
			t.Fatalf("post %s: %v", id, err)
		}
		switch code {
		case http.StatusOK:
			if full > 0 {
				t.Errorf("post %s answered 200 after the queue was full, with the sink still down", id)
			}
			accepted = append(accepted, id)
		case http.StatusServiceUnavailable:
			msg, _ := ans["error"].(string)
			if !strings.Contains(msg, "queue") {
				t.Errorf("503 answer %v does not mention the queue", ans)
			}
			full++
		default:
			t.Fatalf("post %s: %d %v", id, code, ans)
		}
	}
	if len(accepted) == 0 || full == 0 {
		t.Fatalf("%d accepted, %d refused with max_bytes 2KiB; want some of each", len(accepted), full)
	}
	t.Logf("%d events accepted before the 2KiB queue was full, %d refused", len(accepted), full)

	rc.setStatus(http.StatusOK)
	if missing := rc.waitDelivered(accepted, 10*time.Second); len(missing) > 0 {
		t.Fatalf("accepted but never delivered: %v", missing)
	}
	// Delivered events free their room: the provider's retry now gets in.
	var code int
	waitFor(t, 10*time.Second, "the queue to take events again", func() bool {
		code, _, _ = s.post(genericEvent("q-after"))
		return code == http.StatusOK
	})
	if missing := rc.waitDelivered([]string{"q-after"}, 10*time.Second); len(missing) > 0 {
		t.Fatalf("not delivered: %v", missing)
	}
}

// TestLongOutageDoesNotSlowHealthySink: a sink that is down grows its own
// backlog; the healthy sink named by the same rule gets every event
// promptly.
func TestLongOutageDoesNotSlowHealthySink(t *testing.T) {
	down := newReceiver(t, http.StatusServiceUnavailable)
	up := newReceiver(t, http.StatusOK)
	s := newSite(t, "", genericSource+"sinks:\n"+httpSink("down", down.url(), "")+httpSink("up", up.url(), "")+`rules:
  - name: both
    to: [down, up]
`)
	s.start()
	const n = 300
	ids := make([]string, n)
	sent := make([]time.Time, n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				ids[i] = fmt.Sprint("o-", i)
				sent[i] = time.Now()
				code, ans, err := s.post(genericEvent(ids[i]))
				if err != nil || code != http.StatusOK {
					t.Errorf("post %s: %d %v %v", ids[i], code, ans, err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if missing := up.waitDelivered(ids, 15*time.Second); len(missing) > 0 {
		t.Fatalf("%d of %d events never reached the healthy sink while the other was down", len(missing), n)
	}
	lat := make([]time.Duration, n)
	for i, id := range ids {
		h := up.hitsFor(id)
		lat[i] = h[0].at.Sub(sent[i])
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("healthy sink: post-to-arrival p50 %v, p99 %v, max %v; down sink got %d failed attempts",
		lat[n/2].Round(time.Microsecond), lat[n*99/100].Round(time.Microsecond), lat[n-1].Round(time.Microsecond), down.requests())
	if len(down.delivered()) > 0 {
		t.Errorf("the down sink reports deliveries")
	}

	// The backlog is visible, and only the down sink's; the gauge
	// refreshes every 2s.
	var depthDown, depthUp float64
	waitFor(t, 10*time.Second, `switchboard_queue_depth{sink="down"} > 0 and {sink="up"} == 0`, func() bool {
		var okDown, okUp bool
		depthDown, okDown = s.metric(`switchboard_queue_depth{sink="down"}`)
		depthUp, okUp = s.metric(`switchboard_queue_depth{sink="up"}`)
		return okDown && depthDown > 0 && okUp && depthUp == 0
	})
	t.Logf("queue depth: down %v, up %v", depthDown, depthUp)
	if down.requests() == 0 {
		t.Error("the down sink was never attempted")
	}
}

// TestRetryScheduleAndClassification drives each kind of failure through
// the binary: 429 with Retry-After, 500, 400 and a receiver slower than the
// sink's timeout.
func TestRetryScheduleAndClassification(t *testing.T) {
	ra := newReceiver(t, 0)
	ra.answer = func(w http.ResponseWriter, r *http.Request, n int) int {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return http.StatusTooManyRequests
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	five := newReceiver(t, 0)
	five.answer = func(w http.ResponseWriter, r *http.Request, n int) int {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return http.StatusInternalServerError
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	bad := newReceiver(t, http.StatusBadRequest)
	slow := newReceiver(t, 0)
	slow.answer = func(w http.ResponseWriter, r *http.Request, n int) int {
		if n == 1 {
			select { // longer than the sink's timeout
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	s := newSite(t, "", genericSource+"sinks:\n"+
		httpSink("ratelimited", ra.url(), "")+
		httpSink("flaky", five.url(), "")+
		httpSink("rejecting", bad.url(), "")+
		httpSink("slow", slow.url(), "timeout: 100ms")+`rules:
  - name: everything
    to: [ratelimited, flaky, rejecting, slow]
`)
	s.start()
	s.mustAccept("r-1", "accepted")
	for _, rc := range []*receiver{ra, five, slow} {
		if missing := rc.waitDelivered([]string{"r-1"}, 10*time.Second); len(missing) > 0 {
			t.Fatalf("%s: never delivered", rc.url())
		}
	}
	var dead []map[string]any
	waitFor(t, 10*time.Second, "the 400's dead letter", func() bool { dead = s.deadLetters(); return len(dead) > 0 })
	time.Sleep(300 * time.Millisecond) // room for a wrong extra attempt to show

	h := ra.hitsFor("r-1")
	if len(h) != 2 || h[0].status != 429 || h[1].status != 200 {
		t.Errorf("429 + Retry-After: receiver saw %+v, want 429 then one 200", h)
	} else if gap := h[1].at.Sub(h[0].at); gap < time.Second {
		t.Errorf("429 with Retry-After: 1 retried after %v, want at least 1s (max_interval is 200ms but must not cap it)", gap)
	} else {
		t.Logf("429 + Retry-After: 1 -> retried after %v", gap.Round(time.Millisecond))
	}
	if h := five.hitsFor("r-1"); len(h) != 2 || h[0].status != 500 || h[1].status != 200 {
		t.Errorf("500: receiver saw %+v, want 500 then one 200", h)
	}
	if h := bad.hitsFor("r-1"); len(h) != 1 || h[0].status != 400 {
		t.Errorf("400: receiver saw %+v, want exactly one attempt", h)
	}
	if h := slow.hitsFor("r-1"); len(h) != 2 || h[0].status != 0 || h[1].status != 200 {
		t.Errorf("timeout: receiver saw %+v, want one request abandoned by the sender, then one 200", h)
	}
	if len(dead) != 1 {
		t.Fatalf("dead letters = %v, want only the 400's", dead)
	}
	dl := dead[0]
	msg, _ := dl["last_error"].(string)
	if dl["sink"] != "rejecting" || dl["event_id"] != "r-1" || dl["attempts"] != float64(1) || !strings.Contains(msg, "400") {
		t.Errorf("dead letter = %v; want sink rejecting, event r-1, 1 attempt, error with 400", dl)
	}
	for _, sink := range []string{"ratelimited", "flaky", "slow"} {
		if v, ok := s.metric(`switchboard_deliveries_total{outcome="retry",sink="` + sink + `"}`); !ok || v != 1 {
			t.Errorf("deliveries retried for %s = %v (%v), want 1", sink, v, ok)
		}
	}
}
