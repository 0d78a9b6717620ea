package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchboard/daemon"
	"switchboard/daemon/daemontest"
	_ "switchboard/sinks/all"
	_ "switchboard/sources/all"
)

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

func TestEndToEndRoutesToFileAndHTTP(t *testing.T) {
	dir := t.TempDir()
	rcv := daemontest.NewReceiver(t)
	d := daemontest.Start(t, configFor(dir, rcv.URL))
	base := "http://" + d.WebhookAddr()

	code, resp := daemontest.Post(t, base+"/hooks/app", `{"event":"voice.outbound","payload":{"id":"c1","status":"failed","to":"+31600000000"}}`)
	if code != 200 || resp["status"] != "accepted" || resp["id"] != "c1" {
		t.Fatalf("failed event: got %d %v, want 200 accepted c1", code, resp)
	}
	code, resp = daemontest.Post(t, base+"/hooks/app", `{"event":"voice.outbound","payload":{"id":"c2","status":"completed"}}`)
	if code != 200 || resp["id"] != "c2" {
		t.Fatalf("completed event: got %d %v", code, resp)
	}

	archive := filepath.Join(dir, "events.jsonl")
	daemontest.Eventually(t, "two archived events", func() bool { return len(daemontest.ReadLines(t, archive)) == 2 })
	daemontest.Eventually(t, "one forwarded event", func() bool { return len(rcv.Got()) == 1 })

	var fwd map[string]any
	if err := json.Unmarshal([]byte(rcv.Got()[0]), &fwd); err != nil {
		t.Fatalf("forwarded body is not JSON: %v", err)
	}
	if fwd["id"] != "c1" || fwd["source"] != "app" || fwd["event"] != "voice.outbound" || fwd["status"] != "failed" {
		t.Errorf("forwarded event = %v", fwd)
	}
	if p, _ := fwd["payload"].(map[string]any)["payload"].(map[string]any); p["to"] != "+31600000000" {
		t.Errorf("forwarded payload = %v", fwd["payload"])
	}
	ids := map[any]bool{}
	for _, l := range daemontest.ReadLines(t, archive) {
		ids[l["id"]] = true
	}
	if !ids["c1"] || !ids["c2"] {
		t.Errorf("archive ids = %v, want c1 and c2", ids)
	}
}

func TestEndToEndBatchAndSourceFilters(t *testing.T) {
	dir := t.TempDir()
	rcv := daemontest.NewReceiver(t)
	d := daemontest.Start(t, configFor(dir, rcv.URL))
	base := "http://" + d.WebhookAddr()

	code, resp := daemontest.Post(t, base+"/hooks/app", `[{"event":"a","payload":{"id":"b1"}},{"event":"b","payload":{"id":"b2"}}]`)
	if code != 200 || resp["status"] != "accepted" || len(resp["ids"].([]any)) != 2 {
		t.Fatalf("batch: got %d %v", code, resp)
	}
	// The pinned source takes voice.* events with status failed only.
	code, resp = daemontest.Post(t, base+"/hooks/pinned", `{"event":"voice.inbound","status":"completed"}`)
	if code != 200 || resp["status"] != "filtered" {
		t.Fatalf("filtered status: got %d %v", code, resp)
	}
	code, resp = daemontest.Post(t, base+"/hooks/pinned", `{"event":"sms","status":"failed"}`)
	if code != 200 || resp["status"] != "filtered" {
		t.Fatalf("filtered event: got %d %v", code, resp)
	}
	code, resp = daemontest.Post(t, base+"/hooks/pinned", `{"event":"voice.inbound","status":"failed","id":"p1"}`)
	if code != 200 || resp["status"] != "accepted" {
		t.Fatalf("passing event: got %d %v", code, resp)
	}
	archive := filepath.Join(dir, "events.jsonl")
	daemontest.Eventually(t, "three archived events", func() bool { return len(daemontest.ReadLines(t, archive)) == 3 })
	daemontest.Eventually(t, "one forwarded event", func() bool { return len(rcv.Got()) == 1 })
}

