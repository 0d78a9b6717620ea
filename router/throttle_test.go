package router_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/router"
)

func TestThrottleHoldsBackABurstAndSummarisesIt(t *testing.T) {
	rules := []config.Rule{
		{Name: "failed", When: `status == "failed"`, To: []string{"oncall", "archive"},
			Throttle: &config.Throttle{Key: `payload.channel`, Limit: 2, Per: 200 * time.Millisecond}},
		{Name: "all", To: []string{"archive"}},
	}
	tab, ps := router.Compile(rules, nil, []string{"oncall", "archive"}, nil)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	rec := &recorder{}
	sent := map[string]int{}
	for i := range 10 {
		for _, ch := range []string{"a", "b"} {
			ev := &router.Event{ID: fmt.Sprintf("%s%d", ch, i), Source: "s", Event: "e", Status: "failed",
				Payload: map[string]any{"channel": ch}}
			for _, s := range tab.Route(ev, nil, rec, nil) {
				sent[tab.SinkName(s)]++
			}
		}
	}
	// Per channel, 2 go through the throttled rule; archive still gets
	// every event through the other rule.
	if sent["oncall"] != 4 || sent["archive"] != 20 {
		t.Errorf("sent = %v, want oncall 4 (2 per channel), archive 20", sent)
	}
	if len(rec.throttled) != 16 {
		t.Errorf("throttled %d events, want 16", len(rec.throttled))
	}
	if got := tab.Summaries(time.Now()); len(got) != 0 {
		t.Errorf("summaries before the window ended: %v", got)
	}
	sums := tab.Summaries(time.Now().Add(time.Second))
	if len(sums) != 2 {
		t.Fatalf("got %d summaries, want one per channel", len(sums))
	}
	s := sums[0]
	if s.Event.Event != router.ThrottledEvent || s.Event.Payload["key"] != "a" || s.Event.Payload["suppressed"] != 8 ||
		s.Event.Payload["first_id"] != "a2" || s.Event.Payload["last_id"] != "a9" || s.Event.Payload["throttle"] != "rule failed" {
		t.Errorf("summary = %v", s.Event.Payload)
	}
	var names []string
	for _, i := range s.Sinks {
		names = append(names, tab.SinkName(i))
	}
	if !slices.Equal(names, []string{"oncall", "archive"}) {
		t.Errorf("summary sinks = %v", names)
	}
	if again := tab.Summaries(time.Now().Add(2 * time.Second)); len(again) != 0 {
		t.Errorf("a window was summarised twice")
	}
}

func TestSinkThrottleOnlyHoldsBackThatSink(t *testing.T) {
	tab, ps := router.Compile([]config.Rule{{Name: "all", To: []string{"slack", "archive"}}}, nil, []string{"slack", "archive"}, nil)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if ps := tab.ThrottleSinks(map[string]*config.Throttle{"slack": {Key: "status", Limit: 1, Per: time.Minute}}); len(ps) > 0 {
		t.Fatal(ps)
	}
	sent := map[string]int{}
	for i := range 5 {
		ev := &router.Event{ID: fmt.Sprint(i), Status: "failed"}
		for _, s := range tab.Route(ev, nil, nil, nil) {
			sent[tab.SinkName(s)]++
		}
	}
	if sent["slack"] != 1 || sent["archive"] != 5 {
		t.Errorf("sent = %v, want slack 1, archive 5", sent)
	}
}

func TestThrottleConfigProblems(t *testing.T) {
	_, ps := router.Compile([]config.Rule{{Name: "r", To: []string{"a"},
		Throttle: &config.Throttle{Key: "status ==", Limit: 0, Per: 0}}}, nil, []string{"a"}, nil)
	want := []string{
		"rules[0] (r).throttle.limit: must be at least 1: how many events per window go through",
		"rules[0] (r).throttle.per: must be a positive duration, e.g. 1m",
		"rules[0] (r).throttle.key: unexpected token EOF (column 9)",
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Error())
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}

// TestInheritCarriesStormControlAcrossReloads: a throttle a reload keeps as
// it was keeps counting in the same window; one it changes or removes ends,
// and its held-back events are summarised at once.
func TestInheritCarriesStormControlAcrossReloads(t *testing.T) {
	sinks := []string{"oncall", "archive"}
	throttle := func(limit int) *config.Throttle {
		return &config.Throttle{Key: "payload.channel", Limit: limit, Per: time.Hour}
	}
	build := func(rules []config.Rule, sinkThrottle *config.Throttle) *router.Table {
		t.Helper()
		tab, ps := router.Compile(rules, nil, sinks, nil)
		if sinkThrottle != nil {
			ps = append(ps, tab.ThrottleSinks(map[string]*config.Throttle{"archive": sinkThrottle})...)
		}
		if len(ps) > 0 {
			t.Fatal(ps)
		}
		return tab
	}
	send := func(tab *router.Table, id string) []int {
		return tab.Route(&router.Event{ID: id, Source: "s", Event: "e", Payload: map[string]any{"channel": "a"}}, nil, nil, nil)
	}
	old := build([]config.Rule{
		{Name: "kept", To: []string{"oncall"}, Throttle: throttle(1)},
		{Name: "changed", To: []string{"oncall"}, Throttle: throttle(1)},
		{Name: "removed", To: []string{"archive"}, Throttle: throttle(1)},
	}, throttle(1))
	for i := range 3 {
		send(old, fmt.Sprint("old", i))
	}
	next := build([]config.Rule{
		{Name: "kept", To: []string{"oncall"}, Throttle: throttle(1)},
		{Name: "changed", To: []string{"oncall"}, Throttle: throttle(5)},
	}, throttle(1))
	next.Inherit(old)
	flushed := next.Retired(old, time.Now())
	var got []string
	for _, r := range flushed {
		p := r.Event.Payload
		got = append(got, fmt.Sprintf("%s %v->%v", p["throttle"], p["suppressed"], r.Sinks))
	}
	want := []string{"rule changed 2->[oncall]", "rule removed 2->[archive]"}
	if !slices.Equal(got, want) {
		t.Errorf("flushed summaries = %q, want %q", got, want)
	}
	// The kept rule and the kept sink throttle are still in their window:
	// nothing more passes. The changed rule starts afresh.
	if s := send(next, "new"); len(s) != 1 || next.SinkName(s[0]) != "oncall" {
		t.Errorf("after the reload the event went to %v, want only the changed rule's oncall", s)
	}
	sums := next.Summaries(time.Now().Add(2 * time.Hour))
	got = got[:0]
	for _, s := range sums {
		got = append(got, fmt.Sprintf("%s %v", s.Event.Payload["throttle"], s.Event.Payload["suppressed"]))
	}
	if !slices.Equal(got, []string{"rule kept 3"}) {
		t.Errorf("summaries at the end of the window = %q, want the kept rule's 3 held back across the reload", got)
	}
}
