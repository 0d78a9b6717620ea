// Package log owns the "log" sink: it writes each event as one record of
// the daemon's own log (slog.Default at send time, so it follows the
// daemon's log format and level), with the event's id, source, name and
// status as attributes and the normalized event JSON as event_json.
package log

import (
	"context"
	"log/slog"
	"strings"

	"switchboard/config"
	"switchboard/router"
	"switchboard/sinks"
)

// Options are the settings of a log sink.
type Options struct {
	Level   string `koanf:"level"`
	Message string `koanf:"message"`
}

func init() {
	sinks.Register("log", func() sinks.Builder { return &Options{Level: "info", Message: "event"} })
}

var levels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
}

// Build checks the settings.
func (o *Options) Build(info sinks.Info) (router.Sink, error) {
	var ps config.Problems
	level, ok := levels[strings.ToLower(o.Level)]
	if !ok {
		ps.Add("level", "%q is not a level; use debug, info, warn or error", o.Level)
	}
	if strings.TrimSpace(o.Message) == "" {
		ps.Add("message", "must not be empty: it is the log line's message, e.g. event")
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return &Sink{name: info.Name, level: level, msg: o.Message}, nil
}

// Sink logs events. It is safe for concurrent use.
type Sink struct {
	name  string
	level slog.Level
	msg   string
}

// Send logs e. It cannot fail but for an event that cannot be encoded.
func (s *Sink) Send(ctx context.Context, e *router.Event) error {
	l := slog.Default()
	if !l.Enabled(ctx, s.level) {
		return nil
	}
	b, err := e.MarshalJSON()
	if err != nil {
		return router.Permanent(err)
	}
	attrs := []slog.Attr{
		slog.String("sink", s.name),
		slog.String("event_id", e.ID),
		slog.String("source", e.Source),
		slog.String("event", e.Event),
	}
	if e.Status != "" {
		attrs = append(attrs, slog.String("status", e.Status))
	}
	// A string, not raw JSON: every handler (text, tint, JSON) prints it
	// readably, and a JSON handler quotes it instead of nesting it.
	attrs = append(attrs, slog.String("event_json", string(b)))
	l.LogAttrs(ctx, s.level, s.msg, attrs...)
	return nil
}

var (
	_ sinks.Builder = (*Options)(nil)
	_ router.Sink   = (*Sink)(nil)
)
