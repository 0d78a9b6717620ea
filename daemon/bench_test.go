package daemon

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"switchboard/config"
	_ "switchboard/sinks/all"
	_ "switchboard/sources/all"
)

// BenchmarkWebhook measures the per-request path of the load harness's
// scenario without the network: generic source, one rule, the durable
// queue in a temporary directory. Neither body matches the rule, so, like
// the harness's unrouted events, none is written to the queue (the cost of
// a write is measured in router/logqueue).
func BenchmarkWebhook(b *testing.B) {
	f, err := config.Parse([]byte(`
sources:
  events: { type: generic, path: /events, status_field: payload.status, id_field: payload.bench_id }
sinks:
  sink: { type: http, url: "http://127.0.0.1:1/in" }
rules:
  - { name: failed, when: 'status == "failed"', to: [sink] }
`))
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
	defer q.Close()
	d := New(snap, q, log)
	bodies := []string{
		`{"event":"whatsapp:message:status","payload":{"id":"a418d672","channel":"x0","from":"919019120123","to":"919019912345","status":"delivered","delivered_at":"2021-06-18T14:48:06.886358Z","processed_at":"2021-06-18T14:48:06.886358Z","timestamp":"2021-06-18T14:48:06.886358Z","error":{"code":null,"message":null},"bench_id":"b1","bench_ts":1763600000123456789}}`,
		`{"event":"voice.outbound","payload":{"callId":"c1","channel":"x0","from":"+31612345678","to":"+31687654321","status":"completed","duration":12,"bench_id":"b2","bench_ts":1763600000123456789}}`,
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(bodies[i%2]))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		d.serveWebhook(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
