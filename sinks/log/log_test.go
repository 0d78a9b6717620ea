package log

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"switchboard/router"
	"switchboard/sinks/sinktest"
)

func buildErr(raw map[string]any) (router.Sink, error) {
	return sinktest.Build("log", "debug", raw)
}

// captureLog points slog's default logger at a JSON buffer that takes
// every level, for the duration of the test.
func captureLog(t *testing.T, level slog.Level) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level})))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &buf
}

func event() *router.Event { return sinktest.Event("e1") }

func TestSendLogsOneRecordWithTheEvent(t *testing.T) {
	tests := []struct {
		name      string
		settings  map[string]any
		wantLevel string
		wantMsg   string
	}{
		{"defaults log at info as event", map[string]any{}, "INFO", "event"},
		{"level and message are settings", map[string]any{"level": "warn", "message": "call failed"}, "WARN", "call failed"},
		{"debug", map[string]any{"level": "debug"}, "DEBUG", "event"},
		{"error, in any case", map[string]any{"level": "ERROR"}, "ERROR", "event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := captureLog(t, slog.LevelDebug)
			s, err := buildErr(tt.settings)
			if err != nil {
				t.Fatal(err)
			}
			e := event()
			if err := s.Send(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("want one JSON record, got %q: %v", buf, err)
			}
			eventJSON, _ := e.MarshalJSON()
			want := map[string]any{
				"level": tt.wantLevel, "msg": tt.wantMsg, "sink": "debug", "event_id": "e1",
				"source": "bird", "event": "voice.inbound", "status": "failed", "event_json": string(eventJSON),
			}
			for k, v := range want {
				if rec[k] != v {
					t.Errorf("%s = %#v, want %#v", k, rec[k], v)
				}
			}
		})
	}
}

func TestEventWithoutStatusHasNoStatusAttribute(t *testing.T) {
	buf := captureLog(t, slog.LevelInfo)
	s, _ := buildErr(map[string]any{})
	e := event()
	e.Status = ""
	if err := s.Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if _, ok := rec["status"]; ok {
		t.Errorf("record has status %v for an event without one", rec["status"])
	}
}

func TestBelowTheDaemonsLevelNothingIsLogged(t *testing.T) {
	buf := captureLog(t, slog.LevelInfo)
	s, _ := buildErr(map[string]any{"level": "debug"})
	if err := s.Send(context.Background(), event()); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("logged %q below the handler's level", buf)
	}
}

func TestBuildProblems(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"level must be known", map[string]any{"level": "verbose"},
			`level: "verbose" is not a level; use debug, info, warn or error`},
		{"message must not be empty", map[string]any{"message": " "},
			"message: must not be empty: it is the log line's message, e.g. event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sinktest.WantProblems(t, "log", "debug", tt.settings, tt.want)
		})
	}
}
