package redact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lmittmann/tint"
)

func withSecret(t *testing.T) {
	t.Helper()
	Set(New(secret))
	t.Cleanup(func() { Set(nil) })
}

func TestJSONLogRecordsCarryNoSecret(t *testing.T) {
	withSecret(t)
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil), false)).With("preset", "bearer "+secret)
	log.Info("message with "+secret,
		"str", "x "+secret,
		"err", errors.New("echo: "+secret),
		"list", []string{"a", secret},
		"map", map[string]string{"k": secret},
		slog.Group("g", "inner", secret),
		"n", 3,
	)
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("secret in %s", out)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON record: %v\n%s", err, out)
	}
	if rec["msg"] != "message with "+Mask || rec["n"] != 3.0 || rec["preset"] != "bearer "+Mask {
		t.Errorf("record = %v", rec)
	}
	if m, _ := rec["map"].(map[string]any); m["k"] != Mask {
		t.Errorf("map = %v", rec["map"])
	}
}

func TestJSONRecordsPassThroughUntouchedWithoutSecrets(t *testing.T) {
	var buf bytes.Buffer
	slog.New(NewHandler(slog.NewJSONHandler(&buf, nil), false)).Info("a\nb", "v", "c\x1bd")
	if !strings.Contains(buf.String(), `"msg":"a\nb"`) || !strings.Contains(buf.String(), `"v":"c\u001bd"`) {
		t.Errorf("got %s", buf.String())
	}
}

// Text handlers print the message as it is and, on a colour terminal,
// tint prints ESC in values raw: neither may forge a line or a colour.
func TestTextLogLinesCannotBeForged(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    func(*bytes.Buffer) slog.Handler
	}{
		{"tint, colour", func(b *bytes.Buffer) slog.Handler { return tint.NewTextHandler(b, &tint.Options{NoColor: false}) }},
		{"tint, no colour", func(b *bytes.Buffer) slog.Handler { return tint.NewTextHandler(b, &tint.Options{NoColor: true}) }},
		{"slog text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(NewHandler(tt.h(&buf), true))
			forged := "ok\n13:00:00.000 INF delivered sink=crm\r\x1b[2J\x1b]0;owned\x07"
			log.Info("rejected "+forged, "err", forged, "v", `lit \x1b[31m red`, "bad", "cut\xffhere and more", "e", errors.New(forged))
			out := buf.String()
			if n := strings.Count(out, "\n"); n != 1 {
				t.Errorf("%d lines: %q", n, out)
			}
			if strings.ContainsAny(out, "\r\x07") {
				t.Errorf("control characters in %q", out)
			}
			// tint colours with ESC itself; none may come from the record.
			if strings.Contains(out, "\x1b[2J") || strings.Contains(out, "\x1b]0") || strings.Contains(out, "\x1b[31m red") {
				t.Errorf("escape sequence from the record in %q", out)
			}
			if !strings.Contains(out, "here and more") {
				t.Errorf("value cut at an invalid byte: %q", out)
			}
		})
	}
}

func TestHandlerKeepsLevelAndGroups(t *testing.T) {
	var buf bytes.Buffer
	h := NewHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}), false)
	if h.Enabled(context.Background(), slog.LevelInfo) {
		t.Error("info enabled under a warn handler")
	}
	slog.New(h).WithGroup("sink").Warn("w", "name", "crm")
	if !strings.Contains(buf.String(), `"sink":{"name":"crm"}`) {
		t.Errorf("got %s", buf.String())
	}
}

func FuzzTextValue(f *testing.F) {
	f.Add("a\x1b[2Jb\xff\\x1b\u2028\ufffd\x7f")
	f.Fuzz(func(t *testing.T, s string) {
		for name, out := range map[string]string{"value": textValue(s), "message": textMessage(s)} {
			if !utf8.ValidString(out) || strings.ContainsRune(out, utf8.RuneError) || strings.Contains(out, `\x1b`) {
				t.Fatalf("%s %q: %q", name, s, out)
			}
			for _, r := range out {
				if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
					t.Fatalf("%s %q: control character in %q", name, s, out)
				}
				if name == "message" && (r == '\n' || r == '\r') {
					t.Fatalf("message %q: line break in %q", s, out)
				}
			}
		}
	})
}
