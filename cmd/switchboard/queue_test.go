package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A damaged queue through the binary: `run` refuses to start with one
// message that says what to do (no stack trace), `queue check` says the
// same, `queue salvage` copies what can be read into a new queue that
// runs and delivers, and `queue compact` gives space back.
func TestDamagedQueueThroughTheBinary(t *testing.T) {
	down := newReceiver(t, http.StatusServiceUnavailable)
	s := newSite(t, "", genericSource+"sinks:\n"+httpSink("crm", down.url(), "")+"rules:\n  - name: all\n    to: [crm]\n")
	p := s.start()
	var ids []string
	for i := range 20 {
		id := fmt.Sprint("q", i)
		s.mustAccept(id, "accepted")
		ids = append(ids, id)
	}
	if code := p.term(); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	code, out, errb := s.cli("queue", "check")
	if code != 0 || !strings.Contains(out, "OK") || !strings.Contains(out, "pending: crm 20") {
		t.Fatalf("queue check on a healthy queue: exit %d\n%s%s", code, out, errb)
	}

	seg := filepath.Join(s.data, "seg-0000000000000001.log")
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("garbage garbage garbage"), 400)
	f.Close()

	code, out, errb = s.exec("run", "-c", s.cfg)
	logs := out + errb
	if code != 1 {
		t.Fatalf("run on a damaged queue: exit %d, want 1\n%s", code, logs)
	}
	for _, want := range []string{seg + " is damaged", "switchboard queue salvage --to NEWDIR", "aside"} {
		if !strings.Contains(logs, want) {
			t.Errorf("run's message lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "goroutine ") || strings.Contains(logs, "panic") {
		t.Errorf("run printed a stack trace:\n%s", logs)
	}
	if n := strings.Count(logs, "is damaged"); n != 1 {
		t.Errorf("the damage is reported %d times, want once:\n%s", n, logs)
	}
	if code, out, errb := s.cli("queue", "check"); code != 1 || !strings.Contains(errb, seg+" is damaged") {
		t.Errorf("queue check on a damaged queue: exit %d\n%s%s", code, out, errb)
	}

	salvaged := filepath.Join(s.dir, "salvaged")
	code, out, errb = s.cli("queue", "salvage", "--to", salvaged)
	if code != 0 || !strings.Contains(out, "could not read 1 place") || !strings.Contains(out, "salvaged "+s.data+" into "+salvaged) {
		t.Fatalf("queue salvage: exit %d\n%s%s", code, out, errb)
	}
	// Point queue.dir at the salvaged queue: it runs and delivers.
	cfg, _ := os.ReadFile(s.cfg)
	os.WriteFile(s.cfg, []byte(strings.Replace(string(cfg), s.data, salvaged, 1)), 0o644)
	down.setStatus(http.StatusOK)
	p = s.start()
	waitFor(t, 10*time.Second, "the salvaged events", func() bool { return len(down.delivered()) >= 18 })
	got := down.delivered()
	for id := range got {
		if !strings.HasPrefix(id, "q") {
			t.Errorf("delivered %q, which was never accepted", id)
		}
	}
	t.Logf("%d of %d events salvaged and delivered", len(got), len(ids))
	if code, _, errb := s.cli("queue", "check"); code != 1 || !strings.Contains(errb, "in use by a running switchboard") {
		t.Errorf("queue check beside a running daemon: exit %d %s", code, errb)
	}
	p.term()
	if code, out, errb := s.cli("queue", "compact"); code != 0 || !strings.Contains(out, "bytes before") {
		t.Errorf("queue compact: exit %d\n%s%s", code, out, errb)
	}
	for _, args := range [][]string{{"queue"}, {"queue", "frob"}, {"queue", "salvage"}, {"queue", "check", "--to", "x"}, {"queue", "check", "extra"}} {
		if code, _, errb := s.cli(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb)
		}
	}
}
