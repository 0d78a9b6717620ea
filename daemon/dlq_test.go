package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"switchboard/daemon/daemontest"
)

type dlqPage struct {
	Items []struct {
		ID        string    `json:"id"`
		Sink      string    `json:"sink"`
		EventID   string    `json:"event_id"`
		LastError string    `json:"last_error"`
		DeadAt    time.Time `json:"dead_at"`
	} `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func getDLQ(t *testing.T, admin string, v url.Values) (int, dlqPage, map[string]string) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/api/dlq?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	json.NewDecoder(resp.Body).Decode(&raw)
	var page dlqPage
	var e map[string]string
	json.Unmarshal(raw, &page)
	json.Unmarshal(raw, &e)
	return resp.StatusCode, page, e
}

// The console's dead-letter listing: newest first, in pages that follow a
// cursor, narrowed by sink and by text in the last error; replay and
// purge take the same filters.
func TestDLQAPIPagesAndFilters(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) }))
	defer bad.Close()
	worse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(422) }))
	defer worse.Close()
	dir := t.TempDir()
	d := daemontest.Start(t, `
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: `+dir+` }
sources:
  app: { type: generic }
sinks:
  a: { type: http, url: "`+bad.URL+`" }
  b: { type: http, url: "`+worse.URL+`" }
rules:
  - { name: to-a, when: 'payload.n < 15', to: [a] }
  - { name: to-b, when: 'payload.n >= 15', to: [b] }
`)
	for i := range 25 {
		daemontest.Post(t, "http://"+d.WebhookAddr()+"/hooks/app", fmt.Sprintf(`{"event":"e","id":"e%02d","n":%d}`, i, i))
	}
	admin := d.AdminAddr()
	daemontest.Eventually(t, "25 dead letters", func() bool {
		_, p, _ := getDLQ(t, admin, url.Values{"limit": {"100"}})
		return len(p.Items) == 25
	})
	// Pages of 10, newest first, to the end.
	var seen []string
	var died []time.Time
	cursor := ""
	for page := 0; ; page++ {
		code, p, _ := getDLQ(t, admin, url.Values{"limit": {"10"}, "cursor": {cursor}})
		if code != 200 || p.NextCursor == nil {
			t.Fatalf("page %d: %d, next_cursor %v", page, code, p.NextCursor)
		}
		for _, it := range p.Items {
			seen = append(seen, it.EventID)
			died = append(died, it.DeadAt)
		}
		if cursor = *p.NextCursor; cursor == "" {
			break
		}
		if len(p.Items) != 10 {
			t.Fatalf("page %d has %d items, want 10 before the last", page, len(p.Items))
		}
	}
	if len(seen) != 25 {
		t.Fatalf("pages held %d dead letters, want 25: %v", len(seen), seen)
	}
	slices.Sort(seen)
	if seen = slices.Compact(seen); len(seen) != 25 {
		t.Errorf("pages repeated dead letters: %d distinct", len(seen))
	}
	// Newest stored first. dead_at is when a worker gave up, a moment
	// before the writer stored it: the two sinks' workers give up
	// concurrently, so neighbours may differ from storage order by that
	// moment, never more.
	if !died[0].After(died[len(died)-1]) {
		t.Errorf("not newest first: the first died %v, the last %v", died[0], died[len(died)-1])
	}
	for i := 1; i < len(died); i++ {
		if died[i].Sub(died[i-1]) > 100*time.Millisecond {
			t.Errorf("not newest first: died %v before %v", died[i-1], died[i])
		}
	}
	if _, p, _ := getDLQ(t, admin, url.Values{"sink": {"b"}}); len(p.Items) != 10 || p.Items[0].Sink != "b" {
		t.Errorf("sink=b: %d items", len(p.Items))
	}
	if _, p, _ := getDLQ(t, admin, url.Values{"q": {"422 UNPROCESSABLE"}}); len(p.Items) != 10 {
		t.Errorf("q=422: %d items, want b's 10", len(p.Items))
	}
	for _, v := range []url.Values{{"limit": {"0"}}, {"limit": {"1001"}}, {"limit": {"x"}}, {"cursor": {"nonsense"}}} {
		if code, _, e := getDLQ(t, admin, v); code != 400 || e["error"] == "" {
			t.Errorf("%v: %d %v, want 400 with an error", v, code, e)
		}
	}
	post := func(path, body string) map[string]any {
		resp, err := http.Post("http://"+admin+path, "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	if m := post("/api/dlq/purge", `{"all":true,"q":"422"}`); m["purged"] != float64(10) {
		t.Errorf("purge all matching 422: %v", m)
	}
	if m := post("/api/dlq/replay", `{"all":true,"sink":"a"}`); m["replayed"] != float64(15) {
		t.Errorf("replay all of a: %v", m)
	}
}
