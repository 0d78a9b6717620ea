package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchboard/daemon"
	"switchboard/daemon/daemontest"
)

// consoleConfig is a daemon with one generic source and an http sink at
// url, retried quickly, and a secret in the sink's headers.
func consoleConfig(t *testing.T, url string, extra string) string {
	return fmt.Sprintf(`
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: %q }
sources:
  calls: { type: generic, path: /hooks/calls, event: call, status_field: status, id_field: id }
sinks:
  crm:
    type: http
    url: %q
    headers: { Authorization: "Bearer crm-token-do-not-show" }
    retry: { max_attempts: 3, initial_interval: 50ms, max_interval: 100ms }
rules:
  - { name: failed-calls, when: 'status == "failed"', to: [crm] }
  - { name: long-calls, when: 'seconds > 60', to: [crm] }
%s`, t.TempDir(), url, extra)
}

func post(t *testing.T, d *daemon.Daemon, body string) {
	t.Helper()
	code, ans := daemontest.Post(t, "http://"+d.WebhookAddr()+"/hooks/calls", body, "Content-Type", "application/json")
	if code != http.StatusOK {
		t.Fatalf("post: %d %v", code, ans)
	}
}

func getJSON(t *testing.T, d *daemon.Daemon, path string, out any) int {
	t.Helper()
	code, body := daemontest.Admin(t, d, http.MethodGet, path, "", "")
	if out != nil {
		if err := json.Unmarshal([]byte(body), out); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, body)
		}
	}
	return code
}

// statusView is what the tests read of GET /api/status.
type statusView struct {
	Reload  struct{ Trigger string }
	Sources []struct {
		Name      string
		Accepted  int
		Unmatched int
		Rejected  map[string]int
	}
	Rules []struct {
		Name      string
		Matches   int
		Errors    int
		LastMatch string `json:"last_match"`
		LastError *struct {
			Error   string
			EventID string `json:"event_id"`
		} `json:"last_error"`
	}
	Sinks []struct {
		Name            string
		Dead            int
		FailedPerMinute int                     `json:"failed_per_minute"`
		LastError       *struct{ Error string } `json:"last_error"`
	}
}

// TestStatusCountsFromTheMetricsAndTheLastErrors reads the overview
// before and after some traffic: the metrics are the process's, shared
// with the other tests, so the test compares the two.
func TestStatusCountsFromTheMetricsAndTheLastErrors(t *testing.T) {
	rcv := daemontest.NewReceiver(t)
	rcv.SetStatus(http.StatusServiceUnavailable)
	d := daemontest.Start(t, consoleConfig(t, rcv.URL, ""))
	var before, st statusView
	getJSON(t, d, "/api/status", &before)
	post(t, d, `{"id":"c1","status":"failed","seconds":"long"}`)
	post(t, d, `{"id":"c2","status":"completed","seconds":5}`)
	daemontest.Post(t, "http://"+d.WebhookAddr()+"/hooks/calls", "not json")
	daemontest.Eventually(t, "the delivery to be dead", func() bool {
		getJSON(t, d, "/api/status", &st)
		return len(st.Sinks) == 1 && st.Sinks[0].Dead == before.Sinks[0].Dead+1
	})
	src, was := st.Sources[0], before.Sources[0]
	if src.Accepted-was.Accepted != 2 || src.Unmatched-was.Unmatched != 1 || src.Rejected["bad_json"]-was.Rejected["bad_json"] != 1 {
		t.Errorf("source = %+v, was %+v; want 2 more accepted, 1 unmatched, 1 rejected as bad_json", src, was)
	}
	fc, lc, crm := st.Rules[0], st.Rules[1], st.Sinks[0]
	if fc.Matches-before.Rules[0].Matches != 1 || fc.LastMatch == "" || fc.Errors != before.Rules[0].Errors {
		t.Errorf("failed-calls = %+v", fc)
	}
	if lc.Errors-before.Rules[1].Errors != 1 || lc.LastError == nil || lc.LastError.EventID != "c1" || !strings.Contains(lc.LastError.Error, "when") {
		t.Errorf("long-calls = %+v, want its run-time error on c1", lc)
	}
	if crm.FailedPerMinute != 3 || crm.LastError == nil || !strings.Contains(crm.LastError.Error, "503") {
		t.Errorf("crm = %+v, want 3 failed attempts and the 503", crm)
	}
	if st.Reload.Trigger != "start" {
		t.Errorf("reload trigger = %q", st.Reload.Trigger)
	}
}

