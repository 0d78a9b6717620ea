package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/daemon/daemontest"
	"switchboard/router/natsqueue"
	"switchboard/router/natsqueue/natstest"
)

// The daemon on the shared queue: /readyz follows the NATS server, a
// webhook is answered 503 (never 200) while it is gone, and everything
// answered 200 is delivered.
func TestDaemonOnNATS(t *testing.T) {
	srv := natstest.RunServer(t)
	rc := daemontest.NewReceiver(t)
	f, err := config.Parse([]byte(`
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { driver: nats, nats: { url: "` + srv.URL + `" } }
sources:
  app: { type: generic, id_field: id }
sinks:
  crm: { type: http, url: "` + rc.URL + `", concurrency: 2, retry: { initial_interval: 50ms, max_interval: 100ms } }
rules:
  - { name: all, to: [crm] }
`))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := daemon.Build(f)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	q, err := natsqueue.Open(natsqueue.Options{URL: srv.URL, DedupWindow: time.Hour, Log: log, PublishTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := daemon.New(snap, q, log)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	hook, ready := "http://"+d.WebhookAddr()+"/hooks/app", "http://"+d.AdminAddr()+"/readyz"
	readyz := func() (int, map[string]any) { return daemontest.Send(t, http.MethodGet, ready, "") }

	if code, ans := daemontest.Post(t, hook, `{"event":"e","id":"1"}`); code != 200 || ans["status"] != "accepted" {
		t.Fatalf("post: %d %v", code, ans)
	}
	if code, ans := daemontest.Post(t, hook, `{"event":"e","id":"1"}`); code != 200 || ans["status"] != "duplicate" {
		t.Fatalf("retry: %d %v", code, ans)
	}
	if code, ans := readyz(); code != 200 {
		t.Fatalf("readyz: %d %v", code, ans)
	}
	srv.Stop()
	if code, ans := daemontest.Post(t, hook, `{"event":"e","id":"2"}`); code != 503 || !strings.Contains(ans["error"].(string), "cannot queue the event now") {
		t.Fatalf("post with NATS down: %d %v", code, ans)
	}
	daemontest.Eventually(t, "readyz 503", func() bool {
		code, ans := readyz()
		return code == 503 && ans["status"] == "queue not ready"
	})
	srv.Start()
	daemontest.Eventually(t, "readyz 200", func() bool { code, _ := readyz(); return code == 200 })
	if code, ans := daemontest.Post(t, hook, `{"event":"e","id":"2"}`); code != 200 || ans["status"] != "accepted" {
		t.Fatalf("post after NATS is back: %d %v", code, ans)
	}
	daemontest.Eventually(t, "both delivered", func() bool {
		got := strings.Join(rc.Got(), "\n")
		return strings.Contains(got, `"id":"1"`) && strings.Contains(got, `"id":"2"`)
	})
	if n := len(rc.Got()); n != 2 {
		t.Errorf("%d deliveries for 2 events", n)
	}
}
