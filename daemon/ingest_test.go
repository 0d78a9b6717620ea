package daemon_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchboard/daemon/daemontest"
)

// ingestConfig: a generic source with a time field, bird and mobtexting,
// a file archive of everything and three http peers: the normalized event,
// the raw body and a template.
func ingestConfig(dir, url string) string {
	return `
server: { listen: "127.0.0.1:0", max_batch_events: 5 }
admin: { listen: "127.0.0.1:0" }
queue: { dir: ` + filepath.Join(dir, "q") + ` }
sources:
  app: { type: generic, time_field: ts }
  bird: { type: bird }
  mob: { type: mobtexting }
sinks:
  archive: { type: file, path: ` + filepath.Join(dir, "events.jsonl") + ` }
  event: { type: http, url: "` + url + `/event" }
  raw: { type: http, url: "` + url + `/raw", body: raw }
  tmpl: { type: http, url: "` + url + `/tmpl", body: template, template: 'id={{ .id }} big={{ .payload.big }} n={{ .big }}' }
rules:
  - { name: app, sources: [app], events: ["*.*.*.failed", "order.*"], to: [event, raw, tmpl] }
  - { name: all, to: [archive] }
`
}

// archived waits for n lines in the file sink and returns them as text.
func archived(t *testing.T, dir string, n int) []string {
	t.Helper()
	path := filepath.Join(dir, "events.jsonl")
	daemontest.Eventually(t, "archived events", func() bool { return len(daemontest.ReadLines(t, path)) >= n })
	b, _ := os.ReadFile(path)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// Issue 10.1: an event time that RFC 3339 cannot write was answered 200,
// then skipped by the worker as unreadable: lost. It is now delivered, with
// the receipt time as its time and the payload as sent.
func TestEventTimeOutOfRangeIsDeliveredWithReceiptTime(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, ingestConfig(dir, daemontest.NewReceiver(t).URL))
	base := "http://" + d.WebhookAddr()
	for _, req := range []struct{ path, body, field string }{
		{"/hooks/app", `{"event":"x","id":"t1","ts":9000000000000000000}`, `"ts":9000000000000000000`},
		{"/hooks/app", `{"event":"x","id":"t2","ts":"9999-12-31T23:59:59-23:59"}`, `"ts":"9999-12-31T23:59:59-23:59"`},
		{"/hooks/bird", `{"service":"channels","event":"voice.inbound","payload":{"id":"t3","status":"ringing","updatedAt":"9999-12-31T23:59:59-23:59"}}`,
			`"updatedAt":"9999-12-31T23:59:59-23:59"`},
		{"/hooks/mob", `{"event":"whatsapp:message:status","payload":{"id":"t4","status":"delivered","delivered_at":"9999-12-31T23:59:59-23:59"}}`,
			`"delivered_at":"9999-12-31T23:59:59-23:59"`},
	} {
		if code, resp := daemontest.Post(t, base+req.path, req.body); code != 200 || resp["status"] != "accepted" {
			t.Fatalf("%s: got %d %v", req.body, code, resp)
		}
	}
	lines := archived(t, dir, 4)
	for i, l := range daemontest.ReadLines(t, filepath.Join(dir, "events.jsonl")) {
		if l["time"] != l["received_at"] {
			t.Errorf("event %v: time %v, want the receipt time %v", l["id"], l["time"], l["received_at"])
		}
		if !strings.Contains(lines[i], []string{`"ts":9000000000000000000`, `"ts":"9999-12-31T23:59:59-23:59"`, `"updatedAt":"9999-12-31T23:59:59-23:59"`, `"delivered_at":"9999-12-31T23:59:59-23:59"`}[i]) {
			t.Errorf("payload does not keep the value as sent: %s", lines[i])
		}
	}
}

