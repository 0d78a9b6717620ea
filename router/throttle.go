package router

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"

	"switchboard/config"
)

// Throttle is compiled storm control for one rule or sink: per key, at most
// limit events in each window of per; the rest are suppressed and, when the
// window ends, summarised by one event (see Summaries). State lives in
// memory and starts afresh with each config.
type Throttle struct {
	owner  string // "rule x" or "sink y", for summaries and logs
	key    *vm.Program
	keySrc string
	limit  int
	per    time.Duration

	mu      sync.Mutex
	windows map[string]*throttleWindow
}

type throttleWindow struct {
	end        time.Time
	passed     int
	suppressed int
	first      string // first suppressed event id
	last       *Event // last suppressed event
}

// ThrottledEvent is the event name of a throttle's summary.
const ThrottledEvent = "switchboard:throttled"

func compileThrottle(c *config.Throttle, owner, at string, vars map[string]bool) (*Throttle, config.Problems) {
	var ps config.Problems
	if c.Limit < 1 {
		ps.Add(at+".limit", "must be at least 1: how many events per window go through")
	}
	if c.Per <= 0 {
		ps.Add(at+".per", "must be a positive duration, e.g. 1m")
	}
	t := &Throttle{owner: owner, keySrc: c.Key, limit: c.Limit, per: c.Per, windows: map[string]*throttleWindow{}}
	if strings.TrimSpace(c.Key) == "" {
		ps.Add(at+".key", "is required: an expression naming what counts as the same, e.g. payload.channelId")
		return t, ps
	}
	prog, err := compileExpr(c.Key, vars, false)
	if err != nil {
		ps.Add(at+".key", "%v", err)
	}
	t.key = prog
	return t, ps
}

// allow counts e against its key's window and reports whether it goes
// through. A key that fails to evaluate lets the event through: storm
// control must never lose an alert.
func (t *Throttle) allow(e *Event, st *evalState, envReady *bool, tab *Table, now time.Time) bool {
	if t.key == nil {
		return true
	}
	if !*envReady {
		tab.fillEnv(st.env, e)
		*envReady = true
	}
	out, err := st.vm.Run(t.key, st.env)
	if err != nil {
		return true
	}
	k := String(out)
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.windows[k]
	if w == nil || !now.Before(w.end) {
		if w != nil && w.suppressed > 0 {
			return true // the ended window waits for Summaries; let this one through
		}
		w = &throttleWindow{end: now.Add(t.per)}
		t.windows[k] = w
	}
	if w.passed < t.limit {
		w.passed++
		return true
	}
	w.suppressed++
	if w.first == "" {
		w.first = e.ID
	}
	w.last = e
	return false
}

// Summary is the event a throttle emits for a window in which it suppressed
// events, and the sinks it goes to.
type Summary struct {
	Event *Event
	Sinks []int
}

func (t *Throttle) summaries(now time.Time, sinks []int) []Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Summary
	keys := make([]string, 0, len(t.windows))
	for k := range t.windows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w := t.windows[k]
		if now.Before(w.end) {
			continue
		}
		delete(t.windows, k)
		if w.suppressed == 0 {
			continue
		}
		payload := map[string]any{
			"throttle":     t.owner,
			"key":          k,
			"key_expr":     t.keySrc,
			"suppressed":   w.suppressed,
			"passed":       w.passed,
			"window":       t.per.String(),
			"first_id":     w.first,
			"last_id":      w.last.ID,
			"last_event":   w.last.Event,
			"last_status":  w.last.Status,
			"last_payload": w.last.Payload,
		}
		ev := &Event{
			ID:         DeriveID("switchboard", fmt.Appendf(nil, "%s\x00%s\x00%d", t.owner, k, w.end.UnixNano())),
			Source:     w.last.Source,
			Event:      ThrottledEvent,
			Time:       w.end,
			ReceivedAt: now,
			Payload:    payload,
		}
		out = append(out, Summary{Event: ev, Sinks: sinks})
	}
	return out
}

// Summaries returns the summary events of every throttle window that has
// ended with suppressed events, and forgets ended windows. The daemon calls
// it every second and queues what it returns.
func (t *Table) Summaries(now time.Time) []Summary {
	var out []Summary
	for _, r := range t.rules {
		if r.throttle != nil {
			out = append(out, r.throttle.summaries(now, r.to)...)
		}
	}
	for i, th := range t.sinkThrottles {
		if th != nil {
			out = append(out, th.summaries(now, []int{i})...)
		}
	}
	return out
}
