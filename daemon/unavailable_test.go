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

// When the queue cannot take an event, or the daemon is stopping, the
// provider is told to come back (503) and nothing is accepted.
func TestUnavailableAnswers503(t *testing.T) {
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
	q, err := logqueue.Open(logqueue.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	d := New(snap, q, slog.New(slog.NewTextHandler(io.Discard, nil)))
	post := func() (int, string) {
		w := httptest.NewRecorder()
		d.serveWebhook(w, httptest.NewRequest(http.MethodPost, "/hooks/app", strings.NewReader(`{"event":"e","id":"1"}`)))
		return w.Code, w.Body.String()
	}
	if code, body := post(); code != 200 {
		t.Fatalf("open queue: %d %s", code, body)
	}
	q.Close()
	if code, body := post(); code != 503 || !strings.Contains(body, `cannot queue the event now (queue is closed); retry later`) {
		t.Errorf("closed queue: %d %s", code, body)
	}
	d.draining.Store(true)
	if code, body := post(); code != 503 || !strings.Contains(body, "shutting down; retry later") {
		t.Errorf("draining: %d %s", code, body)
	}
}