// Issue 10.2: two ids that differ past float64's precision are two events,
// and every sink shows their exact digits.
func TestBigIdsStayDistinctAndExact(t *testing.T) {
	dir := t.TempDir()
	rcv := daemontest.NewReceiver(t)
	d := daemontest.Start(t, ingestConfig(dir, rcv.URL))
	base := "http://" + d.WebhookAddr()
	for _, id := range []string{"12345678901234567891", "12345678901234567892"} {
		body := `{"event":"order.paid","id":` + id + `,"big":123456789012345678901234567890,"amount":12.50}`
		code, resp := daemontest.Post(t, base+"/hooks/app", body)
		if code != 200 || resp["status"] != "accepted" || resp["id"] != id {
			t.Fatalf("id %s: got %d %v, want accepted", id, code, resp)
		}
	}
	lines := archived(t, dir, 2)
	daemontest.Eventually(t, "six deliveries", func() bool { return len(rcv.Got()) == 6 })
	all := strings.Join(lines, "\n") + "\n" + strings.Join(rcv.Got(), "\n")
	for _, want := range []string{
		`"id":"12345678901234567891"`, `"id":"12345678901234567892"`, // the normalized id
		`"id":12345678901234567891,`, `"id":12345678901234567892,`, // the payload as sent
		`"big":123456789012345678901234567890`, `"amount":12.50`,
		"id=12345678901234567891 big=123456789012345678901234567890 n=123456789012345678901234567890",
		"id=12345678901234567892 big=123456789012345678901234567890",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no sink shows %s:\n%s", want, all)
		}
	}
}

// Issue 10.3: event names are bounded and matched in linear time; batches
// are bounded and relaxed like single events (10.11).
func TestRequestLimits(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, ingestConfig(dir, daemontest.NewReceiver(t).URL))
	base := "http://" + d.WebhookAddr()
	batch := func(n int) string {
		return "[" + strings.Repeat(`{"event":"a"},`, n-1) + `{"event":"a"}]`
	}
	for _, tc := range []struct {
		name, body string
		want       int
		msg        string
	}{
		{"long event name", `{"event":"` + strings.Repeat(".", 2000) + `"}`, 400,
			"event name is 2000 bytes long, longer than server.max_event_name_bytes (256)"},
		{"long name in a batch", `[{"event":"a"},{"event":"` + strings.Repeat("x", 257) + `"}]`, 400,
			"batch element 1: event name is 257 bytes long, longer than server.max_event_name_bytes (256)"},
		{"batch past max_batch_events", batch(6), 413,
			"the batch holds more than 5 events, the limit set by server.max_batch_events"},
		{"batch at max_batch_events", batch(5), 200, ""},
		{"relaxed batch", `[{event:'a',id:'r1'},]`, 200, ""},
		{"relaxed object", `{event:'a',id:'r2',}`, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, resp := daemontest.Post(t, base+"/hooks/app", tc.body)
			msg, _ := resp["error"].(string)
			if code != tc.want || !strings.HasPrefix(msg, tc.msg) {
				t.Errorf("got %d %q, want %d %q", code, msg, tc.want, tc.msg)
			}
		})
	}
	// The longest name allowed against the pattern that took 1.4 s.
	start := time.Now()
	code, _ := daemontest.Post(t, base+"/hooks/app", `{"event":"`+strings.Repeat(".", 256)+`","id":"dots"}`)
	if took := time.Since(start); code != 200 || took > 2*time.Second {
		t.Errorf("256-byte name: %d in %v", code, took)
	}
}

// route (and test) refuse what the listener refuses, with its message.
func TestDryRunRefusesWhatTheListenerRefuses(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, ingestConfig(dir, daemontest.NewReceiver(t).URL))
	snap := d.Snapshot()
	for _, req := range []*http.Request{
		newRequest(t, http.MethodGet, "/hooks/bird", ""),
		newRequest(t, http.MethodPost, "/hooks/app", `{"event":"a","pad":"`+strings.Repeat("x", 2<<20)+`"}`),
		newRequest(t, http.MethodPost, "/hooks/app", batch6),
		newRequest(t, http.MethodPost, "/hooks/app", `{"event":"`+strings.Repeat("x", 300)+`"}`),
		newRequest(t, http.MethodPost, "/hooks/nope", `{}`),
	} {
		_, _, dryErr := snap.DryRun(req.Clone(req.Context()), nil)
		body, _ := req.GetBody()
		code, resp := daemontest.Send(t, req.Method, "http://"+d.WebhookAddr()+req.URL.Path, readAll(t, body))
		if dryErr == nil || resp["error"] != dryErr.Error() || code < 400 {
			t.Errorf("%s %s: listener %d %v, dry run %v", req.Method, req.URL.Path, code, resp["error"], dryErr)
		}
	}
}

var batch6 = "[" + strings.Repeat(`{"event":"a"},`, 5) + `{"event":"a"}]`

func newRequest(t *testing.T, method, path, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "http://switchboard"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
