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
// memory; a reload that keeps the throttle as it was keeps its state (see
// Table.Inherit).
type Throttle struct {
	owner  string // "rule x" or "sink y", for summaries and logs
	key    *vm.Program
	keySrc string
	limit  int
	per    time.Duration

	state *throttleState
}

// throttleState is a throttle's windows, shared by the tables of
// successive configs that keep the throttle unchanged.
type throttleState struct {
	mu      sync.Mutex
	windows map[string]*throttleWindow
}

// same reports whether o is the same storm control as t: a reload that
// changes none of these keeps t's windows and counts.
func (t *Throttle) same(o *Throttle) bool {
	return t.owner == o.owner && t.keySrc == o.keySrc && t.limit == o.limit && t.per == o.per
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
	t := &Throttle{owner: owner, keySrc: c.Key, limit: c.Limit, per: c.Per,
		state: &throttleState{windows: map[string]*throttleWindow{}}}
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
	ts := t.state
	ts.mu.Lock()
	defer ts.mu.Unlock()
	w := ts.windows[k]
	if w == nil || !now.Before(w.end) {
		if w != nil && w.suppressed > 0 {
			return true // the ended window waits for Summaries; let this one through
		}
		w = &throttleWindow{end: now.Add(t.per)}
		ts.windows[k] = w
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

// summaries returns the summary of every window ended by now (every
// window, if all) that suppressed events, and forgets those windows.
func (t *Throttle) summaries(now time.Time, sinks []int, all bool) []Summary {
	st := t.state
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []Summary
	keys := make([]string, 0, len(st.windows))
	for k := range st.windows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w := st.windows[k]
		if !all && now.Before(w.end) {
			continue
		}
		delete(st.windows, k)
		if w.suppressed == 0 {
			continue
		}
		out = append(out, Summary{Event: t.summary(k, w, now), Sinks: sinks})
	}
	return out
}

func (t *Throttle) summary(k string, w *throttleWindow, now time.Time) *Event {
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
		"last_payload": w.last.Fields(),
	}
	end := w.end
	if now.Before(end) { // cut short by a reload
		end = now
	}
	return &Event{
		ID:         DeriveID("switchboard", fmt.Appendf(nil, "%s\x00%s\x00%d", t.owner, k, w.end.UnixNano())),
		Source:     w.last.Source,
		Event:      ThrottledEvent,
		Time:       end,
		ReceivedAt: now,
		Payload:    payload,
	}
}

// Summaries returns the summary events of every throttle window that has
// ended with suppressed events, and forgets ended windows. The daemon calls
// it every second and queues what it returns.
func (t *Table) Summaries(now time.Time) []Summary {
	var out []Summary
	t.eachThrottle(func(th *Throttle, sinks []int) {
		out = append(out, th.summaries(now, sinks, false)...)
	})
	return out
}

// Inherit carries storm control across a reload, from old, the table in
// force, to t, its successor, before t is published: a throttle that t keeps
// unchanged (same owner, key, limit and per) shares old's windows and
// counts, so that events routed through either table count in the same
// window.
func (t *Table) Inherit(old *Table) {
	old.eachThrottle(func(o *Throttle, _ []int) {
		kept := false
		t.eachThrottle(func(n *Throttle, _ []int) {
			if !kept && n.same(o) {
				n.state, kept = o.state, true
			}
		})
	})
}

// Retired ends the throttles of old that t did not inherit: it returns the
// summaries of their windows that held events back, ended or not, with
// their sinks as old names them, for the caller to queue. Call it once
// nothing routes through old any more, so that no event counts in a window
// already summarised.
func (t *Table) Retired(old *Table, now time.Time) []Routed {
	var out []Routed
	old.eachThrottle(func(o *Throttle, sinks []int) {
		kept := false
		t.eachThrottle(func(n *Throttle, _ []int) { kept = kept || n.state == o.state })
		if kept {
			return
		}
		for _, s := range o.summaries(now, sinks, true) {
			out = append(out, Routed{Event: s.Event, Sinks: old.SinkNames(s.Sinks)})
		}
	})
	return out
}

// eachThrottle calls f with every throttle of t and the sinks its
// summaries go to.
func (t *Table) eachThrottle(f func(th *Throttle, sinks []int)) {
	for _, r := range t.rules {
		if r.throttle != nil {
			f(r.throttle, r.to)
		}
	}
	for i, th := range t.sinkThrottles {
		if th != nil {
			f(th, []int{i})
		}
	}
}