func TestRejectionsAnswerTheirStatusAndRouteNothing(t *testing.T) {
	dir := t.TempDir()
	rcv := daemontest.NewReceiver(t)
	d := daemontest.Start(t, configFor(dir, rcv.URL))
	base := "http://" + d.WebhookAddr()

	tests := []struct {
		name, method, path, body string
		header                   []string
		want                     int
		wantErr                  string
	}{
		{"bad json", "POST", "/hooks/app", `{"event":`, nil, 400, "body is not JSON: line 1, column 10: expected a value, found end of input"},
		{"not an object", "POST", "/hooks/app", `"hello"`, nil, 400, "body is not a JSON object or an array of objects: it is a string"},
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
			code, resp := daemontest.Send(t, tc.method, base+tc.path, tc.body, tc.header...)
			msg, _ := resp["error"].(string)
			if code != tc.want || !strings.HasPrefix(msg, tc.wantErr) {
				t.Errorf("got %d %q, want %d %q...", code, msg, tc.want, tc.wantErr)
			}
		})
	}
	code, _ := daemontest.Post(t, base+"/locked", `{"event":"a","id":"ok1"}`, "Authorization", "Bearer s3cret")
	if code != 200 {
		t.Fatalf("right token: got %d", code)
	}
	archive := filepath.Join(dir, "events.jsonl")
	daemontest.Eventually(t, "the one accepted event", func() bool { return len(daemontest.ReadLines(t, archive)) == 1 })
	time.Sleep(100 * time.Millisecond)
	if lines := daemontest.ReadLines(t, archive); len(lines) != 1 || lines[0]["id"] != "ok1" {
		t.Errorf("archive = %v, want only ok1: rejected requests must route nothing", lines)
	}
	if n := len(rcv.Got()); n != 0 {
		t.Errorf("receiver got %d bodies, want 0", n)
	}
}

func TestFailingSinkRetriesWithoutBlockingOthers(t *testing.T) {
	dir := t.TempDir()
	rcv := daemontest.NewReceiver(t)
	rcv.SetStatus(http.StatusServiceUnavailable)
	d := daemontest.Start(t, configFor(dir, rcv.URL))
	base := "http://" + d.WebhookAddr()

	code, _ := daemontest.Post(t, base+"/hooks/app", `{"event":"e","payload":{"id":"r1","status":"failed"}}`)
	if code != 200 {
		t.Fatalf("got %d", code)
	}
	archive := filepath.Join(dir, "events.jsonl")
	daemontest.Eventually(t, "the archive despite the failing crm", func() bool { return len(daemontest.ReadLines(t, archive)) == 1 })
	daemontest.Eventually(t, "retries at the receiver", func() bool { return len(rcv.Got()) >= 2 })
	rcv.SetStatus(http.StatusOK)
	n := len(rcv.Got())
	daemontest.Eventually(t, "a successful attempt", func() bool { return len(rcv.Got()) > n })
}

func TestAdminEndpoints(t *testing.T) {
	d := daemontest.Start(t, configFor(t.TempDir(), "http://127.0.0.1:1"))
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
	d := daemontest.Start(t, `
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
		code, _ := daemontest.Post(t, "http://"+d.WebhookAddr()+"/hooks/app", `{"event":"sms","status":"failed","channel":"c1","id":"t`+string(rune('0'+i))+`"}`)
		if code != 200 {
			t.Fatalf("post %d: %d", i, code)
		}
	}
	alerts := filepath.Join(dir, "alerts.jsonl")
	daemontest.Eventually(t, "the first event and a summary", func() bool { return len(daemontest.ReadLines(t, alerts)) == 2 })
	lines := daemontest.ReadLines(t, alerts)
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
	rcv := daemontest.NewReceiver(t)
	d := daemontest.Start(t, configFor(dir, rcv.URL))
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
	daemontest.Post(t, base+"/hooks/app", `{"event":"e","payload":{"id":"m1","status":"failed"}}`)
	daemontest.Post(t, base+"/hooks/app", `{"event":"e","payload":{"id":"m1","status":"failed"}}`)
	daemontest.Post(t, base+"/hooks/pinned", `{"event":"voice.inbound","status":"ok"}`)
	daemontest.Post(t, base+"/hooks/app", `{`)
	daemontest.Post(t, base+"/locked", `{"event":"e"}`)
	daemontest.Eventually(t, "the delivery to crm", func() bool { return len(rcv.Got()) == 1 })
	for _, s := range series {
		daemontest.Eventually(t, s+" to grow by 1", func() bool { return scrapeValue(t, d, s)-before[s] == 1 })
	}
}

// scrapeValue is scrape's value as a number; 0 if the series is absent.
func scrapeValue(t *testing.T, d *daemon.Daemon, series string) float64 {
	t.Helper()
	var f float64
	fmt.Sscan(scrape(t, d, series), &f)
	return f
}
