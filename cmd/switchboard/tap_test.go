package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// tapSite is a daemon with one generic source (app) routing failed
// events to an http sink that answers 503 once, then 200.
func tapSite(t *testing.T) *site {
	t.Helper()
	first := true
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first {
			first = false
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(rcv.Close)
	s := newSite(t, "", `sources:
  app: { type: generic }
sinks:
  crm: { type: http, url: "`+rcv.URL+`", retry: { initial_interval: 50ms, max_interval: 100ms } }
rules:
  - { name: failed, when: 'status == "failed"', to: [crm] }
`)
	s.start()
	return s
}

// tapProc runs `switchboard tap` and hands its output lines over.
func tapProc(t *testing.T, s *site, args ...string) (<-chan string, *exec.Cmd) {
	t.Helper()
	before := openTaps(s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, binary(t), append([]string{"tap", "-c", s.cfg}, args...)...)
	cmd.Env = childEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Posted events count from when the tap is open.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if openTaps(s) > before {
			return lines, cmd
		}
		if time.Now().After(deadline) {
			t.Fatal("the tap did not connect within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openTaps(s *site) int {
	var st struct{ Taps int }
	if resp, err := http.Get("http://" + s.admin + "/api/status"); err == nil {
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
	}
	return st.Taps
}

func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("the tap ended")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no tap line within 10s")
	}
	return ""
}

func TestTapStreamsFromTheRunningDaemon(t *testing.T) {
	s := tapSite(t)
	lines, _ := tapProc(t, s, "--json", "--when", `status == "failed"`)
	s.mustAccept("c1", "accepted") // failed: shown
	var it map[string]any
	if err := json.Unmarshal([]byte(nextLine(t, lines)), &it); err != nil {
		t.Fatal(err)
	}
	if it["id"] != "c1" || it["outcome"] != "accepted" || strings.Join(toStrings(it["sinks"]), ",") != "crm" {
		t.Errorf("tap --json printed %v", it)
	}

	plain, _ := tapProc(t, s) // not a terminal: no colour
	if code, _, _ := s.post(`{"event":"e","id":"c2","status":"completed"}`); code != 200 {
		t.Fatalf("post: %d", code)
	}
	line := nextLine(t, plain)
	for _, want := range []string{"INF accepted source=app event=e status=completed event_id=c2 rules=- sinks=none"} {
		if !strings.Contains(line, want) {
			t.Errorf("tap printed %q, want it to contain %q", line, want)
		}
	}
	if strings.Contains(line, "\x1b[") {
		t.Errorf("colour codes on a pipe: %q", line)
	}
	if _, _, err := s.post(`not json`); err == nil {
		if l := nextLine(t, plain); !strings.Contains(l, "WRN rejected source=app status=400 reason=bad_json") {
			t.Errorf("a rejection printed as %q", l)
		}
	}
}

func TestTapRefusesAnExpressionItCannotCompile(t *testing.T) {
	s := tapSite(t)
	code, _, stderr := s.exec("tap", "-c", s.cfg, "--when", "status ==")
	if code != exitUsage || !strings.Contains(stderr, "when:") {
		t.Errorf("exit %d, stderr %q; want 2 and the expression's error", code, stderr)
	}
}

func TestTapAndHistoryWithoutADaemon(t *testing.T) {
	s := newSite(t, "", "sources: {app: {type: generic}}\nsinks: {l: {type: log}}\n")
	for _, args := range [][]string{{"tap"}, {"history", "x"}} {
		code, _, stderr := s.cli(args...)
		if code != exitFail || !strings.Contains(stderr, "does not answer") {
			t.Errorf("%v: exit %d, stderr %q; want 1 and why", args, code, stderr)
		}
	}
}

func TestHistoryPrintsEveryAttempt(t *testing.T) {
	s := tapSite(t)
	s.mustAccept("c1", "accepted")
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, stdout, stderr := s.cli("history", "c1")
		out = stdout
		if code == 0 && strings.Contains(out, "crm: delivered") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history: exit %d\n%s%s", code, stdout, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{"event c1 (app, e, failed)", "rules matched: failed", "sinks: crm", "503", "retry", "200", "success"} {
		if !strings.Contains(out, want) {
			t.Errorf("history output lacks %q:\n%s", want, out)
		}
	}
	if code, _, stderr := s.cli("history", "nope"); code != exitFail || !strings.Contains(stderr, `no event "nope"`) {
		t.Errorf("an unknown id: exit %d, %q", code, stderr)
	}
	if code, _, _ := s.cli("history"); code != exitUsage {
		t.Errorf("no id: exit %d, want 2", code)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, x := range l {
		out[i], _ = x.(string)
	}
	return out
}
