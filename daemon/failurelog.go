package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"switchboard/router"
)

// failureWindow is how long a sink's failures of one kind are summed up
// into one log line after the first is logged in full.
const failureWindow = 10 * time.Second

// failureIDs is how many ids a summary line names.
const failureIDs = 5

// failureLog logs delivery failures so that a sink that is down makes a
// few lines, not one per event: per sink and outcome (retry, dead), the
// first failure of a window is logged in full, the rest of the window as
// one line with their count, their first ids and the last error.
type failureLog struct {
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	windows map[failureKey]*failures
}

type failureKey struct{ sink, outcome string }

type failures struct {
	until     time.Time
	count     int
	ids       []string // dead letters: their ids; retries: the deliveries'
	eventIDs  []string
	lastError string
}

func newFailureLog(log *slog.Logger) *failureLog {
	return &failureLog{log: log, now: time.Now, windows: map[failureKey]*failures{}}
}

// record logs one failed attempt, or counts it towards its window's
// summary. The full line of a dead letter carries its id (the queue keeps
// a dead letter under its delivery's id: `dlq show <id>`).
func (l *failureLog) record(d *router.Delivery, outcome string, err error) {
	now := l.now()
	k := failureKey{d.Sink, outcome}
	l.mu.Lock()
	w := l.windows[k]
	var expired *failures
	if w != nil && now.After(w.until) {
		expired, w = w, nil
	}
	if w == nil {
		l.windows[k] = &failures{until: now.Add(failureWindow)}
	} else {
		w.count++
		if len(w.ids) < failureIDs {
			w.ids = append(w.ids, d.ID)
			w.eventIDs = append(w.eventIDs, d.Event.ID)
		}
		w.lastError = d.LastError
	}
	l.mu.Unlock()
	if expired != nil {
		l.summary(k, expired)
	}
	if w != nil {
		return
	}
	attrs := []any{"event_id", d.Event.ID, "source", d.Event.Source, "sink", d.Sink, "attempt", d.Attempts}
	switch outcome {
	case "retry":
		l.log.Warn("delivery failed; will retry", append(attrs, "delivery_id", d.ID,
			"next_attempt", d.NotBefore.Format(time.RFC3339), "err", err)...)
	case "dead":
		l.log.Error("delivery failed for good; moved to the dead-letter queue", append(attrs, "dead_letter_id", d.ID,
			"err", d.LastError)...)
	}
}

// flush logs the summaries of windows that have ended.
func (l *failureLog) flush(all bool) {
	now := l.now()
	l.mu.Lock()
	var ended []failureKey
	var sums []*failures
	for k, w := range l.windows {
		if all || now.After(w.until) {
			delete(l.windows, k)
			if w.count > 0 {
				ended = append(ended, k)
				sums = append(sums, w)
			}
		}
	}
	l.mu.Unlock()
	for i, k := range ended {
		l.summary(k, sums[i])
	}
}

func (l *failureLog) summary(k failureKey, w *failures) {
	attrs := []any{"sink", k.sink, "count", w.count, "within", failureWindow.String(), "last_err", w.lastError}
	switch k.outcome {
	case "retry":
		l.log.Warn("more deliveries failed and will be retried", append(attrs, "first_delivery_ids", w.ids, "first_event_ids", w.eventIDs)...)
	case "dead":
		l.log.Error("more deliveries failed for good; moved to the dead-letter queue", append(attrs, "first_dead_letter_ids", w.ids, "first_event_ids", w.eventIDs)...)
	}
}

// flushFailures logs ended windows' summaries every second until ctx ends,
// then every summary left.
func (d *Daemon) flushFailures(ctx context.Context) {
	defer d.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.failures.flush(true)
			return
		case <-t.C:
			d.failures.flush(false)
		}
	}
}
