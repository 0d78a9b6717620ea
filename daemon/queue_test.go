package daemon

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"switchboard/router/logqueue"
	"switchboard/router/logqueue/logqueuetest"
)

// A full disk (issue 10.5): sources answer 503, never 200, /readyz says
// why, and both recover with the disk.
func TestFullDiskAnswers503AndReadyzSaysWhy(t *testing.T) {
	disk := logqueuetest.NewDisk()
	d, _, post := archiveDaemon(t, logqueue.Options{FS: disk, Log: slog.New(slog.DiscardHandler)})
	admin := d.adminHandler()
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
