package main

import (
	"io"
	"log/slog"
	"os"

	"github.com/lmittmann/tint"

	"switchboard/config"
	"switchboard/redact"
)

// newLogger builds the daemon's logger: tint for people (colour only on a
// terminal), JSON for machines. Every line passes the redactor, and text
// lines cannot be forged by what they quote (see redact.NewHandler).
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	if c.Format == "json" {
		return slog.New(redact.NewHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}), false))
	}
	h := tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: "15:04:05.000", NoColor: !isTerminal(w)})
	return slog.New(redact.NewHandler(h, true))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
