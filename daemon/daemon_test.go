package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/router/boltqueue"
	_ "switchboard/sinks/all"
	_ "switchboard/sources/all"
)

// receiver is a real HTTP peer that records every body it gets.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
	status int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: http.StatusOK}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		st := r.status
		r.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// start runs a daemon in-process on random loopback ports.
func start(t *testing.T, yaml string) *daemon.Daemon {
	t.Helper()
	f, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	snap, err := daemon.Build(f)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	q, err := boltqueue.Open(boltqueue.Options{Dir: f.Queue.Dir, MaxBytes: int64(f.Queue.MaxBytes), DedupWindow: f.Queue.DedupWindow, Log: log})
	if err != nil {
		t.Fatalf("queue: %v", err)
	}
	d := daemon.New(snap, q, log)
	if err := d.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return d
}

func configFor(dir, receiverURL string) string {
	return `
server: { listen: "127.0.0.1:0", max_body_bytes: 2KiB }
admin: { listen: "127.0.0.1:0" }
queue: { dir: ` + dir + ` }
sources:
  app:
    type: generic
    status_field: payload.status
    id_field: payload.id
  locked:
    type: generic
    path: /locked
    auth: { bearer_token: s3cret }
  pinned:
    type: generic
    events: ["voice.*"]
    filters: [ {key: status, value: failed} ]
sinks:
  archive: { type: file, path: ` + filepath.Join(dir, "events.jsonl") + ` }
  crm:     { type: http, url: "` + receiverURL + `/in", retry: { initial_interval: 10ms, max_interval: 50ms } }
rules:
  - name: failed
    when: 'status == "failed"'
    to: [crm, archive]
  - name: all
    to: [archive]
`
}

func post(t *testing.T, url, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: line is not JSON: %v: %s", path, err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEndToEndRoutesToFileAndHTTP(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t)
	d := start(t, configFor(dir, rcv.URL))
	base := "http://" + d.WebhookAddr()

	code, resp := post(t, base+"/hooks/app", `{"event":"voice.outbound","payload":{"id":"c1","status":"failed","to":"+31600000000"}}`)
	if code != 200 || resp["status"] != "accepted" || resp["id"] != "c1" {
		t.Fatalf("failed event: got %d %v, want 200 accepted c1", code, resp)
	}
	code, resp = post(t, base+"/hooks/app", `{"event":"voice.outbound","payload":{"id":"c2","status":"completed"}}`)
	if code != 200 || resp["id"] != "c2" {
		t.Fatalf("completed event: got %d %v", code, resp)
	}

	archive := filepath.Join(dir, "events.jsonl")
	eventually(t, "two archived events", func() bool { return len(readLines(t, archive)) == 2 })
	eventually(t, "one forwarded event", func() bool { return len(rcv.got()) == 1 })

	var fwd map[string]any
	if err := json.Unmarshal([]byte(rcv.got()[0]), &fwd); err != nil {
		t.Fatalf("forwarded body is not JSON: %v", err)
	}
	if fwd["id"] != "c1" || fwd["source"] != "app" || fwd["event"] != "voice.outbound" || fwd["status"] != "failed" {
		t.Errorf("forwarded event = %v", fwd)
	}
	if p, _ := fwd["payload"].(map[string]any)["payload"].(map[string]any); p["to"] != "+31600000000" {
		t.Errorf("forwarded payload = %v", fwd["payload"])
	}
	ids := map[any]bool{}
	for _, l := range readLines(t, archive) {
		ids[l["id"]] = true
	}
	if !ids["c1"] || !ids["c2"] {
		t.Errorf("archive ids = %v, want c1 and c2", ids)
	}
}

