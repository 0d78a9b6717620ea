package logqueue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/router"
)

// Everything at once, as a busy daemon does it: producers racing with the
// same ids, several workers per sink succeeding, retrying and dead-lettering,
// replays, listings and housekeeping (with compaction over tiny segments).
// Each id is accepted once, and each accepted delivery is made exactly once
// (no crash here, so no duplicates).
func TestEverythingConcurrently(t *testing.T) {
	producers, ids := 8, 400
	if testing.Short() {
		ids = 100
	}
	q := open(t, Options{SegmentSize: 8 << 10, DedupWindow: time.Hour})
	sinks := []string{"a", "b"}
	var accepted sync.Map // id -> true
	var acceptedN atomic.Int64
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(p), 1))
			for i := range ids {
				// Producers overlap: every id is sent by two of them.
				id := fmt.Sprint("s", (p/2)*ids+i)
				b := []router.Routed{{Event: event("app", id), Sinks: sinks}}
				if rnd.IntN(10) == 0 {
					b = append(b, router.Routed{Event: event("app", id+"-nowhere")})
				}
				if err := q.Enqueue(context.Background(), b); err != nil {
					t.Error(err)
					return
				}
				if !b[0].Duplicate {
					if _, dup := accepted.LoadOrStore(id, true); dup {
						t.Errorf("%s accepted twice", id)
					}
					acceptedN.Add(1)
				}
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	done := map[string]int{}
	var doneN atomic.Int64
	var workers sync.WaitGroup
	for _, sink := range sinks {
		for w := range 3 {
			workers.Go(func() {
				rnd := rand.New(rand.NewPCG(uint64(w), 2))
				for {
					d, err := q.Next(ctx, sink)
					if err != nil {
						return
					}
					d.Attempts++
					switch r := rnd.IntN(10); {
					case r < 7:
						mu.Lock()
						done[sink+"/"+d.Event.ID]++
						mu.Unlock()
						q.Done(d)
						doneN.Add(1)
					case r < 9:
						d.NotBefore, d.LastError = time.Now().Add(time.Duration(rnd.IntN(3))*time.Millisecond), "503"
						q.Retry(d)
					default:
						d.LastError = "permanent failure"
						q.Dead(d)
					}
				}
			})
		}
	}
	var chores sync.WaitGroup
	chores.Go(func() {
		for ctx.Err() == nil {
			q.Replay(nil)
			listDead(q)
			q.Stats()
			q.OldestPending(time.Now())
			time.Sleep(10 * time.Millisecond)
		}
	})
	chores.Go(func() {
		for ctx.Err() == nil {
			q.barrierOp(func() error {
				q.housekeeping(false)
				for q.w.compSeg != 0 {
					q.compactStep()
				}
				return nil
			})
			time.Sleep(15 * time.Millisecond)
		}
	})
	wg.Wait()
	want := acceptedN.Load() * int64(len(sinks))
	if acceptedN.Load() != int64(producers/2*ids) {
		t.Errorf("%d ids accepted, want %d", acceptedN.Load(), producers/2*ids)
	}
	deadline := time.Now().Add(60 * time.Second)
	for doneN.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	workers.Wait()
	chores.Wait()
	if doneN.Load() != want {
		t.Fatalf("%d deliveries made, want %d", doneN.Load(), want)
	}
	mu.Lock()
	defer mu.Unlock()
	accepted.Range(func(k, _ any) bool {
		for _, sink := range sinks {
			if n := done[sink+"/"+k.(string)]; n != 1 {
				t.Errorf("%s delivered to %s %d times", k, sink, n)
			}
		}
		return true
	})
	if err := q.checkInvariants(); err != nil {
		t.Error(err)
	}
	eventually(t, "the last acks", func() bool { p, d := q.StoredBytes(); return p == 0 && d == 0 })
	q = reopen(t, q)
	if p, d := q.StoredBytes(); p != 0 || d != 0 {
		t.Errorf("after a restart %d pending and %d dead bytes remain", p, d)
	}
}
