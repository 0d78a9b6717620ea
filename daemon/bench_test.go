package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/router"
	_ "switchboard/sinks/all"
	_ "switchboard/sources/all"
)

// benchBodies are the load harness's two event shapes; status and channel
// are filled in.
const (
	benchMOB   = `{"event":"whatsapp:message:status","payload":{"id":"a418d672","channel":"x%d","from":"919019120123","to":"919019912345","status":"%s","delivered_at":"2021-06-18T14:48:06.886358Z","processed_at":"2021-06-18T14:48:06.886358Z","timestamp":"2021-06-18T14:48:06.886358Z","error":{"code":null,"message":null},"bench_id":"b%d","bench_ts":1763600000123456789}}`
	benchVoice = `{"event":"voice.outbound","payload":{"callId":"c1","channel":"x%d","from":"+31612345678","to":"+31687654321","status":"%s","duration":12,"bench_id":"b%d","bench_ts":1763600000123456789}}`
)

// benchDaemon is a daemon for the config, not listening, on the durable
// queue in a temporary directory.
func benchDaemon(b *testing.B, yaml string) (*Daemon, *Snapshot, router.Queue) {
	b.Helper()
	f, err := config.Parse([]byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	snap, err := Build(f)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Queue.Dir = b.TempDir()
	q, err := OpenQueue(f, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	return New(snap, q, log), snap, q
}

// harnessConfig is the harness's scenario with n rules of the many-rules
// shape: rule i is `status == "failed" && payload.payload.channel == "x<i>"`
// (with one rule, just `status == "failed"`).
func harnessConfig(sinkURL string, n int) string {
	var rules strings.Builder
	if n == 1 {
		rules.WriteString("  - { name: failed, when: 'status == \"failed\"', to: [sink] }\n")
	} else {
		for i := range n {
			fmt.Fprintf(&rules, "  - { name: r%d, when: 'status == \"failed\" && payload.payload.channel == \"x%d\"', to: [sink] }\n", i, i)
		}
	}
	return `
sources:
  events: { type: generic, path: /events, status_field: payload.status, id_field: payload.bench_id }
sinks:
  sink: { type: http, url: "` + sinkURL + `" }
rules:
` + rules.String()
}

func post(b *testing.B, d *Daemon, body string) {
	req := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	d.serveWebhook(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("%d %s", w.Code, w.Body)
	}
}

// BenchmarkWebhook measures the per-request path of the load harness's
// scenario without the network: generic source, one rule, the durable
// queue in a temporary directory. Neither body matches the rule, so, like
// the harness's unrouted events, none is written to the queue (the cost of
// a write is in BenchmarkWebhookMatched).
//
// History is on, as by default: each event is recorded. With
// history=off the difference is the history's cost per event.
func BenchmarkWebhook(b *testing.B) {
	benchWebhook(b, harnessConfig("http://127.0.0.1:1/in", 1))
}

func BenchmarkWebhookHistoryOff(b *testing.B) {
	benchWebhook(b, harnessConfig("http://127.0.0.1:1/in", 1)+"history: { max_events: 0 }\n")
}

func benchWebhook(b *testing.B, yaml string) {
	d, _, _ := benchDaemon(b, yaml)
	bodies := []string{fmt.Sprintf(benchMOB, 0, "delivered", 1), fmt.Sprintf(benchVoice, 0, "completed", 2)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		post(b, d, bodies[i%2])
	}
}

// BenchmarkWebhookRules is the accept path with 1 and 1,000 rules, events
// spread over 1,000 channels, none failed: parsing and routing only. With
// the rule index the two cost the same.
func BenchmarkWebhookRules(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			d, _, _ := benchDaemon(b, harnessConfig("http://127.0.0.1:1/in", n))
			bodies := make([]string, 64)
			for i := range bodies {
				shape := benchMOB
				if i%2 == 1 {
					shape = benchVoice
				}
				bodies[i] = fmt.Sprintf(shape, i*7919%1000, "delivered", i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				post(b, d, bodies[i%len(bodies)])
			}
		})
	}
}

// BenchmarkWebhookMatched is the accept path when every event matches:
// each request is stored (fsync) before its answer. One request at a time,
// so every commit holds one event: the figure is the latency of a lone
// request, not the throughput of grouped commits.
func BenchmarkWebhookMatched(b *testing.B) {
	d, _, _ := benchDaemon(b, harnessConfig("http://127.0.0.1:1/in", 1))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		post(b, d, fmt.Sprintf(benchMOB, 0, "failed", i))
	}
}

// BenchmarkDelivery measures the delivery path: b.N deliveries queued
// beforehand, taken by the http sink's workers (the configured concurrency)
// and posted to a local receiver, each acknowledged in the queue. The
// figures include the in-process receiver's own work.
func BenchmarkDelivery(b *testing.B) {
	var got atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	defer rcv.Close()
	_, snap, q := benchDaemon(b, harnessConfig(rcv.URL, 1))
	var batch []router.Routed
	for i := range b.N {
		ev := &router.Event{ID: fmt.Sprint("b", i), Source: "events", Event: "whatsapp:message:status", Status: "failed",
			Time: time.Now(), ReceivedAt: time.Now(), RawPayload: []byte(fmt.Sprintf(benchMOB, 0, "failed", i))}
		if ev.Payload, _ = router.DecodeObject(ev.RawPayload); ev.Payload == nil {
			b.Fatal("bad payload")
		}
		batch = append(batch, router.Routed{Event: ev, Sinks: []string{"sink"}})
		if len(batch) == 1000 || i == b.N-1 {
			if err := q.Enqueue(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	s := snap.Sinks["sink"]
	w := &router.Worker{Name: "sink", Sink: s.Sink, Retry: s.Retry, Concurrency: s.Concurrency, Queue: q,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	b.ReportAllocs()
	b.ResetTimer()
	w.Start(context.Background())
	for got.Load() < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	w.Stop()
}
