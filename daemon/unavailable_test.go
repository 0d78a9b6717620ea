package daemon

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"switchboard/config"
	"switchboard/router/logqueue"
)

// archiveDaemon returns a daemon (not started) with a generic source "app"
// routing everything to a file sink, on a queue opened with opts (Dir
// defaults to a temporary directory), and a function posting the event
// with id to the source through the webhook handler.
func archiveDaemon(t *testing.T, opts logqueue.Options) (*Daemon, *logqueue.Queue, func(id string) (int, string)) {
	t.Helper()
	f, err := config.Parse([]byte(`
sources:
  app: { type: generic }
sinks:
  archive: { type: file, path: ` + t.TempDir() + `/a.jsonl }
rules:
  - { name: all, to: [archive] }
`))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Build(f)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	q, err := logqueue.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	d := New(snap, q, slog.New(slog.NewTextHandler(io.Discard, nil)))
	post := func(id string) (int, string) {
		w := httptest.NewRecorder()
		d.serveWebhook(w, httptest.NewRequest(http.MethodPost, "/hooks/app", strings.NewReader(`{"event":"e","id":"`+id+`"}`)))
		return w.Code, w.Body.String()
	}
	return d, q, post
}

// When the queue cannot take an event, or the daemon is stopping, the
// provider is told to come back (503) and nothing is accepted.
func TestUnavailableAnswers503(t *testing.T) {
	d, q, post := archiveDaemon(t, logqueue.Options{})
	if code, body := post("1"); code != 200 {
		t.Fatalf("open queue: %d %s", code, body)
	}
	q.Close()
	if code, body := post("1"); code != 503 || !strings.Contains(body, `cannot queue the event now (queue is closed); retry later`) {
		t.Errorf("closed queue: %d %s", code, body)
	}
	d.draining.Store(true)
	if code, body := post("1"); code != 503 || !strings.Contains(body, "shutting down; retry later") {
		t.Errorf("draining: %d %s", code, body)
	}
}