func TestEndToEndBatchAndSourceFilters(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t)
	d := start(t, configFor(dir, rcv.URL))
	base := "http://" + d.WebhookAddr()

	code, resp := post(t, base+"/hooks/app", `[{"event":"a","payload":{"id":"b1"}},{"event":"b","payload":{"id":"b2"}}]`)
	if code != 200 || resp["status"] != "accepted" || len(resp["ids"].([]any)) != 2 {
		t.Fatalf("batch: got %d %v", code, resp)
	}
	// The pinned source takes voice.* events with status failed only.
	code, resp = post(t, base+"/hooks/pinned", `{"event":"voice.inbound","status":"completed"}`)
	if code != 200 || resp["status"] != "filtered" {
		t.Fatalf("filtered status: got %d %v", code, resp)
	}
	code, resp = post(t, base+"/hooks/pinned", `{"event":"sms","status":"failed"}`)
	if code != 200 || resp["status"] != "filtered" {
		t.Fatalf("filtered event: got %d %v", code, resp)
	}
	code, resp = post(t, base+"/hooks/pinned", `{"event":"voice.inbound","status":"failed","id":"p1"}`)
	if code != 200 || resp["status"] != "accepted" {
		t.Fatalf("passing event: got %d %v", code, resp)
	}
	archive := filepath.Join(dir, "events.jsonl")
	eventually(t, "three archived events", func() bool { return len(readLines(t, archive)) == 3 })
	eventually(t, "one forwarded event", func() bool { return len(rcv.got()) == 1 })
}

func TestRejectionsAnswerTheirStatusAndRouteNothing(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t)
	d := start(t, configFor(dir, rcv.URL))
	base := "http://" + d.WebhookAddr()

	tests := []struct {
		name, method, path, body string
		header                   []string
		want                     int
		wantErr                  string
	}{
		{"bad json", "POST", "/hooks/app", `{"event":`, nil, 400, "body is not a JSON object"},
		{"not an object", "POST", "/hooks/app", `"hello"`, nil, 400, "body is not a JSON object: expected a JSON object, got a string"},
		{"no event name", "POST", "/hooks/app", `{"status":"failed"}`, nil, 400, `no event name: the body has no "event" field`},
		{"empty body", "POST", "/hooks/app", ``, nil, 400, "empty body"},
		{"empty batch", "POST", "/hooks/app", `[]`, nil, 400, "empty batch"},
		{"bad batch element", "POST", "/hooks/app", `[{"event":"a"},{"x":1}]`, nil, 400, "batch element 1: no event name"},
		{"unknown path", "POST", "/hooks/nope", `{"event":"a"}`, nil, 404, "no source is configured at /hooks/nope"},
		{"wrong method", "GET", "/hooks/app", ``, nil, 405, "method GET is not allowed here; use POST"},
		{"too large", "POST", "/hooks/app", `{"event":"a","pad":"` + strings.Repeat("x", 3000) + `"}`, nil, 413, "body is larger than server.max_body_bytes (2KiB)"},
		{"missing token", "POST", "/locked", `{"event":"a"}`, nil, 401, "missing or wrong bearer token"},
		{"wrong token", "POST", "/locked", `{"event":"a"}`, []string{"Authorization", "Bearer nope"}, 401, "missing or wrong bearer token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]string
			json.NewDecoder(resp.Body).Decode(&m)
			if resp.StatusCode != tc.want || !strings.HasPrefix(m["error"], tc.wantErr) {
				t.Errorf("got %d %q, want %d %q...", resp.StatusCode, m["error"], tc.want, tc.wantErr)
			}
		})
	}
	code, _ := post(t, base+"/locked", `{"event":"a","id":"ok1"}`, "Authorization", "Bearer s3cret")
	if code != 200 {
		t.Fatalf("right token: got %d", code)
	}
	archive := filepath.Join(dir, "events.jsonl")
	eventually(t, "the one accepted event", func() bool { return len(readLines(t, archive)) == 1 })
	time.Sleep(100 * time.Millisecond)
	if lines := readLines(t, archive); len(lines) != 1 || lines[0]["id"] != "ok1" {
		t.Errorf("archive = %v, want only ok1: rejected requests must route nothing", lines)
	}
	if n := len(rcv.got()); n != 0 {
		t.Errorf("receiver got %d bodies, want 0", n)
	}
}

