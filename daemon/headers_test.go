package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"switchboard/daemon/daemontest"
)

// headersConfig routes every event to a receiver that is sent the headers
// the event kept, as templates see them after the queue.
func headersConfig(dir, url, keep string) string {
	return `
server: { listen: "127.0.0.1:0", max_body_bytes: 1KiB }
admin: { listen: "127.0.0.1:0" }
queue: { dir: ` + filepath.Join(dir, "q") + ` }
sources:
  app: { type: generic` + keep + ` }
  bird: { type: bird }
sinks:
  rcv: { type: http, url: "` + url + `", body: json, json: { headers: "{{ json .headers }}" } }
rules:
  - { name: tenant-a, when: 'headers["x-tenant"] == "a"', to: [rcv] }
  - { name: bird, sources: [bird], to: [rcv] }
`
}

func keptHeaders(t *testing.T, rcv *daemontest.Receiver, n int) map[string]string {
	t.Helper()
	daemontest.Eventually(t, fmt.Sprintf("%d deliveries", n), func() bool { return len(rcv.Got()) >= n })
	var body struct{ Headers string }
	json.Unmarshal([]byte(rcv.Got()[n-1]), &body)
	var h map[string]string
	json.Unmarshal([]byte(body.Headers), &h)
	return h
}

// 33 KB of headers on a 23-byte body was stored with each event: now only
// the allow-list is, capped.
func TestOnlyKeptHeadersAreStored(t *testing.T) {
	rcv := daemontest.NewReceiver(t)
	d := daemontest.Start(t, headersConfig(t.TempDir(), rcv.URL, `, keep_headers: [x-tenant, X-Big, x-request-id]`))
	req, _ := http.NewRequest("POST", "http://"+d.WebhookAddr()+"/hooks/app", strings.NewReader(`{"event":"e","id":"h1"}`))
	req.Header.Set("X-Tenant", "a")
	req.Header.Add("X-Tenant", "b")
	req.Header.Set("X-Big", strings.Repeat("é", 1000))
	req.Header.Set("X-Request-Id", "r-1")
	req.Header.Set("Authorization", "Bearer not-stored")
	req.Header.Set("Cookie", "session=not-stored")
	for i := range 300 {
		req.Header.Set(fmt.Sprintf("X-Junk-%d", i), strings.Repeat("j", 100))
	}
	if resp, body := do(t, req); resp.StatusCode != 200 {
		t.Fatalf("post: %d %s", resp.StatusCode, body)
	}
	h := keptHeaders(t, rcv, 1)
	if len(h) != 3 || h["x-tenant"] != "a" || h["x-request-id"] != "r-1" {
		t.Errorf("kept %v", h)
	}
	if big := h["x-big"]; len(big) > 1024 || !strings.HasPrefix(big, "éé") || !strings.HasSuffix(big, "é") {
		t.Errorf("x-big kept as %d bytes %q...", len(big), big[:10])
	}
	// A header not kept is not seen by rules: this event matches nothing.
	req, _ = http.NewRequest("POST", "http://"+d.WebhookAddr()+"/hooks/app", strings.NewReader(`{"event":"e","id":"h2"}`))
	req.Header.Set("X-Tenant", "b")
	do(t, req)
	d2 := daemontest.Start(t, headersConfig(t.TempDir(), rcv.URL, `, keep_headers: [x-other]`))
	req, _ = http.NewRequest("POST", "http://"+d2.WebhookAddr()+"/hooks/app", strings.NewReader(`{"event":"e","id":"h3"}`))
	req.Header.Set("X-Tenant", "a")
	do(t, req)
	req, _ = http.NewRequest("POST", "http://"+d.WebhookAddr()+"/hooks/app", strings.NewReader(`{"event":"e","id":"h4"}`))
	req.Header.Set("X-Tenant", "a")
	do(t, req)
	keptHeaders(t, rcv, 2)
	for _, b := range rcv.Got() {
		if strings.Contains(b, `"h2"`) || strings.Contains(b, "not-stored") {
			t.Errorf("delivered %s", b)
		}
	}
	if n := len(rcv.Got()); n != 2 {
		t.Errorf("%d deliveries, want 2 (h1, h4)", n)
	}
}

func TestDefaultKeptHeadersPerSourceType(t *testing.T) {
	rcv := daemontest.NewReceiver(t)
	d := daemontest.Start(t, headersConfig(t.TempDir(), rcv.URL, ""))
	req, _ := http.NewRequest("POST", "http://"+d.WebhookAddr()+"/hooks/bird",
		strings.NewReader(`{"service":"channels","event":"voice.inbound","payload":{"id":"c1","status":"ringing"}}`))
	for k, v := range map[string]string{"Content-Type": "application/json", "User-Agent": "Bird/1", "X-Forwarded-For": "203.0.113.9",
		"Messagebird-Request-Id": "mb-1", "Messagebird-Request-Timestamp": "1700000000", "X-Tenant": "a", "Accept": "*/*"} {
		req.Header.Set(k, v)
	}
	if resp, body := do(t, req); resp.StatusCode != 200 {
		t.Fatalf("post: %d %s", resp.StatusCode, body)
	}
	h := keptHeaders(t, rcv, 1)
	want := map[string]string{"content-type": "application/json", "user-agent": "Bird/1", "x-forwarded-for": "203.0.113.9",
		"messagebird-request-id": "mb-1", "messagebird-request-timestamp": "1700000000"}
	if fmt.Sprint(h) != fmt.Sprint(want) {
		t.Errorf("kept %v\nwant %v", h, want)
	}
}

func TestEmptyKeepHeadersKeepsNone(t *testing.T) {
	rcv := daemontest.NewReceiver(t)
	d := daemontest.Start(t, strings.Replace(headersConfig(t.TempDir(), rcv.URL, `, keep_headers: []`),
		`when: 'headers["x-tenant"] == "a"'`, `when: 'true'`, 1))
	if code, ans := daemontest.Post(t, "http://"+d.WebhookAddr()+"/hooks/app", `{"event":"e","id":"n1"}`, "User-Agent", "x"); code != 200 {
		t.Fatalf("post: %d %v", code, ans)
	}
	if h := keptHeaders(t, rcv, 1); len(h) != 0 {
		t.Errorf("kept %v", h)
	}
}