func TestHistoryShowsEveryAttempt(t *testing.T) {
	rcv := daemontest.NewReceiver(t)
	rcv.SetStatus(http.StatusServiceUnavailable)
	d := daemontest.Start(t, consoleConfig(t, rcv.URL, ""))
	post(t, d, `{"id":"c1","status":"failed"}`)
	daemontest.Eventually(t, "a failed attempt", func() bool { return len(rcv.Got()) >= 1 })
	rcv.SetStatus(http.StatusOK)
	var page struct {
		Items []struct {
			Outcome    string
			Rules      []string
			Deliveries []struct {
				Sink, State string
				Attempts    []struct {
					Status  int
					Outcome string
					Error   string
				}
			}
		}
	}
	daemontest.Eventually(t, "the delivery", func() bool {
		getJSON(t, d, "/api/history?id=c1", &page)
		return len(page.Items) == 1 && page.Items[0].Deliveries[0].State == "delivered"
	})
	it := page.Items[0]
	atts := it.Deliveries[0].Attempts
	if it.Outcome != "accepted" || len(it.Rules) != 1 || it.Rules[0] != "failed-calls" || atts[0].Status != 503 ||
		atts[0].Outcome != "retry" || !strings.Contains(atts[0].Error, "503") || atts[len(atts)-1].Status != 200 {
		t.Errorf("history = %+v", it)
	}
	for _, tc := range []struct{ query, want string }{
		{"since=yesterday", "neither a time"},
		{"limit=-1", "limit must be a whole number"},
		{"cursor=x", "cursor must be a whole number"},
	} {
		code, body := daemontest.Admin(t, d, http.MethodGet, "/api/history?"+tc.query, "", "")
		if code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("?%s: %d %s, want 400 with %q", tc.query, code, body, tc.want)
		}
	}
	var recent struct{ Items []struct{ ID string } }
	getJSON(t, d, "/api/history?source=calls&since=1m", &recent)
	if len(recent.Items) != 1 || recent.Items[0].ID != "c1" {
		t.Errorf("by source and time: %+v", recent)
	}
}

// tapStream opens the tap and returns its lines.
func tapStream(t *testing.T, d *daemon.Daemon, query string) (*bufio.Scanner, func()) {
	t.Helper()
	// A tap that never shows what the test waits for ends the test, not CI.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.AdminAddr()+"/api/tap?"+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("tap: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return sc, func() { cancel(); resp.Body.Close() }
}

// nextData returns the next data line of an event of the given kind.
func nextData(t *testing.T, sc *bufio.Scanner, kind string) map[string]any {
	t.Helper()
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && event == kind {
			var m map[string]any
			if err := json.Unmarshal([]byte(v), &m); err != nil {
				t.Fatalf("tap data: %v: %s", err, v)
			}
			return m
		}
	}
	t.Fatalf("tap ended: %v", sc.Err())
	return nil
}

func TestTapStreamsOutcomesFilteredBySourceAndWhen(t *testing.T) {
	rcv := daemontest.NewReceiver(t)
	d := daemontest.Start(t, consoleConfig(t, rcv.URL, ""))
	sc, stop := tapStream(t, d, "source=calls&when="+urlQuery(`status == "failed"`))
	defer stop()
	nextData(t, sc, "hello")
	post(t, d, `{"id":"c1","status":"completed"}`) // not failed: not shown
	post(t, d, `{"id":"c2","status":"failed"}`)
	m := nextData(t, sc, "tap")
	if m["id"] != "c2" || m["outcome"] != "accepted" || fmt.Sprint(m["rules"]) != "[failed-calls]" || fmt.Sprint(m["sinks"]) != "[crm]" {
		t.Errorf("tap item = %v", m)
	}
	if ev, _ := m["event"].(map[string]any); ev["id"] != "c2" || ev["payload"] == nil {
		t.Errorf("tap item's event = %v", m["event"])
	}

	all, stopAll := tapStream(t, d, "")
	defer stopAll()
	nextData(t, all, "hello")
	daemontest.Post(t, "http://"+d.WebhookAddr()+"/hooks/calls", "not json")
	if m := nextData(t, all, "tap"); m["outcome"] != "rejected" || m["reason"] != "bad_json" || m["http_status"] != float64(400) {
		t.Errorf("rejection = %v", m)
	}
}

