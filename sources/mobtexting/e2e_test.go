package mobtexting_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/daemon/daemontest"
	_ "switchboard/sinks/all"
	_ "switchboard/sources/mobtexting"
	"switchboard/sources/sourcetest"
)

func configFor(dir string) string {
	return `
server: { listen: "127.0.0.1:0", max_body_bytes: 4KiB }
admin: { listen: "127.0.0.1:0" }
queue: { dir: ` + dir + ` }
sources:
  mob:
    type: mobtexting
    secret: s3cret
    verify_token: vt-123
  undelivered:
    type: mobtexting
    event: sms:message:status
    events: [sms:message:status]
    filters:
      - { key: status, value: UNDELIV }
      - { key: status, value: EXPIRED }
sinks:
  archive: { type: file, path: ` + filepath.Join(dir, "events.jsonl") + ` }
rules:
  - name: all
    to: [archive]
`
}

type call struct {
	method, path, body, ctype string
	header                    []string
}

func (c call) do(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	header := c.header
	if c.ctype != "" {
		header = append([]string{"Content-Type", c.ctype}, header...)
	}
	return daemontest.Send(t, c.method, base+c.path, c.body, header...)
}

func sample(t *testing.T, name string) string {
	t.Helper()
	return strings.TrimSpace(string(sourcetest.ReadFile(t, filepath.Join("testdata", name))))
}

var bearer = []string{"Authorization", "Bearer s3cret"}

func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, configFor(dir))
	base := "http://" + d.WebhookAddr()
	archive := filepath.Join(dir, "events.jsonl")

	accepted := []struct {
		name string
		call call
		id   string
	}{
		{"wrapped event", call{"POST", "/hooks/mob", sample(t, "whatsapp-message-status.json"), "application/json", bearer},
			"a418d672-9781-4d97-b517-a56f7d95ad8a:delivered"},
		{"event in the path", call{"POST", "/hooks/mob/sms:unsubscription", sample(t, "sms-unsubscription.json"), "application/json", bearer},
			"sms:unsubscription:d105a1ef-6728-4563-8b85-7f5356c8axxx"},
		{"delivery report at its path", call{"POST", "/hooks/mob/sms:message:status", sample(t, "sms-message-status.json"), "application/json", bearer},
			"b34e35ad-fe34-4a8b-977c-b21cd76cd7d6:1:DELIVRD"},
		{"GET with a query", call{"GET", "/hooks/mob?" + sample(t, "voice-message-out-query.txt"), "", "", bearer},
			"1234-1333-56789:ANSWER"},
		{"GET with a query at an event path", call{"GET", "/hooks/mob/sms:message:status?id=m-9&mobile=918921269123&status=EXPIRED", "", "", bearer},
			"m-9:EXPIRED"},
		{"form PUT, by shape", call{"PUT", "/hooks/mob", sample(t, "sms-message-status-form.txt"), "application/x-www-form-urlencoded", bearer},
			"b34e35ad-fe34-4a8b-977c-b21cd76cd7d6:1:UNDELIV"},
		{"doc sample, relaxed JSON", call{"POST", "/hooks/mob", sample(t, "doc-voice-message-out.json"), "application/json", bearer},
			"1234-1333-XXXXX:ANSWER"},
		{"source filter passes", call{"POST", "/hooks/undelivered", sample(t, "sms-message-status-undeliv.json"), "application/json", nil},
			"5f0e8a3c-3b1d-4f7e-9a51-2d9c7b1e4a10:1:UNDELIV"},
	}
	for _, tc := range accepted {
		code, resp := tc.call.do(t, base)
		if code != 200 || resp["status"] != "accepted" || resp["id"] != tc.id {
			t.Errorf("%s: got %d %v, want 200 accepted %s", tc.name, code, resp, tc.id)
		}
	}

	// The source takes undelivered reports only, like a subscription.
	code, resp := call{"POST", "/hooks/undelivered", sample(t, "sms-message-status.json"), "application/json", nil}.do(t, base)
	if code != 200 || resp["status"] != "filtered" {
		t.Errorf("delivered report at the undelivered source: got %d %v, want 200 filtered", code, resp)
	}

	// The verification handshake, without the bearer secret.
	hs := `{"validation_key":"vk-1","challenge":"ch-42"}`
	code, resp = call{"POST", "/hooks/mob?token=vt-123", hs, "application/json", nil}.do(t, base)
	if code != 200 || resp["challenge"] != "ch-42" || len(resp) != 1 {
		t.Errorf("handshake: got %d %v, want 200 {challenge: ch-42}", code, resp)
	}

	rejected := []struct {
		name   string
		call   call
		status int
		msg    string
	}{
		{"handshake with a wrong token", call{"POST", "/hooks/mob?token=vt-12", hs, "application/json", nil},
			401, "verification request refused: "},
		{"no bearer", call{"POST", "/hooks/mob", sample(t, "whatsapp-message-status.json"), "application/json", nil},
			401, "missing or wrong bearer token: "},
		{"wrong bearer", call{"POST", "/hooks/mob", sample(t, "whatsapp-message-status.json"), "application/json", []string{"Authorization", "Bearer nope"}},
			401, "missing or wrong bearer token: "},
		{"unsubscription without its product", call{"POST", "/hooks/mob", sample(t, "rcs-unsubscription.json"), "application/json", bearer},
			400, "ambiguous event: the body is an unsubscription, but every product (sms, whatsapp, rcs, voice, viber) sends the same one and nothing in it says which; give each product's webhook its own URL with the event in the path (e.g. /hooks/mob/whatsapp:unsubscription) or set event: on the source"},
		{"unknown event in the path", call{"POST", "/hooks/mob/sms:status", sample(t, "sms-message-status.json"), "application/json", bearer},
			400, `unknown event "sms:status" in the path /hooks/mob/sms:status; the last path segment must be one of: contacts:subscriber:subscription, `},
		{"bad JSON", call{"POST", "/hooks/mob", `{"event":`, "application/json", bearer},
			400, "body is not JSON: "},
		{"empty GET", call{"GET", "/hooks/mob", "", "", bearer},
			400, "empty request: "},
		{"two segments", call{"POST", "/hooks/mob/sms:message:status/x", `{}`, "application/json", bearer},
			404, "no source is configured at /hooks/mob/sms:message:status/x"},
		{"DELETE", call{"DELETE", "/hooks/mob", "", "", bearer},
			405, "method DELETE is not allowed here; use GET, HEAD, POST or PUT"},
		{"too large", call{"POST", "/hooks/mob", `{"event":"vmn:message:in","payload":{"pad":"` + strings.Repeat("x", 5000) + `"}}`, "application/json", bearer},
			413, "body is larger than server.max_body_bytes"},
	}
	for _, tc := range rejected {
		code, resp := tc.call.do(t, base)
		msg, _ := resp["error"].(string)
		if code != tc.status || !strings.HasPrefix(msg, tc.msg) {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, code, msg, tc.status, tc.msg)
		}
	}
	// A 405 names the methods the source takes.
	req, _ := http.NewRequest("DELETE", base+"/hooks/mob", nil)
	req.Header.Set(bearer[0], bearer[1])
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Error(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD, POST, PUT" {
			t.Errorf("DELETE: got %d with Allow %q, want 405 with Allow \"GET, HEAD, POST, PUT\"", resp.StatusCode, resp.Header.Get("Allow"))
		}
	}

	daemontest.Eventually(t, "the accepted events in the file sink", func() bool { return len(daemontest.ReadLines(t, archive)) == len(accepted) })
	time.Sleep(100 * time.Millisecond)
	lines := daemontest.ReadLines(t, archive)
	if len(lines) != len(accepted) {
		t.Fatalf("file sink has %d events, want %d: rejected, filtered and handshake requests must route nothing", len(lines), len(accepted))
	}
	byID := map[string]map[string]any{}
	for _, l := range lines {
		byID[l["id"].(string)] = l
	}
	for _, tc := range accepted {
		if byID[tc.id] == nil {
			t.Errorf("file sink lacks %s (%s)", tc.id, tc.name)
		}
	}
	ev := byID["b34e35ad-fe34-4a8b-977c-b21cd76cd7d6:1:DELIVRD"]
	if ev["event"] != "sms:message:status" || ev["source"] != "mob" || ev["time"] != "2021-04-09T16:27:51.000Z" {
		t.Errorf("delivery report = %v", ev)
	}
	wa := byID["a418d672-9781-4d97-b517-a56f7d95ad8a:delivered"]
	if p, _ := wa["payload"].(map[string]any); p["channel"] != "whatsapp" || p["event"] != nil {
		t.Errorf("wrapped event's payload is not the inner object: %v", wa["payload"])
	}
}

