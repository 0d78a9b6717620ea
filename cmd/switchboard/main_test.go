package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := realMain(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "switchboard.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const routeConfig = `
sources:
  app: { type: generic, status_field: payload.status, id_field: payload.id }
sinks:
  alerts: { type: file, path: /nonexistent/alerts.jsonl }
  crm: { type: http, url: "http://127.0.0.1:1/in", body: template, template: '{"call":"{{ .id }}","status":"{{ .status }}"}' }
rules:
  - name: failed
    when: 'status == "failed"'
    to: [crm, alerts]
  - name: inbound-only
    events: [voice.inbound]
    to: [alerts]
  - name: broken
    when: 'payload.duration > 3'
    to: [alerts]
`

func TestCheckExampleConfigIsValid(t *testing.T) {
	code, out, _ := run(t, "", "check", "-c", "../../config.example.yaml")
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("check config.example.yaml: exit %d\n%s", code, out)
	}
}

func TestCheckPrintsEveryProblemAndExits1(t *testing.T) {
	p := writeConfig(t, `
sources:
  app: { type: generic, evnt_field: x }
sinks:
  crm: { type: http }
rules:
  - name: a
    when: 'status +'
    to: [nope]
  - name: a
    to: [crm]
`)
	code, out, _ := run(t, "", "check", "-c", p)
	want := []string{
		`sources.app.evnt_field: unknown setting; did you mean "event_field"?`,
		`sinks.crm.url: `,
		`rules[0] (a).when: unexpected token EOF (column 8)`,
		`rules[0] (a).to[0]: sink "nope" is not defined; define it under sinks: or use one of: crm`,
		`rules[1] (a).name: "a" is also the name of rules[0]; rule names must be unique`,
		p + `: 5 problems`,
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

func TestUsageErrorsExit2AndHelpExits0(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"check", "--bogus"}, {"route", "-c", "x.yaml"}, {"check", "extra"},
		{"queue", "salvage", "--to", "", "--dir", "x"}} {
		if code, _, _ := run(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"check", "-h"}, {"route", "--help"}} {
		code, out, errb := run(t, "", args...)
		if code != 0 || !strings.Contains(out+errb, "Usage") {
			t.Errorf("%v: exit %d, want 0 with usage", args, code)
		}
	}
	code, out, _ := run(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "switchboard ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestMissingConfigFileExits1(t *testing.T) {
	code, out, _ := run(t, "", "check", "-c", filepath.Join(t.TempDir(), "none.yaml"))
	if code != 1 || !strings.Contains(out, "cannot read config") {
		t.Errorf("exit %d, output %q", code, out)
	}
}

func TestRouteJSON(t *testing.T) {
	p := writeConfig(t, routeConfig)
	payload := `{"event":"voice.outbound","payload":{"id":"c1","status":"failed","duration":"long"}}`
	code, out, errb := run(t, payload, "route", "-c", p, "--source", "app", "--json", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	var got struct {
		Event  map[string]any             `json:"event"`
		Rules  []map[string]string        `json:"rules"`
		Sinks  []string                   `json:"sinks"`
		Bodies map[string]json.RawMessage `json:"bodies"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	if got.Event["id"] != "c1" || got.Event["status"] != "failed" || got.Event["source"] != "app" {
		t.Errorf("event = %v", got.Event)
	}
	verdicts := map[string]string{}
	for _, r := range got.Rules {
		verdicts[r["name"]] = r["verdict"]
	}
	if verdicts["failed"] != "match" || verdicts["inbound-only"] != "no_match" || verdicts["broken"] != "error" {
		t.Errorf("verdicts = %v", got.Rules)
	}
	if strings.Join(got.Sinks, ",") != "crm,alerts" {
		t.Errorf("sinks = %v, want crm,alerts", got.Sinks)
	}
	var crm bytes.Buffer
	json.Compact(&crm, got.Bodies["crm"])
	if crm.String() != `{"call":"c1","status":"failed"}` {
		t.Errorf("crm body = %s", crm.String())
	}
	var line map[string]any
	if err := json.Unmarshal(got.Bodies["alerts"], &line); err != nil || line["id"] != "c1" {
		t.Errorf("alerts body = %s", got.Bodies["alerts"])
	}
}

func TestRouteText(t *testing.T) {
	p := writeConfig(t, routeConfig)
	payload := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(payload, []byte(`{"event":"voice.inbound","payload":{"id":"c2","status":"completed"}}`), 0o644)
	code, out, errb := run(t, "", "route", "-c", p, "--source", "app", payload)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	for _, w := range []string{`"id": "c2"`, "failed", "no match", `when is false: status == "failed"`, "inbound-only", "match", "sinks: alerts", "alerts would receive:"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestRouteRejectedPayloadExits1(t *testing.T) {
	p := writeConfig(t, routeConfig)
	code, _, errb := run(t, `{"status":"x"}`, "route", "-c", p, "--source", "app", "-")
	if code != 1 || !strings.Contains(errb, "rejected (400 Bad Request): no event name") {
		t.Errorf("exit %d, stderr %q", code, errb)
	}
	code, _, errb = run(t, `{}`, "route", "-c", p, "--source", "nope", "-")
	if code != 1 || !strings.Contains(errb, `no webhook source named "nope"`) {
		t.Errorf("exit %d, stderr %q", code, errb)
	}
}

// TestBinaryRunServesAndStopsCleanly runs the real binary on the example
// config, posts the README's event, and stops it with SIGTERM.
func TestBinaryRunServesAndStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "switchboard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	listen, admin := freePort(t), freePort(t)
	example, _ := os.ReadFile("../../config.example.yaml")
	cfg := strings.NewReplacer(`"127.0.0.1:8080"`, `"`+listen+`"`, `"127.0.0.1:9090"`, `"`+admin+`"`, "./data", filepath.Join(dir, "data")).Replace(string(example))
	cfgPath := filepath.Join(dir, "cfg.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)

	cmd := exec.Command(bin, "run", "-c", cfgPath)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitUp(t, admin)
	body, _ := os.ReadFile("../../examples/bird/voice-outbound-failed.json")
	resp, err := http.Post("http://"+listen+"/hooks/bird", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("post: %d", resp.StatusCode)
	}
	alerts := filepath.Join(dir, "data", "alerts.jsonl")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(alerts)
		if bytes.Contains(b, []byte(`"status":"failed"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts.jsonl never got the event; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want 0; logs:\n%s", err, logs.String())
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUp(t *testing.T, addr string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("daemon never answered on %s", addr)
}

func TestCheckReportsCoreAndRuleProblemsTogether(t *testing.T) {
	p := writeConfig(t, `
sever: { listen: ":1" }
log: { level: loud }
sources:
  app: { type: generic }
sinks:
  a: { type: file, path: /tmp/x }
rules:
  - { name: r, when: 'foo(status)', to: [a] }
`)
	code, out, _ := run(t, "", "check", "-c", p)
	for _, w := range []string{
		`sever: unknown setting; did you mean "server"?`,
		`log.level: "loud" is not a level; use debug, info, warn or error`,
		`rules[0] (r).when: unknown function foo()`,
		"3 problems",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
}
