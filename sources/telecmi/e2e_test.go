package telecmi_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchboard/daemon/daemontest"
	_ "switchboard/sinks/all"
	"switchboard/sources/sourcetest"
	_ "switchboard/sources/telecmi"
)

const token = "e2e-token-0123456789abcdef"

func configFor(dir string) string {
	return `
server: { listen: "127.0.0.1:0", max_body_bytes: 2KiB }
admin: { listen: "127.0.0.1:0" }
queue: { dir: ` + dir + ` }
sources:
  telecmi:
    type: telecmi
    token: ` + token + `
  cdrs:
    type: telecmi
    events: ["telecmi:cdr"]
    filters: [ {key: status, value: missed} ]
  fenced:
    type: telecmi
    allow_ips: ["203.0.113.0/24"]
  proxied:
    type: telecmi
    allow_ips: ["203.0.113.0/24"]
    trust_forwarded_for: true
sinks:
  archive: { type: file, path: ` + filepath.Join(dir, "events.jsonl") + ` }
rules:
  - name: everything
    to: [archive]
`
}

func readSample(t *testing.T, name string) string {
	t.Helper()
	return strings.TrimSpace(string(sourcetest.ReadFile(t, filepath.Join("testdata", name))))
}

func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, configFor(dir))
	base := "http://" + d.WebhookAddr()
	archive := filepath.Join(dir, "events.jsonl")
	const (
		jsonCT = "application/json"
		formCT = "application/x-www-form-urlencoded"
	)

	accepted := []struct {
		name, method, url, body, ctype, id string
	}{
		{"JSON, token in the path", "POST", base + "/hooks/telecmi/" + token, readSample(t, "live-outgoing-answered-leg-a.json"), jsonCT,
			"ccd826f9-67a4-4467-acfb-a53093ff5c9d:a:event:answered"},
		{"TeleCMI's printed sample (JavaScript literal)", "POST", base + "/hooks/telecmi/" + token, readSample(t, "doc/live-outgoing-answered-leg-b.js"), jsonCT,
			"81b3d612-3473-4ac3-ba6e-030ee508036f:b:event:answered"},
		{"form, token in the query", "POST", base + "/hooks/telecmi?token=" + token, readSample(t, "form/live-incoming-waiting.txt"), formCT,
			"5b7c1e0a-2f4d-4c1b-9e0f-6a1d2c3b4a50:a:event:waiting"},
		{"GET with the query, token in the query", "GET", base + "/hooks/telecmi?token=" + token + "&" + readSample(t, "query/cdr-incoming-answered.txt"), "", "",
			"5b7c1e0a-2f4d-4c1b-9e0f-6a1d2c3b4a50:cdr:answered"},
		{"GET with the query, token in the path", "GET", base + "/hooks/telecmi/" + token + "?" + readSample(t, "query/live-incoming-hangup-leg-b.txt"), "", "",
			"9d4e2b71-5a3c-4f80-b1e2-7c6d5e4f3a21:b:event:hangup"},
		{"source filter passes a missed CDR", "POST", base + "/hooks/cdrs", readSample(t, "cdr-outgoing-missed.json"), jsonCT,
			"3e2d1c0b-9a8f-4e7d-b6c5-a4b3c2d1e0f9:cdr:missed"},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			code, resp := daemontest.Send(t, tc.method, tc.url, tc.body, "Content-Type", tc.ctype)
			if code != 200 || resp["status"] != "accepted" || resp["id"] != tc.id {
				t.Fatalf("got %d %v, want 200 accepted %s", code, resp, tc.id)
			}
		})
	}

	// A resend of the same notification has the same id, so the queue
	// acknowledges it as a duplicate and does not route it again.
	code, resp := daemontest.Post(t, base+"/hooks/telecmi/"+token, readSample(t, "live-outgoing-answered-leg-a.json"), "Content-Type", jsonCT)
	if code != 200 || resp["status"] != "duplicate" || resp["id"] != accepted[0].id {
		t.Errorf("resend: got %d %v, want 200 duplicate %s", code, resp, accepted[0].id)
	}

	filtered := []struct{ name, body string }{
		{"answered CDR", readSample(t, "cdr-incoming-answered.json")},
		{"live event", readSample(t, "live-incoming-waiting.json")},
	}
	for _, tc := range filtered {
		t.Run("filtered "+tc.name, func(t *testing.T) {
			code, resp := daemontest.Post(t, base+"/hooks/cdrs", tc.body, "Content-Type", jsonCT)
			if code != 200 || resp["status"] != "filtered" {
				t.Fatalf("got %d %v, want 200 filtered", code, resp)
			}
		})
	}

	event := readSample(t, "live-incoming-answered.json")
	rejected := []struct {
		name, method, url, body string
		header                  []string
		status                  int
		msg                     string
	}{
		{"no token", "POST", base + "/hooks/telecmi", event, nil, 401,
			"missing token: end the webhook URL with the source's token (/hooks/telecmi/<token>) or add ?token=<token>"},
		{"wrong token in the path", "POST", base + "/hooks/telecmi/wrong-token-0123456789", event, nil, 401,
			"wrong token in the URL path; the webhook URL must end in the source's token: /hooks/telecmi/<token>"},
		{"wrong token in the query", "GET", base + "/hooks/telecmi?type=event&token=nope", "", nil, 401,
			"wrong token query parameter; it must equal the source's token"},
		{"address not allowed", "POST", base + "/hooks/fenced", event, nil, 403,
			"client address 127.0.0.1 (from the connection) is not in allow_ips; add it if this is TeleCMI"},
		{"X-Forwarded-For not trusted", "POST", base + "/hooks/fenced", event, []string{"X-Forwarded-For", "203.0.113.5"}, 403,
			"client address 127.0.0.1 (from the connection) is not in allow_ips; add it if this is TeleCMI"},
		{"trusted X-Forwarded-For not allowed", "POST", base + "/hooks/proxied", event, []string{"X-Forwarded-For", "198.51.100.5"}, 403,
			"client address 198.51.100.5 (from X-Forwarded-For) is not in allow_ips; add it if this is TeleCMI"},
		{"no type", "POST", base + "/hooks/cdrs", `{"status":"missed"}`, nil, 400,
			`no "type" field: TeleCMI marks live events with type "event" and call records with type "cdr"; check that this request comes from TeleCMI`},
		{"unreadable body", "POST", base + "/hooks/cdrs", `{type: cdr}`, nil, 400,
			`body is not JSON: line 1, column 8: unquoted word "cdr"; quote strings, and write true, false and null in lower case`},
		{"empty GET", "GET", base + "/hooks/cdrs", "", nil, 400,
			"the request carries no event: TeleCMI sends it as a JSON or form body (POST) or as query parameters (GET)"},
		{"method", "PUT", base + "/hooks/cdrs", event, nil, 405, "method PUT is not allowed here; use GET, HEAD or POST"},
		{"too large", "POST", base + "/hooks/cdrs", `{"type":"cdr","pad":"` + strings.Repeat("x", 3000) + `"}`, nil, 413,
			"body is larger than server.max_body_bytes (2KiB)"},
		// Another source's token is never echoed.
		{"no subpath without a token", "POST", base + "/hooks/fenced/" + token, event, nil, 404,
			"no source is configured at /hooks/fenced/<secret>"},
		{"a path under the token", "POST", base + "/hooks/telecmi/" + token + "/x", event, nil, 404,
			"no source is configured at /hooks/telecmi/<secret>/x"},
	}
	for _, tc := range rejected {
		t.Run("rejected "+tc.name, func(t *testing.T) {
			code, resp := daemontest.Send(t, tc.method, tc.url, tc.body, append([]string{"Content-Type", jsonCT}, tc.header...)...)
			if code != tc.status || resp["error"] != tc.msg {
				t.Errorf("got %d %q\nwant %d %q", code, resp["error"], tc.status, tc.msg)
			}
		})
	}

	// The trusted proxy's client, when allowed, gets through.
	code, resp = daemontest.Post(t, base+"/hooks/proxied", event, "Content-Type", jsonCT, "X-Forwarded-For", "203.0.113.5")
	if code != 200 || resp["status"] != "accepted" {
		t.Fatalf("trusted X-Forwarded-For: got %d %v", code, resp)
	}

	want := len(accepted) + 1
	daemontest.Eventually(t, "the accepted events in the archive", func() bool { return len(daemontest.ReadLines(t, archive)) >= want })
	time.Sleep(100 * time.Millisecond) // anything wrongly routed would land by now
	lines := daemontest.ReadLines(t, archive)
	if len(lines) != want {
		t.Fatalf("archive has %d events, want %d (rejected, filtered and resent requests route nothing)", len(lines), want)
	}
	raw, _ := os.ReadFile(archive)
	if strings.Contains(string(raw), token) || strings.Contains(string(raw), url.QueryEscape(token)) {
		t.Errorf("the token reached the sink:\n%s", raw)
	}
	for _, l := range lines {
		if l["id"] == "5b7c1e0a-2f4d-4c1b-9e0f-6a1d2c3b4a50:cdr:answered" {
			p := l["payload"].(map[string]any)
			// A GET's values are text; the normalization makes them typed.
			if p["app_id"] != float64(2223343) || p["record"] != true || p["from"] != "442000000002" {
				t.Errorf("GET payload not normalized: %v", p)
			}
			if c, _ := p["custom"].(map[string]any); c["crm"] != "true" {
				t.Errorf("custom not parsed: %v", p["custom"])
			}
		}
	}
}