func TestFailingSinkRetriesWithoutBlockingOthers(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t)
	rcv.status = http.StatusServiceUnavailable
	d := start(t, configFor(dir, rcv.URL))
	base := "http://" + d.WebhookAddr()

	code, _ := post(t, base+"/hooks/app", `{"event":"e","payload":{"id":"r1","status":"failed"}}`)
	if code != 200 {
		t.Fatalf("got %d", code)
	}
	archive := filepath.Join(dir, "events.jsonl")
	eventually(t, "the archive despite the failing crm", func() bool { return len(readLines(t, archive)) == 1 })
	eventually(t, "retries at the receiver", func() bool { return len(rcv.got()) >= 2 })
	rcv.mu.Lock()
	rcv.status = http.StatusOK
	rcv.mu.Unlock()
	n := len(rcv.got())
	eventually(t, "a successful attempt", func() bool { return len(rcv.got()) > n })
}

func TestAdminEndpoints(t *testing.T) {
	d := start(t, configFor(t.TempDir(), "http://127.0.0.1:1"))
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/nope": 404} {
		resp, err := http.Get("http://" + d.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: got %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/metrics" && !strings.Contains(string(body), "switchboard_config_last_reload_successful 1") {
			t.Errorf("/metrics lacks switchboard_config_last_reload_successful 1")
		}
	}
}

func TestStormControlDeliversOneAndASummary(t *testing.T) {
	dir := t.TempDir()
	d := start(t, `
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: `+dir+` }
sources:
  app: { type: generic }
sinks:
  alerts: { type: file, path: `+filepath.Join(dir, "alerts.jsonl")+` }
rules:
  - name: failed
    when: 'status == "failed"'
    throttle: { key: 'payload.channel', limit: 1, per: 300ms }
    to: [alerts]
`)
	for i := range 5 {
		code, _ := post(t, "http://"+d.WebhookAddr()+"/hooks/app", `{"event":"sms","status":"failed","channel":"c1","id":"t`+string(rune('0'+i))+`"}`)
		if code != 200 {
			t.Fatalf("post %d: %d", i, code)
		}
	}
	alerts := filepath.Join(dir, "alerts.jsonl")
	eventually(t, "the first event and a summary", func() bool { return len(readLines(t, alerts)) == 2 })
	lines := readLines(t, alerts)
	if lines[0]["id"] != "t0" {
		t.Errorf("first alert = %v, want t0", lines[0]["id"])
	}
	p, _ := lines[1]["payload"].(map[string]any)
	if lines[1]["event"] != "switchboard:throttled" || p["suppressed"] != float64(4) || p["key"] != "c1" || p["last_id"] != "t4" {
		t.Errorf("summary = %v", lines[1])
	}
}

func TestMetricsCountEveryOutcome(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t)
	d := start(t, configFor(dir, rcv.URL))
	base := "http://" + d.WebhookAddr()
	before := map[string]float64{}
	series := []string{
		`switchboard_events_received_total{outcome="accepted",reason="",source="app"}`,
		`switchboard_events_received_total{outcome="filtered",reason="",source="pinned"}`,
		`switchboard_events_received_total{outcome="rejected",reason="bad_json",source="app"}`,
		`switchboard_events_received_total{outcome="rejected",reason="auth",source="locked"}`,
		`switchboard_events_received_total{outcome="duplicate",reason="",source="app"}`,
		`switchboard_rule_matches_total{rule="failed"}`,
		`switchboard_deliveries_total{outcome="success",sink="crm"}`,
	}
	for _, s := range series {
		before[s] = scrapeValue(t, d, s)
	}
	post(t, base+"/hooks/app", `{"event":"e","payload":{"id":"m1","status":"failed"}}`)
	post(t, base+"/hooks/app", `{"event":"e","payload":{"id":"m1","status":"failed"}}`)
	post(t, base+"/hooks/pinned", `{"event":"voice.inbound","status":"ok"}`)
	post(t, base+"/hooks/app", `{`)
	post(t, base+"/locked", `{"event":"e"}`)
	eventually(t, "the delivery to crm", func() bool { return len(rcv.got()) == 1 })
	for _, s := range series {
		eventually(t, s+" to grow by 1", func() bool { return scrapeValue(t, d, s)-before[s] == 1 })
	}
}

func scrapeValue(t *testing.T, d *daemon.Daemon, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}
