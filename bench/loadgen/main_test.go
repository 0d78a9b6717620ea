package main

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEventsAreJSONWithTheirMarks(t *testing.T) {
	o := &options{match: 0.3, channels: 5}
	rng := rand.New(rand.NewPCG(1, 2))
	failedN := 0
	for i := range 1000 {
		b, failed := build(nil, rng, o, "id-"+string(rune('a'+i%26)))
		var e struct {
			Event   string
			Payload map[string]any
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		p := e.Payload
		if (p["status"] == "failed") != failed || p["bench_id"] == nil || p["bench_ts"] == nil || !strings.HasPrefix(p["channel"].(string), "x") {
			t.Fatalf("event %s (failed=%v)", b, failed)
		}
		if failed {
			failedN++
		}
	}
	if failedN < 250 || failedN > 350 {
		t.Errorf("%d of 1000 failed, want about 300", failedN)
	}
}

func TestRunSendsCountAndCountsAnswers(t *testing.T) {
	var mu sync.Mutex
	ids := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var e struct{ Payload map[string]any }
		json.Unmarshal(b, &e)
		mu.Lock()
		defer mu.Unlock()
		id, _ := e.Payload["bench_id"].(string)
		if len(ids)%10 == 9 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		ids[id] = true
	}))
	defer srv.Close()
	line := run(options{target: srv.URL, conc: 4, count: 100, dur: 10 * time.Second, match: 1, channels: 1, timeout: time.Second})
	if len(ids) != 100 {
		t.Errorf("server saw %d distinct events, want 100", len(ids))
	}
	for _, want := range []string{" accepted=90 ", " non2xx=10 ", " errors=0 ", " match_accepted=90 "} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
}
