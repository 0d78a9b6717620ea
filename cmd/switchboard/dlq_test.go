package main

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dlqRow is one line of `dlq list`: ID SINK EVENT-ID ATTEMPTS DIED LAST-ERROR.
type dlqRow struct {
	id, sink, eventID string
	attempts          int
	lastError         string
}

func parseDLQList(t *testing.T, out string) []dlqRow {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("dlq list has no header line:\n%s", out)
	}
	var rows []dlqRow
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 7 { // id sink event attempts date time error...
			t.Fatalf("dlq list line %q has too few columns", l)
		}
		n, err := strconv.Atoi(f[3])
		if err != nil {
			t.Fatalf("dlq list line %q: attempts %q is not a number", l, f[3])
		}
		rows = append(rows, dlqRow{id: f[0], sink: f[1], eventID: f[2], attempts: n, lastError: strings.Join(f[6:], " ")})
	}
	return rows
}

// TestRestartResumesPendingAndDeadLetters walks the dead-letter life cycle
// through the CLI, on a stopped daemon's queue directory and through a
// running daemon's admin API, across restarts.
func TestRestartResumesPendingAndDeadLetters(t *testing.T) {
	rc := newReceiver(t, http.StatusBadRequest)            // permanent failure
	later := newReceiver(t, http.StatusServiceUnavailable) // down for now
	s := newSite(t, "", genericSource+"sinks:\n"+httpSink("crm", rc.url(), "")+httpSink("later", later.url(), "")+`rules:
  - name: everything
    to: [crm, later]
`)
	p := s.start()
	ids := []string{"dl-1", "dl-2", "dl-3"}
	for _, id := range ids {
		s.mustAccept(id, "accepted")
	}
	waitFor(t, 10*time.Second, "3 dead letters", func() bool { return len(s.deadLetters()) == 3 })
	waitFor(t, 10*time.Second, "attempts at the down sink", func() bool { return later.requests() >= 3 })
	// later's deliveries are still being retried: SIGTERM gives them
	// shutdown_timeout (1s), keeps them queued and exits 0.
	if code := p.term(); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	if n := len(later.delivered()); n != 0 {
		t.Fatalf("%d events delivered to a sink answering 503", n)
	}

	// Stopped: dlq reads the queue directory itself.
	code, stopped, errb := s.cli("dlq", "list")
	if code != 0 {
		t.Fatalf("dlq list on a stopped daemon: exit %d: %s", code, errb)
	}
	rows := parseDLQList(t, stopped)
	if len(rows) != 3 {
		t.Fatalf("dlq list: %d dead letters, want 3:\n%s", len(rows), stopped)
	}
	// Newest first: the order in which the three died, which concurrent
	// deliveries decide.
	byEvent := slices.Clone(rows)
	slices.SortFunc(byEvent, func(a, b dlqRow) int { return strings.Compare(a.eventID, b.eventID) })
	for i, r := range byEvent {
		if r.eventID != ids[i] || r.sink != "crm" || r.attempts != 1 || !strings.Contains(r.lastError, "400") || r.id == "" {
			t.Errorf("dlq list row of %s = %+v; want sink crm, 1 attempt, an error with 400", ids[i], r)
		}
	}
	dl2 := byEvent[1]

	code, out, errb := s.cli("dlq", "show", dl2.id)
	if code != 0 {
		t.Fatalf("dlq show: exit %d: %s", code, errb)
	}
	var shown struct {
		ID        string `json:"id"`
		Sink      string `json:"sink"`
		EventID   string `json:"event_id"`
		Attempts  int    `json:"attempts"`
		LastError string `json:"last_error"`
		Event     struct {
			ID      string         `json:"id"`
			Source  string         `json:"source"`
			Event   string         `json:"event"`
			Status  string         `json:"status"`
			Payload map[string]any `json:"payload"`
		} `json:"event"`
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatalf("dlq show does not print JSON: %v\n%s", err, out)
	}
	if shown.ID != dl2.id || shown.Sink != "crm" || shown.EventID != "dl-2" || shown.Attempts != 1 || !strings.Contains(shown.LastError, "400") {
		t.Errorf("dlq show = %+v", shown)
	}
	if e := shown.Event; e.ID != "dl-2" || e.Source != "app" || e.Event != "e" || e.Status != "failed" || e.Payload["id"] != "dl-2" {
		t.Errorf("dlq show event = %+v", e)
	}
	if code, _, errb := s.cli("dlq", "show", "424242"); code != 1 {
		t.Errorf("dlq show of an unknown id: exit %d (%s), want 1", code, errb)
	}

	// Running: the pending deliveries resume, and dlq gives the same
	// answers through the admin API (the queue file is locked by the
	// daemon, so dlq cannot be reading it directly).
	later.setStatus(http.StatusOK)
	p = s.start()
	if missing := later.waitDelivered(ids, 10*time.Second); len(missing) > 0 {
		t.Fatalf("deliveries pending at SIGTERM not resumed after restart: %v", missing)
	}
	code, running, errb := s.cli("dlq", "list")
	if code != 0 {
		t.Fatalf("dlq list on a running daemon: exit %d: %s", code, errb)
	}
	if running != stopped {
		t.Errorf("dlq list differs between stopped and running:\n%s\nvs\n%s", stopped, running)
	}
	if code, out, _ := s.cli("dlq", "show", dl2.id); code != 0 || !strings.Contains(out, `"dl-2"`) {
		t.Errorf("dlq show on a running daemon: exit %d\n%s", code, out)
	}

	rc.setStatus(http.StatusOK)
	code, out, errb = s.cli("dlq", "replay", "--all")
	if code != 0 || strings.TrimSpace(out) != "replayed 3 dead letters" {
		t.Fatalf("dlq replay --all: exit %d, %q, %s", code, out, errb)
	}
	if missing := rc.waitDelivered(ids, 10*time.Second); len(missing) > 0 {
		t.Fatalf("not delivered after replay: %v", missing)
	}
	if code, out, _ := s.cli("dlq", "list"); code != 0 || strings.TrimSpace(out) != "no dead letters" {
		t.Errorf("dlq list after replay: exit %d, %q", code, out)
	}
	for _, id := range ids {
		if h := rc.hitsFor(id); len(h) != 2 || h[0].status != 400 || h[1].status != 200 {
			t.Errorf("event %s: receiver saw %+v, want one 400 then one 200", id, h)
		}
	}

	// Purge a new dead letter by id.
	rc.setStatus(http.StatusUnprocessableEntity)
	s.mustAccept("dl-4", "accepted")
	var dead []map[string]any
	waitFor(t, 10*time.Second, "dl-4's dead letter", func() bool { dead = s.deadLetters(); return len(dead) == 1 })
	id, _ := dead[0]["id"].(string)
	if dead[0]["event_id"] != "dl-4" || id == "" {
		t.Fatalf("dead letter = %v", dead[0])
	}
	if code, out, errb := s.cli("dlq", "purge", id); code != 0 || strings.TrimSpace(out) != "purged 1 dead letter" {
		t.Fatalf("dlq purge %s: exit %d, %q, %s", id, code, out, errb)
	}
	if code, out, _ := s.cli("dlq", "list"); code != 0 || strings.TrimSpace(out) != "no dead letters" {
		t.Errorf("dlq list after purge: exit %d, %q", code, out)
	}
	if code, _, errb := s.cli("dlq", "purge", id); code != 1 {
		t.Errorf("dlq purge of a purged id: exit %d (%s), want 1", code, errb)
	}
	if code := p.term(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	// Stopped again: nothing came back from the dead.
	if code, out, errb := s.cli("dlq", "list"); code != 0 || strings.TrimSpace(out) != "no dead letters" {
		t.Errorf("dlq list on the stopped daemon at the end: exit %d, %q %s", code, out, errb)
	}
}

func TestDLQUsageErrorsExit2(t *testing.T) {
	s := newSite(t, "", genericSource+"sinks:\n"+httpSink("crm", "http://127.0.0.1:1/", "")+"rules:\n  - name: all\n    to: [crm]\n")
	if code, _, errb := s.exec("dlq"); code != 2 {
		t.Errorf("dlq: exit %d, want 2 (%s)", code, strings.TrimSpace(errb))
	}
	for _, args := range [][]string{
		{"dlq", "replay"},
		{"dlq", "purge"},
		{"dlq", "show"},
		{"dlq", "show", "1", "2"},
		{"dlq", "list", "1"},
		{"dlq", "replay", "--all", "1"},
		{"dlq", "frobnicate"},
		{"dlq", "list", "--bogus"},
	} {
		code, _, errb := s.cli(args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, strings.TrimSpace(errb))
		}
	}
	code, out, errb := s.cli("dlq", "--help")
	if code != 0 || !strings.Contains(out+errb, "Usage") {
		t.Errorf("dlq --help: exit %d, want 0 with usage", code)
	}
}

