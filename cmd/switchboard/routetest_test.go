package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExampleRoutingTestsPass(t *testing.T) {
	code, out, errb := run(t, "", "test", "-c", "../../config.example.yaml", "../../examples/config.example.tests.yaml")
	if code != 0 || !strings.Contains(out, "8 passed, 0 failed") {
		t.Fatalf("exit %d\n%s%s", code, out, errb)
	}
}

func TestRoutingTestFailuresSayWhatDiffers(t *testing.T) {
	dir := t.TempDir()
	tests := filepath.Join(dir, "tests.yaml")
	os.WriteFile(tests, []byte(`
tests:
  - name: wrong sinks
    source: app
    payload: { event: voice.outbound, payload: { id: c1, status: failed } }
    expect: { rules: [failed], sinks: [alerts] }
  - name: wrong rejection
    source: app
    payload: { event: x }
    expect: { rejected: 401 }
  - name: right
    source: app
    payload: { status: x }
    expect: { rejected: 400 }
`), 0o644)
	code, out, _ := run(t, "", "test", "-c", writeConfig(t, routeConfig), tests)
	want := []string{
		"FAIL  wrong sinks",
		"      sinks: want [alerts], got [alerts, crm]",
		"FAIL  wrong rejection",
		"      rejected: want 401, but the source accepted it",
		"ok    right",
		"1 passed, 2 failed",
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestRoutingTestFileProblems(t *testing.T) {
	tests := filepath.Join(t.TempDir(), "tests.yaml")
	os.WriteFile(tests, []byte("tests:\n  - name: x\n    sorce: app\n    expect: {}\n"), 0o644)
	code, _, errb := run(t, "", "test", "-c", writeConfig(t, routeConfig), tests)
	if code != 1 || !strings.Contains(errb, `tests[0].sorce: unknown setting; did you mean "source"?`) {
		t.Errorf("exit %d, stderr:\n%s", code, errb)
	}
}

func TestRouteJSONLinesSummary(t *testing.T) {
	lines := filepath.Join(t.TempDir(), "day.jsonl")
	os.WriteFile(lines, []byte(`{"event":"voice.outbound","payload":{"id":"a1","status":"failed"}}
{"event":"voice.inbound","payload":{"id":"a2","status":"completed"}}
{"id":"a3","source":"app","event":"voice.inbound","status":"failed","time":"2026-11-23T07:00:00.000Z","received_at":"2026-11-23T07:00:00.000Z","payload":{}}
{"no":"event"}
`), 0o644)
	code, out, errb := run(t, "", "route", "-c", writeConfig(t, routeConfig), "--source", "app", lines)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	for _, w := range []string{"a1", "a2", "a3", "3 events", "failed        2", "inbound-only  2", "crm     2", "alerts  3", "broken        0        3"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if !strings.Contains(errb, "line 4: rejected (400 Bad Request): no event name") {
		t.Errorf("stderr = %q", errb)
	}
}

// route runs the daemon's ingest pipeline: it refuses what the webhook
// listener refuses, with the listener's status and message.
func TestRouteRefusesWhatTheListenerRefuses(t *testing.T) {
	cfg := writeConfig(t, `
server: { max_body_bytes: 64, max_event_name_bytes: 8, max_batch_events: 2 }
sources:
  app: { type: generic }
  bird: { type: bird }
sinks:
  archive: { type: file, path: /nonexistent/a.jsonl }
rules:
  - { name: all, to: [archive] }
`)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong method", []string{"--source", "bird"}, "rejected (405 Method Not Allowed): method GET is not allowed here; use POST"},
		{"body over max_body_bytes", []string{"--source", "app", write("big.json", `{"event":"a","pad":"`+strings.Repeat("x", 100)+`"}`)},
			"rejected (413 Request Entity Too Large): body is larger than server.max_body_bytes (64B)"},
		{"event name too long", []string{"--source", "app", write("long.json", `{"event":"abcdefghij"}`)},
			"rejected (400 Bad Request): event name is 10 bytes long, longer than server.max_event_name_bytes (8)"},
		{"batch too large", []string{"--source", "app", write("batch.json", `[{"event":"a"},{"event":"b"},{"event":"c"}]`)},
			"rejected (413 Request Entity Too Large): the batch holds more than 2 events, the limit set by server.max_batch_events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errb := run(t, "", append([]string{"route", "-c", cfg}, tc.args...)...)
			if code != 1 || !strings.Contains(errb, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant %q", code, errb, tc.want)
			}
		})
	}
	// A relaxed batch is read as the listener reads it.
	code, out, errb := run(t, "", "route", "-c", cfg, "--source", "app", write("relaxed.json", `[{event:'a',},]`))
	if code != 0 || !strings.Contains(out, `"event": "a"`) {
		t.Errorf("relaxed batch: exit %d\n%s%s", code, out, errb)
	}
}
