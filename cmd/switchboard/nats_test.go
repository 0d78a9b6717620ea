package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/router/natsqueue/natstest"
)

// Replicas of the real binary sharing one JetStream queue, with the NATS
// servers running in the test process.

// newReplicas writes n configs that differ only in their listen addresses
// and share the queue at natsURL (queue settings in natsExtra, e.g.
// "replicas: 3").
func newReplicas(t *testing.T, n int, natsURL, natsExtra, body string) []*site {
	t.Helper()
	if natsExtra != "" {
		natsExtra = ", " + natsExtra
	}
	queue := fmt.Sprintf("driver: nats, nats: { url: %q, ack_wait: 2s%s }", natsURL, natsExtra)
	out := make([]*site, n)
	for i := range out {
		out[i] = newSite(t, queue, body)
	}
	return out
}

// loader posts new events to the replicas in turn from several goroutines
// and records which ids were answered 200 and which were refused.
type loader struct {
	mu       sync.Mutex
	accepted []string
	refused  []string
	stop     atomic.Bool
	wg       sync.WaitGroup
}

func startLoad(sites []*site, goroutines int) *loader {
	l := &loader{}
	for g := range goroutines {
		l.wg.Go(func() {
			for n := 0; !l.stop.Load(); n++ {
				id := fmt.Sprintf("g%d-%d", g, n)
				s := sites[(g+n)%len(sites)]
				code, ans, err := s.post(genericEvent(id))
				l.mu.Lock()
				if err == nil && code == http.StatusOK && ans["status"] == "accepted" {
					l.accepted = append(l.accepted, id)
				} else {
					l.refused = append(l.refused, fmt.Sprintf("%s: %d %v %v", id, code, ans, err))
				}
				l.mu.Unlock()
				if code != http.StatusOK {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	return l
}

func (l *loader) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accepted)
}

func (l *loader) finish() (accepted, refused []string) {
	l.stop.Store(true)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.accepted...), append([]string(nil), l.refused...)
}

// mustDeliver fails the test unless every id arrives within the bound.
func mustDeliver(t *testing.T, rc *receiver, ids []string, within time.Duration) {
	t.Helper()
	if missing := rc.waitDelivered(ids, within); len(missing) > 0 {
		sort.Strings(missing)
		t.Fatalf("%d of %d events answered 200 never arrived: %v", len(missing), len(ids), missing[:min(len(missing), 20)])
	}
}

const natsRules = `rules:
  - name: everything
    to: [crm]
`

// Two replicas under load share one stream: every accepted id is
// delivered, and exactly once when nobody dies; both replicas deliver.
func TestNATSReplicasShareTheQueue(t *testing.T) {
	srv := natstest.RunServer(t)
	rc := newReceiver(t, http.StatusOK)
	sites := newReplicas(t, 2, srv.URL, "", genericSource+"sinks:\n"+httpSink("crm", rc.url(), "concurrency: 4")+natsRules)
	for _, s := range sites {
		s.start()
	}
	l := startLoad(sites, 8)
	waitFor(t, 20*time.Second, "300 events accepted", func() bool { return l.count() >= 300 })
	ids, refused := l.finish()
	if len(refused) > 0 {
		t.Errorf("%d posts refused, e.g. %s", len(refused), refused[0])
	}
	mustDeliver(t, rc, ids, 30*time.Second)
	for id, n := range rc.delivered() {
		if n > 1 {
			t.Errorf("%s delivered %d times with no replica down", id, n)
		}
	}
	for i, s := range sites {
		waitFor(t, 5*time.Second, "delivery metrics", func() bool {
			v, _ := s.metric(`switchboard_deliveries_total{outcome="success",sink="crm"}`)
			return v > 0
		})
		v, _ := s.metric(`switchboard_deliveries_total{outcome="success",sink="crm"}`)
		t.Logf("replica %d delivered %.0f", i, v)
	}
	t.Logf("%d events accepted by 2 replicas, each delivered once", len(ids))
}

// kill -9 of a replica in the middle of deliveries: what it was sending
// goes to the other replica after the ack deadline (2s here); nothing
// answered 200 is lost.
func TestNATSKill9ReplicaMidDelivery(t *testing.T) {
	srv := natstest.RunServer(t)
	rc := newReceiver(t, http.StatusOK)
	rc.answer = func(w http.ResponseWriter, r *http.Request, n int) int {
		time.Sleep(100 * time.Millisecond) // a slow receiver: deliveries are in flight at the kill
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	sites := newReplicas(t, 2, srv.URL, "", genericSource+"sinks:\n"+httpSink("crm", rc.url(), "concurrency: 4")+natsRules)
	victim := sites[0].start()
	sites[1].start()
	l := startLoad(sites[1:], 4) // webhooks go to the survivor; both deliver
	waitFor(t, 20*time.Second, "300 events accepted", func() bool { return l.count() >= 300 })
	ids, refused := l.finish()
	waitFor(t, 10*time.Second, "the victim sending", func() bool {
		v, _ := sites[0].metric(`switchboard_deliveries_total{outcome="success",sink="crm"}`)
		return v > 5
	})
	victim.kill9()
	killedAt := time.Now()
	if len(refused) > 0 {
		t.Errorf("%d posts to the surviving replica refused, e.g. %s", len(refused), refused[0])
	}
	mustDeliver(t, rc, ids, 30*time.Second)
	// The requests the kill cut short (the receiver saw its sender go)
	// were made again by the survivor.
	var cut []string
	rc.mu.Lock()
	for _, h := range rc.hits {
		if h.status == 0 {
			cut = append(cut, h.id)
		}
	}
	rc.mu.Unlock()
	if len(cut) == 0 {
		t.Error("no delivery was in flight at the kill; the test proves less than it says")
	}
	mustDeliver(t, rc, cut, time.Second)
	dups := 0
	for _, n := range rc.delivered() {
		dups += n - 1
	}
	t.Logf("%d events accepted; all delivered %v after the kill, the %d cut short by it included; %d delivered twice",
		len(ids), time.Since(killedAt).Round(100*time.Millisecond), len(cut), dups)
	if dups > 8 {
		t.Errorf("%d duplicates; at most the victim's in-flight and pulled deliveries (2 x concurrency 4) may repeat", dups)
	}
}

// Stopping the NATS server that leads the stream, under load: requests
// during the election get 503, never 200 for an event not stored, and
// every id answered 200 is delivered.
func TestNATSStreamLeaderStopped(t *testing.T) {
	c := natstest.RunCluster(t, 3)
	rc := newReceiver(t, http.StatusOK)
	sites := newReplicas(t, 2, c.URL, "replicas: 3", genericSource+"sinks:\n"+httpSink("crm", rc.url(), "concurrency: 4")+natsRules)
	for _, s := range sites {
		s.start()
	}
	l := startLoad(sites, 8)
	waitFor(t, 20*time.Second, "200 events accepted", func() bool { return l.count() >= 200 })
	leader := c.StreamLeader("SWITCHBOARD")
	if leader == nil {
		t.Fatal("no stream leader")
	}
	before := l.count()
	leader.Stop()
	waitFor(t, 30*time.Second, "events accepted again", func() bool { return l.count() > before+200 })
	ids, refused := l.finish()
	for _, r := range refused {
		if !strings.Contains(r, ": 503 ") {
			t.Errorf("refused other than with 503: %s", r)
			break
		}
	}
	mustDeliver(t, rc, ids, 60*time.Second)
	t.Logf("stopped %s after %d events; %d accepted in all, %d answered 503 during the election; all delivered",
		leader.Name(), before, len(ids), len(refused))
}

// Dead letters are shared: a delivery that died on one replica is listed,
// shown and replayed from the other, and a provider's retry sent to the
// other replica is answered duplicate.
func TestNATSDeadLettersAndRetriesAcrossReplicas(t *testing.T) {
	srv := natstest.RunServer(t)
	rc := newReceiver(t, http.StatusBadRequest) // permanent: straight to the dead letters
	sites := newReplicas(t, 2, srv.URL, "", genericSource+"sinks:\n"+httpSink("crm", rc.url(), "")+natsRules)
	a, b := sites[0], sites[1]
	pa, pb := a.start(), b.start()
	a.mustAccept("d1", "accepted")
	b.mustAccept("d1", "duplicate")
	a.mustAccept("d2", "accepted")
	var list []map[string]any
	waitFor(t, 10*time.Second, "two dead letters", func() bool { list = b.deadLetters(); return len(list) == 2 })
	code, out, errOut := b.cli("dlq", "list")
	if code != 0 || !strings.Contains(out, "d1") || !strings.Contains(out, "400") {
		t.Fatalf("dlq list on the other replica: %d %s %s", code, out, errOut)
	}
	// d1's own dead letter: d1 and d2 die at about the same time, in
	// either order, as two workers deliver them at once.
	var id string
	for _, dl := range list {
		if dl["event_id"] == "d1" {
			id = fmt.Sprint(dl["id"])
		}
	}
	code, out, errOut = b.cli("dlq", "show", id)
	if code != 0 || !strings.Contains(out, `"event_id": "d1"`) || !strings.Contains(out, `"payload"`) {
		t.Fatalf("dlq show %s: %d %s %s", id, code, out, errOut)
	}
	rc.setStatus(http.StatusOK)
	code, out, errOut = b.cli("dlq", "replay", "--all")
	if code != 0 || !strings.Contains(out, "replayed 2 dead letters") {
		t.Fatalf("dlq replay --all: %d %s %s", code, out, errOut)
	}
	mustDeliver(t, rc, []string{"d1", "d2"}, 10*time.Second)
	if l := a.deadLetters(); len(l) != 0 {
		t.Errorf("%d dead letters left after replay", len(l))
	}
	// With the daemons stopped, the CLI works on the shared queue itself.
	rc.setStatus(http.StatusBadRequest)
	a.mustAccept("d3", "accepted")
	waitFor(t, 10*time.Second, "a dead letter", func() bool { return len(a.deadLetters()) == 1 })
	pa.term()
	pb.term()
	code, out, errOut = b.cli("dlq", "list")
	if code != 0 || !strings.Contains(out, "d3") {
		t.Fatalf("dlq list with no daemon running: %d %s %s", code, out, errOut)
	}
	code, out, errOut = a.cli("dlq", "purge", "--all")
	if code != 0 || !strings.Contains(out, "purged 1 dead letter") {
		t.Fatalf("dlq purge --all with no daemon running: %d %s %s", code, out, errOut)
	}
}

// The shipped configs for the nats driver check, and `check` warns about a
// stream kept by one server only.
func TestNATSExampleConfigsCheck(t *testing.T) {
	t.Setenv("BIRD_SIGNING_KEY", "example-secret-value-0123456789")
	t.Setenv("PUBLIC_URL", "https://hooks.example.com")
	t.Setenv("CRM_URL", "https://crm.example.com/in")
	t.Setenv("SINK_URL", "http://127.0.0.1:9100/in")
	t.Setenv("ADMIN_TOKEN", "example-admin-token-0123456789")
	for _, tc := range []struct{ file, warning string }{
		{"../../examples/kubernetes/nats/switchboard.yaml", ""},
		{"../../examples/bench/switchboard-nats.yaml", "warning: queue.nats.replicas: is 1:"},
	} {
		code, out, _ := run(t, "", "check", "-c", tc.file)
		if code != 0 {
			t.Errorf("check %s: exit %d\n%s", tc.file, code, out)
		}
		if tc.warning == "" && strings.Contains(out, "warning") || tc.warning != "" && !strings.Contains(out, tc.warning) {
			t.Errorf("check %s: want warning %q, got:\n%s", tc.file, tc.warning, out)
		}
	}
}
