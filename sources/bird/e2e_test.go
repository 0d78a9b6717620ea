package bird_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/daemon/daemontest"
	_ "switchboard/sinks/all"
	"switchboard/sources/bird"
)

const (
	key       = "e2e-signing-key"
	publicURL = "https://switchboard.example.com/hooks/bird"
)

func configFor(dir string) string {
	return `
server: { listen: "127.0.0.1:0", max_body_bytes: 4KiB }
admin: { listen: "127.0.0.1:0" }
queue: { dir: ` + dir + ` }
sources:
  bird:
    type: bird
    signing_key: ` + key + `
    public_url: ` + publicURL + `
    events: [voice.inbound]
    filters:
      - { key: status, value: completed }
      - { key: status, value: failed }
  direct:
    type: bird
    path: /direct
    signing_key: ` + key + `
  open:
    type: bird
    path: /open
sinks:
  archive: { type: file, path: ` + filepath.Join(dir, "events.jsonl") + ` }
rules:
  - name: failed-calls
    events: ["voice.*"]
    filters: [ {key: status, value: failed}, {key: status, value: no-answer}, {key: status, value: busy} ]
    to: [archive]
  - name: all
    to: [archive]
`
}

// send is daemontest.Send with Bird's Content-Type.
func send(t *testing.T, method, url, body string, header ...string) (int, map[string]any) {
	t.Helper()
	return daemontest.Send(t, method, url, body, append([]string{"Content-Type", "application/json"}, header...)...)
}

// signed returns the headers Bird sends for body POSTed to url at ts.
func signed(ts time.Time, url, body string) []string {
	sec := strconv.FormatInt(ts.Unix(), 10)
	return []string{
		"MessageBird-Signature", bird.Sign(key, sec, url, []byte(body)),
		"MessageBird-Request-Timestamp", sec,
		"MessageBird-Request-Id", "6f1c2d3e-aaaa-4bbb-8ccc-123456789abc",
	}
}

func call(event, id, status string) string {
	return `{"service":"channels","event":"` + event + `","payload":{"id":"` + id + `","status":"` + status +
		`","from":"+31687654321","to":"+31612345678","createdAt":"2026-11-23T07:10:00.000Z","updatedAt":"2026-11-23T07:11:39.000Z"}}`
}

func TestEndToEndAcceptsAndFilters(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, configFor(dir))
	base := "http://" + d.WebhookAddr()
	now := time.Now()

	body := call("voice.inbound", "in-1", "completed")
	code, resp := send(t, "POST", base+"/hooks/bird", body, signed(now, publicURL, body)...)
	if code != 200 || resp["status"] != "accepted" || resp["id"] != "in-1:completed" {
		t.Fatalf("signed inbound completed: got %d %v, want 200 accepted in-1:completed", code, resp)
	}
	// A Bird retry hours later keeps its first timestamp.
	body = call("voice.inbound", "in-2", "failed")
	code, resp = send(t, "POST", base+"/hooks/bird", body, signed(now.Add(-7*time.Hour), publicURL, body)...)
	if code != 200 || resp["status"] != "accepted" || resp["id"] != "in-2:failed" {
		t.Fatalf("late retry: got %d %v, want 200 accepted in-2:failed", code, resp)
	}
	// events: [voice.inbound] drops outbound events, like a Bird subscription.
	body = call("voice.outbound", "out-1", "failed")
	code, resp = send(t, "POST", base+"/hooks/bird", body, signed(now, publicURL, body)...)
	if code != 200 || resp["status"] != "filtered" {
		t.Fatalf("outbound on an inbound-only source: got %d %v, want 200 filtered", code, resp)
	}
	// The status filters let completed and failed through, nothing else.
	body = call("voice.inbound", "in-1", "ringing")
	code, resp = send(t, "POST", base+"/hooks/bird", body, signed(now, publicURL, body)...)
	if code != 200 || resp["status"] != "filtered" {
		t.Fatalf("ringing with status filters completed/failed: got %d %v, want 200 filtered", code, resp)
	}
	// Without public_url the URL is rebuilt from the request, query included.
	body = call("voice.outbound", "out-2", "busy")
	directURL := base + "/direct?tenant=acme"
	code, resp = send(t, "POST", directURL, body, signed(now, directURL, body)...)
	if code != 200 || resp["id"] != "out-2:busy" {
		t.Fatalf("rebuilt URL: got %d %v, want 200 accepted out-2:busy", code, resp)
	}
	// Behind a proxy: X-Forwarded-Proto and X-Forwarded-Host.
	body = call("voice.outbound", "out-3", "completed")
	proxied := append(signed(now, "https://calls.example.com/direct", body), "X-Forwarded-Proto", "https", "X-Forwarded-Host", "calls.example.com")
	code, resp = send(t, "POST", base+"/direct", body, proxied...)
	if code != 200 || resp["id"] != "out-3:completed" {
		t.Fatalf("proxied: got %d %v, want 200 accepted out-3:completed", code, resp)
	}
	// Unsigned source, legacy shape.
	code, resp = send(t, "POST", base+"/open", `{"type":"outgoing_call_completed","callId":"legacy-1"}`)
	if code != 200 || resp["id"] != "legacy-1:outgoing_call_completed" {
		t.Fatalf("legacy: got %d %v", code, resp)
	}

	// Bird's retry of the first event: same body, same timestamp, later.
	// Acknowledged, and not routed a second time.
	body = call("voice.inbound", "in-1", "completed")
	code, resp = send(t, "POST", base+"/hooks/bird", body, signed(now, publicURL, body)...)
	if code != 200 || resp["status"] == "filtered" {
		t.Fatalf("retry of an accepted event: got %d %v, want 200", code, resp)
	}

	archive := filepath.Join(dir, "events.jsonl")
	daemontest.Eventually(t, "five archived events", func() bool { return len(daemontest.ReadLines(t, archive)) >= 5 })
	time.Sleep(100 * time.Millisecond)
	if n := len(daemontest.ReadLines(t, archive)); n != 5 {
		t.Errorf("archive has %d events, want 5: the retry must not be routed again", n)
	}
	byID := map[string]map[string]any{}
	for _, l := range daemontest.ReadLines(t, archive) {
		byID[l["id"].(string)] = l
	}
	for _, id := range []string{"in-1:completed", "in-2:failed", "out-2:busy", "out-3:completed", "legacy-1:outgoing_call_completed"} {
		if byID[id] == nil {
			t.Errorf("archive lacks %s; has %v", id, byID)
		}
	}
	ev := byID["in-1:completed"]
	if ev["source"] != "bird" || ev["event"] != "voice.inbound" || ev["status"] != "completed" || ev["time"] != "2026-11-23T07:11:39.000Z" {
		t.Errorf("archived event = %v", ev)
	}
	if p, _ := ev["payload"].(map[string]any); p["id"] != "in-1" || p["to"] != "+31612345678" {
		t.Errorf("payload is not the inner call: %v", ev["payload"])
	}
}