// The catalog makes `check` refuse a status no pinned event can have.
func TestStatusFiltersAreChecked(t *testing.T) {
	dir := t.TempDir()
	yaml := `
queue: { dir: ` + dir + ` }
sources:
  dlr:
    type: mobtexting
    events: [sms:message:status]
    filters: [ {key: status, value: DELIVERED} ]
  mob: { type: mobtexting }
sinks:
  archive: { type: file, path: ` + filepath.Join(dir, "e.jsonl") + ` }
rules:
  - name: read
    events: ["*:message:status"]
    filters: [ {key: status, value: reed} ]
    to: [archive]
  - name: answered
    sources: [mob]
    filters: [ {key: status, value: ANSWER} ]
    to: [archive]
`
	f, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	_, err = daemon.Build(f)
	var ps config.Problems
	if !errorsAs(err, &ps) || len(ps) != 2 {
		t.Fatalf("got %v, want two problems", err)
	}
	for i, want := range []string{
		`sources.dlr.filters[0].value: "DELIVERED" is not a status of sms:message:status; it can be one of: `,
		`rules[0] (read).filters[0].value: "reed" is not a status of rcs:message:status, sms:message:status, viber:message:status, whatsapp:message:status; it can be one of: `,
	} {
		if !strings.HasPrefix(ps[i].Error(), want) {
			t.Errorf("problem %d = %s\nwant %s...", i, ps[i].Error(), want)
		}
	}
}

func errorsAs(err error, ps *config.Problems) bool {
	p, ok := err.(config.Problems)
	*ps = p
	return ok
}

// The example config passes what `switchboard check` checks.
func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "mobtexting", "switchboard.yaml")
	f, err := config.Load(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if _, err := daemon.Build(f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
