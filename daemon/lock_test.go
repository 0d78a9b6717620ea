package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/router"
)

func startFromFile(t *testing.T, yaml string) (*Daemon, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "switchboard.yaml")
	yaml = strings.ReplaceAll(yaml, "DIR", dir)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Build(f)
	if err != nil {
		t.Fatal(err)
	}
	q, err := OpenQueue(f, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d := New(snap, q, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	d.ConfigPath = path // after Start: reloads only when the test asks
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return d, path
}

const lockConfig = `
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: DIR/q }
sources:
  app: { type: generic }
sinks:
  archive: { type: file, path: DIR/events.jsonl }
rules:
  - { name: all, to: [archive] }
`

// Issue 10.3: an accept used to route under a global lock that a pending
// reload took exclusively, so one slow request held every other request
// behind the reload. Now a reload waits for the slow accept alone, and
// requests go on under the new config meanwhile.
func TestReloadWaitsForSlowAcceptWithoutHoldingUpRequests(t *testing.T) {
	d, path := startFromFile(t, lockConfig)
	slow := d.enter() // an accept still routing under the running config
	os.WriteFile(path, []byte(strings.ReplaceAll(lockConfig, "DIR", filepath.Dir(path))+"# edited\n"), 0o644)
	reloaded := make(chan error, 1)
	go func() {
		_, err := d.Reload("test")
		reloaded <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for d.snap.Load() == slow {
		if time.Now().After(deadline) {
			t.Fatal("the reload never published the new config")
		}
		time.Sleep(time.Millisecond)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Post("http://"+d.WebhookAddr()+"/hooks/app", "application/json", strings.NewReader(`{"event":"a","id":"during"}`))
	if err != nil {
		t.Fatalf("a request during a pending reload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a request during a pending reload: %d", resp.StatusCode)
	}
	select {
	case err := <-reloaded:
		t.Fatalf("the reload finished (%v) while an accept under the old config was still routing", err)
	default:
	}
	slow.accepting.RUnlock()
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reload did not finish once the slow accept had")
	}
}

// The webhook listener serves at most server.max_connections connections
// at once; the next waits until one closes.
func TestMaxConnections(t *testing.T) {
	d, _ := startFromFile(t, strings.Replace(lockConfig, `listen: "127.0.0.1:0" }`, `listen: "127.0.0.1:0", max_connections: 2 }`, 1))
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", d.WebhookAddr())
		if err != nil {
			t.Fatal(err)
		}
		// A request on each, so that the server has surely accepted both.
		c.Write([]byte("POST /hooks/app HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"event\":\"a\"}\n"))
		if _, err := c.Read(make([]byte, 512)); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	third := &http.Client{Timeout: 300 * time.Millisecond}
	if resp, err := third.Get("http://" + d.WebhookAddr() + "/hooks/app"); err == nil {
		resp.Body.Close()
		t.Fatalf("a third connection was served (%d) with max_connections 2", resp.StatusCode)
	}
	held[0].Close()
	patient := &http.Client{Timeout: 10 * time.Second}
	resp, err := patient.Get("http://" + d.WebhookAddr() + "/hooks/app")
	if err != nil {
		t.Fatalf("once a connection closed: %v", err)
	}
	resp.Body.Close()
	held[1].Close()
}

// failingListener fails every Accept with err, as a listener out of file
// descriptors does.
type failingListener struct {
	net.Listener
	err error
}

func (l failingListener) Accept() (net.Conn, error) { return nil, l.err }

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func TestAcceptErrorsAreLoggedAtWarnRateLimited(t *testing.T) {
	var out syncBuffer
	l := &acceptLogger{Listener: failingListener{err: &net.OpError{Op: "accept", Err: syscall.EMFILE}},
		log: slog.New(slog.NewTextHandler(&out, nil)), every: time.Hour}
	for range 1000 {
		l.Accept()
	}
	l.last = time.Time{} // the period is over
	l.Accept()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "too many open files") ||
		!strings.Contains(lines[1], "similar_errors_not_logged=999") {
		t.Errorf("log:\n%s", out.String())
	}
	closed := &acceptLogger{Listener: failingListener{err: net.ErrClosed}, log: slog.New(slog.NewTextHandler(&out, nil))}
	out.Reset()
	if _, err := closed.Accept(); !errors.Is(err, net.ErrClosed) || out.Len() != 0 {
		t.Errorf("closing the listener is not a failure to report: %v %q", err, out.String())
	}
}

// An event time that cannot be stored is replaced, once, with one warn
// line naming the event, its source and the problem.
func TestCheckReplacesUnstorableTimes(t *testing.T) {
	d, _ := startFromFile(t, lockConfig)
	snap := d.Snapshot()
	received := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	evs := []*router.Event{
		{ID: "far", Event: "a", ReceivedAt: received, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: "noted", Event: "a", ReceivedAt: received, Time: received, TimeNote: "payload.updatedAt: beyond 9999"},
		{ID: "fine", Event: "a", ReceivedAt: received, Time: received.Add(-time.Hour)},
	}
	var out syncBuffer
	if err := snap.Check(snap.Sources["app"], evs, slog.New(slog.NewTextHandler(&out, nil))); err != nil {
		t.Fatal(err)
	}
	if !evs[0].Time.Equal(received) || !evs[2].Time.Equal(received.Add(-time.Hour)) {
		t.Errorf("times %v %v", evs[0].Time, evs[2].Time)
	}
	log := out.String()
	if strings.Count(log, "level=WARN") != 2 || !strings.Contains(log, "event_id=far source=app") ||
		!strings.Contains(log, `problem="event time 10000-01-01T00:00:00Z is outside years 0000-9999"`) ||
		!strings.Contains(log, `event_id=noted source=app event=a problem="payload.updatedAt: beyond 9999"`) {
		t.Errorf("log:\n%s", log)
	}
}

// A body of unknown length (chunked) is read within max_body_bytes too.
func TestBodyOfUnknownLength(t *testing.T) {
	d, _ := startFromFile(t, strings.Replace(lockConfig, `listen: "127.0.0.1:0" }`, `listen: "127.0.0.1:0", max_body_bytes: 3000 }`, 1))
	for _, tc := range []struct {
		size int
		want int
	}{{2900, 200}, {3000, 200}, {3001, 413}, {100000, 413}} {
		body := `{"event":"a","pad":"` + strings.Repeat("x", tc.size-22) + `"}`
		req, _ := http.NewRequest(http.MethodPost, "http://"+d.WebhookAddr()+"/hooks/app", io.MultiReader(strings.NewReader(body)))
		req.ContentLength = -1 // sent chunked
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(body) != tc.size || resp.StatusCode != tc.want {
			t.Errorf("%d bytes: %d, want %d", len(body), resp.StatusCode, tc.want)
		}
	}
}
