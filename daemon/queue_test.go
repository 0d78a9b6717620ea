package daemon

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/router/logqueue"
	"switchboard/router/logqueue/logqueuetest"
)

// A full disk (issue 10.5): sources answer 503, never 200, /readyz says
// why, and both recover with the disk.
func TestFullDiskAnswers503AndReadyzSaysWhy(t *testing.T) {
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
	disk := logqueuetest.NewDisk()
	q, err := logqueue.Open(logqueue.Options{Dir: t.TempDir(), FS: disk, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	d := New(snap, q, slog.New(slog.NewTextHandler(io.Discard, nil)))
	admin := d.adminHandler()
	post := func(id string) (int, string) {
		w := httptest.NewRecorder()
		d.serveWebhook(w, httptest.NewRequest(http.MethodPost, "/hooks/app", strings.NewReader(`{"event":"e","id":"`+id+`"}`)))
		return w.Code, w.Body.String()
	}
	ready := func() (int, map[string]string) {
		w := httptest.NewRecorder()
		admin.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var m map[string]string
		json.Unmarshal(w.Body.Bytes(), &m)
		return w.Code, m
	}
	if code, body := post("1"); code != 200 {
		t.Fatalf("disk fine: %d %s", code, body)
	}
	disk.SetFull(true)
	for i := range 3 {
		if code, body := post("full"); code != 503 || !strings.Contains(body, "no space left on device") {
			t.Fatalf("attempt %d on a full disk: %d %s, want 503 naming the full disk", i, code, body)
		}
	}
	if code, m := ready(); code != 503 || m["status"] != "queue not ready" || !strings.Contains(m["error"], "no space left on device") {
		t.Errorf("/readyz on a full disk: %d %v", code, m)
	}
	disk.SetFull(false)
	deadline := time.Now().Add(10 * time.Second)
	for code, _ := ready(); code != 200; code, _ = ready() {
		if time.Now().After(deadline) {
			t.Fatal("/readyz not ready after the disk recovered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := post("full"); code != 200 || !strings.Contains(body, `"accepted"`) {
		t.Errorf("after recovery: %d %s", code, body)
	}
}
