package daemon

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/router"
)

func TestTapHubCostsNothingUnwatchedAndDropsForASlowWatcher(t *testing.T) {
	var h tapHub
	if h.active() {
		t.Fatal("a hub without watchers is active")
	}
	h.publish(&TapItem{Source: "a"}) // nobody: nothing happens
	w, _ := h.subscribe("a")
	other, _ := h.subscribe("b")
	if !h.active() || h.count() != 2 {
		t.Fatalf("active %v, count %d", h.active(), h.count())
	}
	start := time.Now()
	for range tapBuffer + 500 {
		h.publish(&TapItem{Source: "a"})
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("publishing to a watcher that reads nothing took %s", took)
	}
	if len(w.ch) != tapBuffer || w.dropped.Load() != 500 {
		t.Errorf("buffered %d, dropped %d; want %d and 500", len(w.ch), w.dropped.Load(), tapBuffer)
	}
	if len(other.ch) != 0 || other.dropped.Load() != 0 {
		t.Errorf("a watcher of another source got %d items", len(other.ch))
	}
	h.unsubscribe(w)
	h.unsubscribe(other)
	if h.active() {
		t.Error("still active after every watcher left")
	}
	for range maxTaps {
		if _, ok := h.subscribe(""); !ok {
			t.Fatal("refused a tap below the limit")
		}
	}
	if _, ok := h.subscribe(""); ok {
		t.Errorf("took a tap past the limit of %d", maxTaps)
	}
}

// pipeWriter is an http.ResponseWriter whose client reads only when the
// test says: a browser tab in the background, a stalled terminal.
type pipeWriter struct {
	h http.Header
	w *io.PipeWriter
}

func (p *pipeWriter) Header() http.Header         { return p.h }
func (p *pipeWriter) WriteHeader(int)             {}
func (p *pipeWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeWriter) Flush()                      {}

// TestAStalledTapIsToldWhatItMissed stalls a tap's client while thousands
// of events are published: publishing never waits, and once the client
// reads again it is told how many it missed.
func TestAStalledTapIsToldWhatItMissed(t *testing.T) {
	f, err := config.Parse([]byte("sources: {s: {type: generic}}\nsinks: {l: {type: log}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Build(f)
	if err != nil {
		t.Fatal(err)
	}
	d := New(snap, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequest(http.MethodGet, "/api/tap", nil).WithContext(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.serveTap(&pipeWriter{h: http.Header{}, w: pw}, req)
		pw.Close()
	}()
	rd := bufio.NewReader(pr)
	if line, _ := rd.ReadString('\n'); !strings.HasPrefix(line, "retry:") {
		t.Fatalf("first line %q", line)
	}
	for !d.tap.active() {
		time.Sleep(time.Millisecond)
	}
	ev := &router.Event{ID: "e", Source: "s", Event: "x", ReceivedAt: time.Now(), RawPayload: []byte(`{}`)}
	start := time.Now()
	for range 3 * tapBuffer {
		d.tap.publish(eventItem(ev, outcomeAccepted, nil, nil, nil))
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("publishing while the client stalls took %s", took)
	}
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("the tap ended without saying what was dropped: %v", err)
		}
		if line == "event: dropped\n" {
			break
		}
	}
	cancel()
	go io.Copy(io.Discard, pr)
	<-done
}
