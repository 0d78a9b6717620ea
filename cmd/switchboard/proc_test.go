package main

// Helpers for tests that run the real switchboard binary against real
// peers: httptest receivers as sinks, a queue directory on disk, signals.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds the switchboard binary once per test run and returns its
// path. It lives outside any one test's TempDir so that every test can use
// it; TestMain removes it.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the switchboard binary")
	}
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "switchboard-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "switchboard")
		// Under go test -race the daemon runs with the race detector too:
		// these tests are its only run under real concurrent load.
		// -buildvcs=auto: the commit in `version`, as a user's build has
		// it, whatever GOFLAGS say.
		args := []string{"build", "-buildvcs=auto", "-o", binPath}
		if raceBuild {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// childEnv is the environment of the binary's runs: a race-enabled binary
// would otherwise sleep a second at every exit.
func childEnv() []string {
	return append(os.Environ(), "GORACE=atexit_sleep_ms=0")
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// site is one test's switchboard installation: a config file, its queue
// directory and the two listen addresses, which stay the same across
// restarts.
type site struct {
	t                   *testing.T
	dir, cfg            string
	listen, admin, data string
}

// newSite writes a config whose body (sources, sinks, rules, queue
// limits...) is given; server, admin, log and queue.dir are filled in.
// Extra queue settings go in queueExtra, e.g. "max_bytes: 2KiB".
func newSite(t *testing.T, queueExtra, body string) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{t: t, dir: dir, cfg: filepath.Join(dir, "switchboard.yaml"),
		listen: freePort(t), admin: freePort(t), data: filepath.Join(dir, "data")}
	if queueExtra != "" {
		queueExtra = ", " + queueExtra
	}
	yaml := fmt.Sprintf(`server: { listen: %q, shutdown_timeout: 1s }
admin: { listen: %q }
log: { level: info, format: json }
queue: { dir: %q%s }
%s`, s.listen, s.admin, s.data, queueExtra, body)
	if err := os.WriteFile(s.cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// proc is one run of `switchboard run`.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

// start runs the daemon on the site's config and waits until it is ready.
func (s *site) start() *proc {
	t := s.t
	t.Helper()
	p := &proc{t: t, logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), "run", "-c", s.cfg)
	p.cmd.Env = childEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if strings.Contains(p.logs.String(), "WARNING: DATA RACE") {
			t.Errorf("the daemon (pid %d) reported a data race", p.cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("daemon logs (pid %d):\n%s", p.cmd.Process.Pid, tail(p.logs.String(), 60))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + s.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("daemon exited at start (%v):\n%s", p.cmd.ProcessState, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready on %s after 10s:\n%s", s.admin, p.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill9 kills the daemon with SIGKILL and waits until it is gone.
func (p *proc) kill9() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// term stops the daemon with SIGTERM and returns its exit code.
func (p *proc) term() int {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("daemon still running 15s after SIGTERM:\n%s", tail(p.logs.String(), 40))
	}
	return p.cmd.ProcessState.ExitCode()
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = append([]string{fmt.Sprintf("... %d lines before", len(l)-lines)}, l[len(l)-lines:]...)
	}
	return strings.Join(l, "\n")
}

// cli runs a switchboard command with the site's config and returns its
// exit code and output. "-c FILE" goes right after the command and its
// subcommand (dlq list -c FILE, dlq show -c FILE ID): see
// TestDLQFlagsAnywhere for the other places.
func (s *site) cli(args ...string) (code int, stdout, stderr string) {
	s.t.Helper()
	at := min(len(args), 2)
	full := append(append(append([]string{}, args[:at]...), "-c", s.cfg), args[at:]...)
	return s.exec(full...)
}

// exec runs the binary with exactly these arguments.
func (s *site) exec(args ...string) (code int, stdout, stderr string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(s.t), args...)
	cmd.Env = childEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		s.t.Fatalf("%v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

var postClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// post sends one generic event and returns the status code and the JSON
// answer.
func (s *site) post(body string) (int, map[string]any, error) {
	resp, err := postClient.Post("http://"+s.listen+"/hooks/app", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("answer %d is not JSON: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, m, nil
}

func genericEvent(id string) string {
	return `{"event":"e","id":"` + id + `","status":"failed"}`
}

// mustAccept posts an event and fails unless it is answered 200 with the
// given status ("accepted", "duplicate").
func (s *site) mustAccept(id, status string) {
	s.t.Helper()
	code, ans, err := s.post(genericEvent(id))
	if err != nil || code != http.StatusOK || ans["status"] != status || ans["id"] != id {
		s.t.Fatalf("post %s: %d %v %v; want 200 with status %q", id, code, ans, err, status)
	}
}

// deadLetters reads the running daemon's dead letters from its admin API,
// newest first.
func (s *site) deadLetters() []map[string]any {
	s.t.Helper()
	resp, err := http.Get("http://" + s.admin + "/api/dlq?limit=1000")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Items      []map[string]any `json:"items"`
		NextCursor *string          `json:"next_cursor"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || page.Items == nil || page.NextCursor == nil {
		s.t.Fatalf("GET /api/dlq: %v (items %v, next_cursor %v)", err, page.Items, page.NextCursor)
	}
	return page.Items
}

// metric scrapes one sample from the admin listener's /metrics; ok is
// false when the series is absent.
func (s *site) metric(series string) (float64, bool) {
	s.t.Helper()
	resp, err := http.Get("http://" + s.admin + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// hit is one request a receiver got.
type hit struct {
	id     string // the forwarded event's id
	at     time.Time
	status int // what the receiver answered; 0 when the client gave up first
}

// receiver is an HTTP sink's far end. By default it answers status; answer,
// when set, decides per request (n counts the requests for that event id,
// from 1) and may block.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	status int
	answer func(w http.ResponseWriter, r *http.Request, n int) int
	hits   []hit
	byID   map[string]int // requests per event id
	ok     map[string]int // requests answered 2xx per event id
}

func newReceiver(t *testing.T, status int) *receiver {
	rc := &receiver{t: t, status: status, byID: map[string]int{}, ok: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	b, _ := io.ReadAll(r.Body)
	var ev struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &ev); err != nil || ev.ID == "" {
		rc.t.Errorf("receiver got a body that is not a normalized event: %q", b)
	}
	rc.mu.Lock()
	rc.byID[ev.ID]++
	n := rc.byID[ev.ID]
	status, answer := rc.status, rc.answer
	rc.mu.Unlock()
	if answer != nil {
		status = answer(w, r, n)
	} else {
		w.WriteHeader(status)
	}
	if r.Context().Err() != nil {
		status = 0 // the sender timed out and went away
	}
	rc.mu.Lock()
	rc.hits = append(rc.hits, hit{ev.ID, at, status})
	if status >= 200 && status < 300 {
		rc.ok[ev.ID]++
	}
	rc.mu.Unlock()
}

func (rc *receiver) url() string { return rc.srv.URL + "/in" }

func (rc *receiver) setStatus(code int) {
	rc.mu.Lock()
	rc.status = code
	rc.mu.Unlock()
}

// delivered returns how many times each event id was answered 2xx.
func (rc *receiver) delivered() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string]int, len(rc.ok))
	for k, v := range rc.ok {
		out[k] = v
	}
	return out
}

func (rc *receiver) hitsFor(id string) []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []hit
	for _, h := range rc.hits {
		if h.id == id {
			out = append(out, h)
		}
	}
	return out
}

func (rc *receiver) requests() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.hits)
}

// waitDelivered waits until every id in want was answered 2xx at least
// once and returns the ids still missing at the deadline.
func (rc *receiver) waitDelivered(want []string, within time.Duration) []string {
	deadline := time.Now().Add(within)
	for {
		got := rc.delivered()
		var missing []string
		for _, id := range want {
			if got[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond until it holds or the bound passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpSink is the YAML of an http sink with a fast retry schedule.
func httpSink(name, url, extra string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return fmt.Sprintf("  %s: { type: http, url: %q, retry: { initial_interval: 50ms, max_interval: 200ms, max_attempts: 1000 }%s }\n",
		name, url, extra)
}

const genericSource = "sources:\n  app: { type: generic, status_field: status, id_field: id }\n"
