package natsqueue

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/router/natsqueue/natstest"
)

// deliverAll runs a sender on q for sink until ctx ends, recording every
// delivered event id.
func deliverAll(ctx context.Context, q *Queue, sink string, got *sync.Map, wg *sync.WaitGroup) {
	wg.Go(func() {
		for ctx.Err() == nil {
			d, err := q.Next(ctx, sink)
			if err != nil {
				continue
			}
			got.Store(d.Event.ID, true)
			q.Done(d)
		}
	})
}

// TestClusterLeaderLoss: two replicas on a three-server cluster with an R3
// stream, under load, lose the server leading the stream. Requests during
// the election may fail (503); every one that succeeded is delivered.
func TestClusterLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-server cluster through an election")
	}
	c := natstest.RunCluster(t, 3)
	r3 := func(o *Options) {
		o.Replicas = 3
		o.PublishTimeout = 3 * time.Second
		o.ConnectTimeout = 30 * time.Second
	}
	a, b := open(t, c.URL, r3), open(t, c.URL, r3)

	ctx, stop := context.WithCancel(context.Background())
	var delivered sync.Map
	var senders sync.WaitGroup
	for _, q := range []*Queue{a, b} {
		deliverAll(ctx, q, "crm", &delivered, &senders)
	}

	var (
		mu       sync.Mutex
		accepted []string
		failed   atomic.Int32
		loading  atomic.Bool
		loaders  sync.WaitGroup
	)
	loading.Store(true)
	for g := range 4 {
		q := []*Queue{a, b}[g%2]
		loaders.Go(func() {
			for n := 0; loading.Load(); n++ {
				id := fmt.Sprintf("g%d-%d", g, n)
				err := q.Enqueue(context.Background(), routed([]string{"crm"}, event("app", id)))
				if err != nil {
					failed.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				accepted = append(accepted, id)
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second)
	leader := c.StreamLeader("SWITCHBOARD")
	if leader == nil {
		t.Fatal("no stream leader")
	}
	mu.Lock()
	before := len(accepted)
	mu.Unlock()
	leader.Stop()
	t.Logf("stopped %s, the stream's leader, after %d events", leader.Name(), before)
	waitFor(t, 20*time.Second, "a new stream leader", func() bool { return c.StreamLeader("SWITCHBOARD") != nil })
	waitFor(t, 20*time.Second, "events accepted under the new leader", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) > before+10
	})
	leader.Start()
	time.Sleep(500 * time.Millisecond)
	loading.Store(false)
	loaders.Wait()

	mu.Lock()
	ids := append([]string(nil), accepted...)
	mu.Unlock()
	if len(ids) <= before {
		t.Fatalf("no event accepted after the leader was lost (%d before, %d in all)", before, len(ids))
	}
	deadline := time.Now().Add(30 * time.Second)
	var missing []string
	for {
		missing = missing[:0]
		for _, id := range ids {
			if _, ok := delivered.Load(id); !ok {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	senders.Wait()
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Fatalf("%d of %d accepted events never delivered: %v", len(missing), len(ids), missing[:min(len(missing), 20)])
	}
	t.Logf("%d events accepted (%d requests failed during the election), all delivered", len(ids), failed.Load())
}

// TestClusterReplicaLosesItsServer: the server a replica is connected to
// goes; the replica reconnects to another and goes on.
func TestClusterReplicaLosesItsServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-server cluster")
	}
	c := natstest.RunCluster(t, 3)
	q := open(t, c.Servers[0].URL+","+c.Servers[1].URL, func(o *Options) { o.Replicas = 3; o.ConnectTimeout = 30 * time.Second })
	enqueue(t, q, []string{"crm"}, event("app", "before"))
	c.Servers[0].Stop()
	waitFor(t, 20*time.Second, "an event accepted again", func() bool {
		return q.Enqueue(context.Background(), routed([]string{"crm"}, event("app", "after"))) == nil
	})
	waitFor(t, 10*time.Second, "ready", func() bool { return q.Ready() == nil })
	got := map[string]bool{}
	for range 2 {
		d := next(t, q, "crm", 20*time.Second)
		got[d.Event.ID] = true
		q.Done(d)
	}
	if !got["before"] || !got["after"] {
		t.Fatalf("delivered %v", got)
	}
}

// Replicas started together on a new cluster (a Deployment rolled out
// with its NATS cluster) set the streams up at once: the one that finds
// them made by the other uses them as they are. Updating a stream whose
// creation is still under way used to go unanswered for the whole 5s
// request timeout, twice, past the default 10s connect timeout.
func TestClusterReplicasStartTogether(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-server cluster")
	}
	c := natstest.RunCluster(t, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	took := make([]time.Duration, 3)
	for i := range errs {
		wg.Go(func() {
			start := time.Now()
			q, err := Open(Options{URL: c.URL, Replicas: 3, DedupWindow: time.Hour, Log: quiet, ConnectTimeout: 20 * time.Second})
			took[i], errs[i] = time.Since(start), err
			if err == nil {
				q.Close()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		if took[i] > 4*time.Second {
			t.Errorf("replica %d took %v to set the queue up", i, took[i])
		}
	}
}