func urlQuery(s string) string {
	return strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", " ", "%20", `"`, "%22", "=", "%3D").Replace(s)
}

func TestTapRefusesWhatItCannotFilter(t *testing.T) {
	d := daemontest.Start(t, consoleConfig(t, "http://127.0.0.1:1/", ""))
	for _, tc := range []struct{ query, want string }{
		{"when=" + urlQuery("status =="), "when: unexpected token"},
		{"when=" + urlQuery("nosuch(status)"), "unknown function nosuch()"},
		{"source=nope", `no source named`},
	} {
		code, body := daemontest.Admin(t, d, http.MethodGet, "/api/tap?"+tc.query, "", "")
		if code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("?%s: %d %s, want 400 with %q", tc.query, code, body, tc.want)
		}
	}
}

func TestTryRunsThePipelineAndDeliversNothing(t *testing.T) {
	rcv := daemontest.NewReceiver(t)
	d := daemontest.Start(t, consoleConfig(t, rcv.URL, ""))
	try := func(body string) (int, map[string]any) {
		code, ans := daemontest.Admin(t, d, http.MethodPost, "/api/try", "", body)
		var m map[string]any
		json.Unmarshal([]byte(ans), &m)
		return code, m
	}
	code, m := try(`{"source":"calls","payload":"{\"id\":\"t1\",\"status\":\"failed\",\"seconds\":\"x\"}"}`)
	trials, _ := m["trials"].([]any)
	if code != http.StatusOK || len(trials) != 1 {
		t.Fatalf("try: %d %v", code, m)
	}
	tr := trials[0].(map[string]any)
	rules := tr["rules"].([]any)
	if got := fmt.Sprint(rules[0].(map[string]any)["verdict"], " ", rules[1].(map[string]any)["verdict"]); got != "match error" {
		t.Errorf("verdicts = %s, want match error", got)
	}
	if fmt.Sprint(tr["sinks"]) != "[crm]" || tr["bodies"].(map[string]any)["crm"] == nil {
		t.Errorf("sinks %v bodies %v", tr["sinks"], tr["bodies"])
	}
	// The pipeline's own refusals are the answer, as the webhook gives them.
	if _, m := try(`{"source":"calls","payload":"[1,"}`); m["rejected"] == nil {
		t.Errorf("a broken payload: %v", m)
	}
	// A normalized event (from the tap) is routed as it is.
	if _, m := try(`{"source":"calls","payload":"{\"id\":\"n1\",\"source\":\"calls\",\"event\":\"x\",\"status\":\"failed\",\"time\":\"2026-11-26T03:00:00Z\",\"received_at\":\"2026-11-26T03:00:00Z\",\"payload\":{}}"}`); fmt.Sprint(m["trials"].([]any)[0].(map[string]any)["sinks"]) != "[crm]" {
		t.Errorf("a normalized event: %v", m)
	}
	for _, body := range []string{`{"source":"nope","payload":"{}"}`, `{"source":"calls","payload":"{}","extra":1}`, `not json`} {
		if code, _ := try(body); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", body, code)
		}
	}
	time.Sleep(100 * time.Millisecond) // a delivery would have been made by now
	var hist struct{ Items []any }
	getJSON(t, d, "/api/history?since=1h", &hist)
	if len(rcv.Got()) != 0 || len(hist.Items) != 0 {
		t.Errorf("a dry run delivered %d, recorded %d events", len(rcv.Got()), len(hist.Items))
	}
}

// TestConfigNeverShowsASecret checks the running config and the diff
// from the file: both with every configured credential redacted, in
// every form the redactor knows.
func TestConfigNeverShowsASecret(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "switchboard.yaml")
	yaml := consoleConfig(t, "http://127.0.0.1:1/in", `admin_token_holder: {}`)
	yaml = strings.Replace(yaml, `admin: { listen: "127.0.0.1:0" }`, `admin: { listen: "127.0.0.1:0", auth: { bearer_token: "admin-token-do-not-show" } }`, 1)
	yaml = strings.Replace(yaml, "admin_token_holder: {}", "", 1)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := daemontest.StartFile(t, path)
	get := func() (string, map[string]any) {
		code, body := daemontest.Admin(t, d, http.MethodGet, "/api/config", "admin-token-do-not-show", "")
		if code != http.StatusOK {
			t.Fatalf("config: %d %s", code, body)
		}
		var m map[string]any
		json.Unmarshal([]byte(body), &m)
		return body, m
	}
	body, m := get()
	for _, secret := range []string{"crm-token-do-not-show", "admin-token-do-not-show"} {
		if strings.Contains(body, secret) {
			t.Errorf("the config answer shows %q:\n%s", secret, body)
		}
	}
	if !strings.Contains(m["running"].(string), "Authorization: <secret>") || m["disk"].(map[string]any)["state"] != "same" {
		t.Errorf("config answer: %s", body)
	}
	// Every default filled in: the http sink's concurrency as it runs.
	if !strings.Contains(m["running"].(string), "concurrency: 8") {
		t.Errorf("the running config does not show the http sink's default concurrency 8:\n%s", m["running"])
	}
	// An edit the reload refused (a rule naming no sink): a diff, still
	// without secrets, old or new.
	edited := strings.Replace(yaml, "crm-token-do-not-show", "new-crm-token-do-not-show", 1)
	edited = strings.Replace(edited, "name: long-calls, when: 'seconds > 60', to: [crm]", "name: longer-calls, when: 'seconds > 60', to: [nowhere]", 1)
	writeQuiet(t, d, path, edited)
	body, m = get()
	disk := m["disk"].(map[string]any)
	refused, _ := m["reload"].(map[string]any)["refused"].(map[string]any)
	if disk["state"] != "differs" || !strings.Contains(body, `"op":"+","text":"  - name: longer-calls"`) || strings.Contains(body, "do-not-show") ||
		refused == nil || !strings.Contains(fmt.Sprint(refused["problems"]), "nowhere") {
		t.Errorf("after an edit: %s", body)
	}
	writeQuiet(t, d, path, "sources: [")
	if _, m = get(); m["disk"].(map[string]any)["state"] != "invalid" {
		t.Errorf("a broken file: %v", m["disk"])
	}
}

// writeQuiet changes the config file and waits until the watcher has
// seen it, so that the test reads the answer to its own edit.
func writeQuiet(t *testing.T, d *daemon.Daemon, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(daemon.Debounce + 200*time.Millisecond) // let a reload (applied or refused) settle
}

func TestConsoleAPINeedsTheToken(t *testing.T) {
	yaml := strings.Replace(consoleConfig(t, "http://127.0.0.1:1/", ""), `admin: { listen: "127.0.0.1:0" }`,
		`admin: { listen: "127.0.0.1:0", auth: { bearer_token: "tok-console-1234" } }`, 1)
	d := daemontest.Start(t, yaml)
	for _, path := range []string{"/api/status", "/api/tap", "/api/history?id=x", "/api/config"} {
		if code, _ := daemontest.Admin(t, d, http.MethodGet, path, "", ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", path, code)
		}
	}
	if code, _ := daemontest.Admin(t, d, http.MethodPost, "/api/try", "", `{"source":"calls","payload":"{}"}`); code != http.StatusUnauthorized {
		t.Errorf("POST /api/try without the token: %d", code)
	}
	for _, path := range []string{"/", "/console/console.js", "/console/console.css"} {
		if code, _ := daemontest.Admin(t, d, http.MethodGet, path, "", ""); code != http.StatusOK {
			t.Errorf("GET %s (no data) without the token: %d, want 200", path, code)
		}
	}
}

// A delivery made at once, by a sink that answers in microseconds, can end
// before the accept path records its event: the history still shows it
// delivered, never pending for good.
func TestHistoryKeepsDeliveriesFasterThanTheAccept(t *testing.T) {
	d := daemontest.Start(t, fmt.Sprintf(`
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: %q }
sources:
  calls: { type: generic, path: /hooks/calls, event: call }
sinks:
  a: { type: file, path: %q }
  b: { type: log }
rules:
  - { name: all, to: [a, b] }
`, t.TempDir(), filepath.Join(t.TempDir(), "events.jsonl")))
	const n = 40
	for i := range n {
		post(t, d, fmt.Sprintf(`{"id":"fast-%d"}`, i))
	}
	var page struct {
		Items []struct {
			ID         string
			Deliveries []struct{ Sink, State string }
		}
	}
	daemontest.Eventually(t, "every delivery in the history", func() bool {
		getJSON(t, d, "/api/history?source=calls&limit=500", &page)
		done := 0
		for _, it := range page.Items {
			for _, dl := range it.Deliveries {
				if dl.State == "delivered" {
					done++
				}
			}
		}
		return done == 2*n
	})
}
