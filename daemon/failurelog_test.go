package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"switchboard/router"
)

// logLines decodes a JSON log.
func logLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", l)
		}
		out = append(out, m)
	}
	return out
}

// A sink that is down for a while makes a few log lines, not one per
// event: the first dead letter in full with its id, then one line per
// window with the count and the first ids.
func TestFailureLogSumsUpRepeatedFailures(t *testing.T) {
	var buf bytes.Buffer
	l := newFailureLog(slog.New(slog.NewJSONHandler(&buf, nil)))
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	dead := func(i int) {
		l.record(&router.Delivery{ID: fmt.Sprint(100 + i), Sink: "crm", Attempts: 10, LastError: fmt.Sprintf("gave up: 503 (%d)", i),
			Event: &router.Event{ID: fmt.Sprintf("ev-%d", i), Source: "app"}}, "dead", errors.New("503"))
	}
	for i := range 1000 {
		dead(i)
	}
	l.record(&router.Delivery{ID: "7", Sink: "crm", Attempts: 1, Event: &router.Event{ID: "ev-r", Source: "app"}}, "retry", errors.New("timeout"))
	l.flush(false) // the window has not ended: nothing more yet
	lines := logLines(t, &buf)
	if len(lines) != 2 {
		t.Fatalf("%d lines within the window, want the first dead letter and the first retry:\n%s", len(lines), buf.String())
	}
	first := lines[0]
	if first["msg"] != "delivery failed for good; moved to the dead-letter queue" || first["dead_letter_id"] != "100" ||
		first["event_id"] != "ev-0" || first["sink"] != "crm" || first["level"] != "ERROR" {
		t.Errorf("first dead letter line = %v", first)
	}
	if lines[1]["msg"] != "delivery failed; will retry" || lines[1]["delivery_id"] != "7" {
		t.Errorf("first retry line = %v", lines[1])
	}

	now = now.Add(failureWindow + time.Millisecond)
	buf.Reset()
	l.flush(false)
	lines = logLines(t, &buf)
	if len(lines) != 1 {
		t.Fatalf("%d lines when the window ends, want one summary:\n%s", len(lines), buf.String())
	}
	sum := lines[0]
	if sum["msg"] != "more deliveries failed for good; moved to the dead-letter queue" || sum["count"] != float64(999) ||
		sum["last_err"] != "gave up: 503 (999)" || sum["sink"] != "crm" {
		t.Errorf("summary = %v", sum)
	}
	if ids := fmt.Sprint(sum["first_dead_letter_ids"]); ids != "[101 102 103 104 105]" {
		t.Errorf("first_dead_letter_ids = %s", ids)
	}
	// The next failure opens a new window, logged in full again.
	buf.Reset()
	dead(1000)
	if lines := logLines(t, &buf); len(lines) != 1 || lines[0]["dead_letter_id"] != "1100" {
		t.Errorf("after the window: %v", lines)
	}
	// Shutting down logs what is left.
	dead(1001)
	buf.Reset()
	l.flush(true)
	if lines := logLines(t, &buf); len(lines) != 1 || lines[0]["count"] != float64(1) ||
		!reflect.DeepEqual(lines[0]["first_event_ids"], []any{"ev-1001"}) {
		t.Errorf("final flush: %v", lines)
	}
}