// TestDLQFlagsAnywhere: operators write -c where they like, as with every
// other command: before the subcommand, or after the ids.
func TestDLQFlagsAnywhere(t *testing.T) {
	s := newSite(t, "", genericSource+"sinks:\n"+httpSink("crm", "http://127.0.0.1:1/", "")+"rules:\n  - name: all\n    to: [crm]\n")
	// Where a daemon has run: dlq does not open a queue directory that
	// does not exist.
	if err := os.Mkdir(s.data, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"dlq", "-c", s.cfg, "list"},
		{"dlq", "--config", s.cfg, "list"},
		{"dlq", "list", "-c", s.cfg},
	} {
		if code, out, errb := s.exec(args...); code != 0 || strings.TrimSpace(out) != "no dead letters" {
			t.Errorf("%v: exit %d, %q %s; want 0, no dead letters", args, code, out, errb)
		}
	}
	// An unknown id fails (1), it is not a usage error (2).
	for _, args := range [][]string{
		{"dlq", "show", "42", "-c", s.cfg},
		{"dlq", "-c", s.cfg, "show", "42"},
		{"dlq", "replay", "42", "-c", s.cfg},
		{"dlq", "purge", "42", "43", "-c", s.cfg},
	} {
		if code, _, errb := s.exec(args...); code != 1 || !strings.Contains(errb, "42") {
			t.Errorf("%v: exit %d (%s), want 1 naming the unknown dead letter", args, code, strings.TrimSpace(errb))
		}
	}
	if code, _, errb := s.exec("dlq", "replay", "1", "--all", "-c", s.cfg); code != 2 {
		t.Errorf("dlq replay 1 --all: exit %d (%s), want 2", code, strings.TrimSpace(errb))
	}
}
