package config

import "time"

// History is the console's memory of recent events: what each became
// (rules matched, sinks chosen) and every delivery attempt, kept in
// memory for "where did my event go?".
type History struct {
	// MaxEvents is how many recent events are kept; 0 turns history off.
	MaxEvents int `koanf:"max_events"`
	// MaxAge is how long an event is kept; 0 keeps it until MaxEvents
	// newer ones push it out.
	MaxAge time.Duration `koanf:"max_age"`
}

// DefaultHistoryEvents is history.max_events when the file does not say;
// MaxHistoryEvents bounds it, as each event kept costs memory (about 1
// KB for a typical webhook, at most a few KB: see the README).
const (
	DefaultHistoryEvents = 10_000
	MaxHistoryEvents     = 1_000_000
)

func (h *History) check(ps *Problems) {
	if h.MaxEvents < 0 || h.MaxEvents > MaxHistoryEvents {
		ps.Add("history.max_events", "must be 0 (history off) to %d; each event kept costs about 1 KB of memory", MaxHistoryEvents)
	}
	if h.MaxAge < 0 {
		ps.Add("history.max_age", "must be 0 (kept until max_events newer events push it out) or a duration such as 1h")
	}
}
