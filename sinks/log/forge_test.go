package log

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/lmittmann/tint"

	"switchboard/redact"
	"switchboard/router"
)

// An event's content cannot forge log lines of the daemon's text log:
// the log sink's record passes the same handler as every line.
func TestEventContentCannotForgeTextLogLines(t *testing.T) {
	for _, color := range []bool{false, true} {
		var buf bytes.Buffer
		old := slog.Default()
		slog.SetDefault(slog.New(redact.NewHandler(tint.NewTextHandler(&buf, &tint.Options{NoColor: !color}), true)))
		t.Cleanup(func() { slog.SetDefault(old) })
		s, err := buildErr(map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		forged := "x\n13:00:00.000 INF delivered sink=crm event_id=forged\r\x1b[2K\x1b[1A"
		e := &router.Event{ID: "id\n13:00:01.000 ERR forged", Source: "app", Event: forged, Status: forged,
			Payload: map[string]any{"from": forged}, RawPayload: []byte(`{"from":"x\n13:00:00.000 INF forged"}`)}
		if err := s.Send(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if strings.Count(out, "\n") != 1 || strings.Contains(out, "\r") || strings.Contains(out, "\x1b[2K") || strings.Contains(out, "\x1b[1A") {
			t.Errorf("colour %v: forged lines in %q", color, out)
		}
	}
}
