// Package daemontest runs a real daemon in-process for end-to-end tests:
// listeners on random loopback ports, the durable queue in the config's
// queue.dir, and the helpers every such test needs (post a request, read a
// file sink, wait for a condition, a receiving HTTP peer).
package daemontest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/daemon"
	"switchboard/redact"
)

// Start runs a daemon for the config yaml until the test ends. Give the
// config `listen: "127.0.0.1:0"` addresses and a queue.dir in t.TempDir().
// Run with -v to see the daemon's debug log.
func Start(t testing.TB, yaml string) *daemon.Daemon {
	t.Helper()
	f, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return start(t, f, "", nil)
}

// StartLogged is Start keeping the daemon's log, at debug level, in text
// format through the redactor, as `switchboard run` writes it.
func StartLogged(t testing.TB, yaml string) (*daemon.Daemon, *Log) {
	t.Helper()
	f, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	l := &Log{}
	return start(t, f, "", l), l
}

// StartFileLogged is StartFile keeping the log as StartLogged does.
func StartFileLogged(t testing.TB, path string) (*daemon.Daemon, *Log) {
	t.Helper()
	f, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	l := &Log{}
	return start(t, f, path, l), l
}

// Log collects a daemon's log lines.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns every line logged so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// StartFile is Start for the config file at path, which the daemon
// watches and reloads (POST /-/reload reads it too).
func StartFile(t testing.TB, path string) *daemon.Daemon {
	t.Helper()
	f, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return start(t, f, path, nil)
}

func start(t testing.TB, f *config.File, path string, keep *Log) *daemon.Daemon {
	t.Helper()
	snap, err := daemon.Build(f)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	switch {
	case keep != nil:
		log = slog.New(redact.NewHandler(slog.NewTextHandler(keep, &slog.HandlerOptions{Level: slog.LevelDebug}), true))
	case testing.Verbose():
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	q, err := daemon.OpenQueue(f, log)
	if err != nil {
		t.Fatalf("queue: %v", err)
	}
	d := daemon.New(snap, q, log)
	d.ConfigPath = path
	if err := d.Start(); err != nil {
		q.Close()
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return d
}

// Send makes one request and decodes the JSON answer. header is pairs of
// name, value.
func Send(t testing.TB, method, url, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// Admin calls the admin API the way the CLI does: Bearer token when not
// empty, JSON bodies. It returns the status and the raw answer.
func Admin(t testing.TB, d *daemon.Daemon, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+d.AdminAddr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Post is Send with POST.
func Post(t testing.TB, url, body string, header ...string) (int, map[string]any) {
	t.Helper()
	return Send(t, http.MethodPost, url, body, header...)
}

// ReadLines reads a file sink's JSON Lines; a missing file has none.
func ReadLines(t testing.TB, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: line is not JSON: %v: %s", path, err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// Eventually waits up to 10s for cond.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Receiver is a real HTTP peer that records every body it gets and
// answers Status (200 unless changed with SetStatus).
type Receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
	status int
}

// NewReceiver starts a receiver, closed when the test ends.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{status: http.StatusOK}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		st := r.status
		r.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(r.Close)
	return r
}

// SetStatus changes the status later requests get.
func (r *Receiver) SetStatus(code int) {
	r.mu.Lock()
	r.status = code
	r.mu.Unlock()
}

// Got returns the bodies received so far.
func (r *Receiver) Got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}