func TestEndToEndRejectionsRouteNothing(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, configFor(dir))
	base := "http://" + d.WebhookAddr()
	now := time.Now()
	good := call("voice.inbound", "in-1", "failed")
	sec := strconv.FormatInt(now.Unix(), 10)

	tests := []struct {
		name, method, path, body string
		header                   []string
		want                     int
		wantErr                  string
	}{
		{"unsigned", "POST", "/hooks/bird", good, nil, 401,
			"missing messagebird-signature header; set the signing key on the Bird webhook subscription, or remove signing_key"},
		{"wrong key", "POST", "/hooks/bird", good,
			[]string{"MessageBird-Signature", bird.Sign("nope", sec, publicURL, []byte(good)), "MessageBird-Request-Timestamp", sec}, 401,
			"signature does not match"},
		{"tampered body", "POST", "/hooks/bird", strings.Replace(good, "failed", "completed", 1), signed(now, publicURL, good), 401,
			"signature does not match"},
		{"signed for another URL", "POST", "/direct", good, signed(now, publicURL, good), 401,
			"signature does not match; check that signing_key is the subscription's signing key, and set public_url to the subscription's url if a proxy changes it (the URL checked was http://" + d.WebhookAddr() + "/direct)"},
		{"stale", "POST", "/hooks/bird", good, signed(now.Add(-25*time.Hour), publicURL, good), 401,
			"messagebird-request-timestamp is 25h"},
		{"future", "POST", "/hooks/bird", good, signed(now.Add(90*time.Minute), publicURL, good), 401,
			"messagebird-request-timestamp is 1h"},
		{"bad base64", "POST", "/hooks/bird", good, []string{"MessageBird-Signature", "%%%", "MessageBird-Request-Timestamp", sec}, 401,
			"messagebird-signature is not base64"},
		{"signed but not JSON", "POST", "/hooks/bird", `{"event":`, signed(now, publicURL, `{"event":`), 400,
			"body is not JSON: "},
		{"signed but no event", "POST", "/hooks/bird", `{"payload":{"id":"x"}}`, signed(now, publicURL, `{"payload":{"id":"x"}}`), 400,
			`no event name: the body has no "event" string`},
		{"subscription request", "POST", "/open", `{"service":"channels","event":"voice.inbound","url":"https://yoururl.com","signingKey":"mysecretkey"}`, nil, 400,
			"this is a webhook-subscription request"},
		{"GET", "GET", "/hooks/bird", "", nil, 405, "method GET is not allowed here; use POST"},
		{"PUT", "PUT", "/open", good, nil, 405, "method PUT is not allowed here; use POST"},
		{"too large", "POST", "/open", `{"event":"voice.inbound","payload":{"id":"big","pad":"` + strings.Repeat("x", 5000) + `"}}`, nil, 413,
			"body is larger than server.max_body_bytes (4KiB)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, resp := send(t, tc.method, base+tc.path, tc.body, tc.header...)
			msg, _ := resp["error"].(string)
			if code != tc.want || !strings.HasPrefix(msg, tc.wantErr) {
				t.Errorf("got %d %q, want %d %q...", code, msg, tc.want, tc.wantErr)
			}
			if strings.Contains(msg, key) || strings.Contains(msg, "mysecretkey") {
				t.Errorf("answer leaks a key: %q", msg)
			}
		})
	}
	code, resp := send(t, "POST", base+"/hooks/bird", good, signed(now, publicURL, good)...)
	if code != 200 || resp["id"] != "in-1:failed" {
		t.Fatalf("good request after the rejections: got %d %v", code, resp)
	}
	archive := filepath.Join(dir, "events.jsonl")
	daemontest.Eventually(t, "the one accepted event", func() bool { return len(daemontest.ReadLines(t, archive)) == 1 })
	time.Sleep(100 * time.Millisecond)
	if lines := daemontest.ReadLines(t, archive); len(lines) != 1 || lines[0]["id"] != "in-1:failed" {
		t.Errorf("archive = %v, want only in-1:failed: rejected requests must route nothing", lines)
	}
}

