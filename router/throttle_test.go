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