// TestCheck: `check` is daemon.Build; it must refuse status filters the
// pinned Bird events cannot have, and bad settings, naming where they are.
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, sources, rules string
		want                 []string
	}{
		{
			name: "accepted is not an inbound status",
			sources: `
  bird:
    type: bird
    events: [voice.inbound]
    filters: [ {key: status, value: accepted} ]`,
			want: []string{`sources.bird.filters[0].value: "accepted" is not a status of voice.inbound; it can be one of: busy, completed, failed, no-answer, ongoing, ringing, starting`},
		},
		{
			name: "accepted is an outbound status",
			sources: `
  bird:
    type: bird
    events: [voice.outbound]
    filters: [ {key: status, value: accepted}, {key: status, value: cancelled} ]`,
		},
		{
			name: "a rule limited to the bird source is checked against its catalog",
			sources: `
  bird:
    type: bird`,
			rules: `
  - name: typo
    sources: [bird]
    filters: [ {key: status, value: complete} ]
    to: [archive]`,
			want: []string{`rules[1] (typo).filters[0].value: "complete" is not a status of voice.inbound, voice.outbound; it can be one of: accepted, busy, cancelled, completed, failed, no-answer, ongoing, ringing, starting`},
		},
		{
			name: "source filters without events are checked against the catalog",
			sources: `
  bird:
    type: bird
    filters: [ {key: status, value: complete} ]`,
			want: []string{`sources.bird.filters[0].value: "complete" is not a status of voice.inbound, voice.outbound; it can be one of: accepted, busy, cancelled, completed, failed, no-answer, ongoing, ringing, starting`},
		},
		{
			name: "two channelId filters",
			sources: `
  bird:
    type: bird
    filters: [ {key: channelId, value: a}, {key: channelId, value: b} ]`,
			want: []string{`sources.bird.filters[1]: a second channelId filter; a subscription takes at most one channelId, so split this into two rules or sources`},
		},
		{
			name: "bad settings",
			sources: `
  bird:
    type: bird
    public_url: /hooks/bird
    max_age: 0s`,
			want: []string{
				"sources.bird.public_url: must be an absolute http:// or https:// URL, the URL Bird calls, like https://switchboard.example.com/hooks/bird",
				"sources.bird.max_age: must be a positive duration; Bird retries for hours with the original timestamp, so keep it at least 8h (default 24h)",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := `
queue: { dir: ` + t.TempDir() + ` }
sources:` + tc.sources + `
sinks:
  archive: { type: file, path: ` + filepath.Join(t.TempDir(), "e.jsonl") + ` }
rules:
  - name: all
    to: [archive]` + tc.rules + "\n"
			f, err := config.Parse([]byte(yaml))
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			_, err = daemon.Build(f)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Build accepted the config, want %q", tc.want)
			}
			got := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("problems:\n%s\nlack:\n%s", got, w)
				}
			}
		})
	}
}
