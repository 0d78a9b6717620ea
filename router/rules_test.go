package router_test

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/config"
	"switchboard/router"
)

var (
	testSinks   = []string{"oncall", "crm", "archive", "audit"}
	testSources = map[string][]string{
		"bird":     {"test.inbound", "test.outbound"},
		"generic":  nil,
		"whatsapp": nil,
	}
)

func compile(t testing.TB, rules []config.Rule, unmatched ...string) *router.Table {
	t.Helper()
	tb, ps := router.Compile(rules, unmatched, testSinks, testSources)
	if len(ps) > 0 {
		t.Fatalf("Compile:\n%v", ps)
	}
	return tb
}

// route returns the names of the sinks e goes to, in the order chosen.
func route(tb *router.Table, e *router.Event, obs router.RuleObserver, trace *[]router.Verdict) []string {
	var names []string
	for _, i := range tb.Route(e, nil, obs, trace) {
		names = append(names, tb.SinkName(i))
	}
	return names
}

// recorder is a RuleObserver that remembers what it heard.
type recorder struct {
	mu        sync.Mutex
	matched   []string
	failed    []string // "rule: error"
	throttled []string // "owner: event id"
}

func (r *recorder) RuleMatched(rule string, e *router.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.matched = append(r.matched, rule)
}

func (r *recorder) RuleFailed(rule string, e *router.Event, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, rule+": "+err.Error())
}

func (r *recorder) Throttled(owner string, e *router.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.throttled = append(r.throttled, owner+": "+e.ID)
}

var _ router.RuleObserver = (*recorder)(nil)

func inbound(status string, payload string) *router.Event {
	e := &router.Event{
		ID: "ev-1", Source: "bird", Event: "test.inbound", Status: status,
		Time:       time.Date(2026, 11, 23, 7, 0, 0, 123e6, time.UTC),
		ReceivedAt: time.Date(2026, 11, 23, 7, 0, 0, 125e6, time.UTC),
		Headers:    map[string]string{"x-a": "1", "content-type": "application/json"},
	}
	if payload != "" {
		m, err := router.DecodeObject([]byte(payload))
		if err != nil {
			panic(err)
		}
		e.Payload = m
	}
	return e
}

func TestRuleSemantics(t *testing.T) {
	failed := inbound("failed", `{"units":"5","channel":"x1"}`)
	wa := &router.Event{ID: "wa-1", Source: "whatsapp", Event: "whatsapp:message:status", Status: "read"}
	for _, tc := range []struct {
		name      string
		rules     []config.Rule
		unmatched []string
		event     *router.Event
		want      []string
		matched   []string
	}{
		{
			name: "every matching rule fires, in order",
			rules: []config.Rule{
				{Name: "a", When: `status == "failed"`, To: []string{"crm"}},
				{Name: "b", Events: []string{"test.*"}, To: []string{"oncall"}},
				{Name: "c", When: `status == "busy"`, To: []string{"audit"}},
				{Name: "d", To: []string{"archive"}},
			},
			event: failed, want: []string{"crm", "oncall", "archive"}, matched: []string{"a", "b", "d"},
		},
		{
			name: "stop ends evaluation when its rule matches",
			rules: []config.Rule{
				{Name: "a", When: `status == "failed"`, To: []string{"crm"}, Stop: true},
				{Name: "b", To: []string{"archive"}},
			},
			event: failed, want: []string{"crm"}, matched: []string{"a"},
		},
		{
			name: "stop on a rule that does not match changes nothing",
			rules: []config.Rule{
				{Name: "a", When: `status == "busy"`, To: []string{"crm"}, Stop: true},
				{Name: "b", To: []string{"archive"}},
			},
			event: failed, want: []string{"archive"}, matched: []string{"b"},
		},
		{
			name: "earlier matches still count when a later rule stops",
			rules: []config.Rule{
				{Name: "a", To: []string{"audit"}},
				{Name: "b", When: `status == "failed"`, To: []string{"crm"}, Stop: true},
				{Name: "c", To: []string{"archive"}},
			},
			event: failed, want: []string{"audit", "crm"}, matched: []string{"a", "b"},
		},
		{
			name: "a sink named by two rules receives once",
			rules: []config.Rule{
				{Name: "a", To: []string{"crm", "archive"}},
				{Name: "b", To: []string{"archive", "oncall"}},
			},
			event: failed, want: []string{"crm", "archive", "oncall"}, matched: []string{"a", "b"},
		},
		{
			name:  "a sink named twice by one rule receives once",
			rules: []config.Rule{{Name: "a", To: []string{"crm", "crm"}}},
			event: failed, want: []string{"crm"}, matched: []string{"a"},
		},
		{
			name:  "a rule with no conditions matches every event",
			rules: []config.Rule{{Name: "all", To: []string{"archive"}}},
			event: &router.Event{}, want: []string{"archive"}, matched: []string{"all"},
		},
		{
			name:  "sources: the event's source is listed",
			rules: []config.Rule{{Name: "a", Sources: []string{"generic", "bird"}, To: []string{"crm"}}},
			event: failed, want: []string{"crm"}, matched: []string{"a"},
		},
		{
			name:  "sources: the event's source is not listed",
			rules: []config.Rule{{Name: "a", Sources: []string{"generic"}, To: []string{"crm"}}},
			event: failed, want: nil,
		},
		{
			name:  "events: exact name",
			rules: []config.Rule{{Name: "a", Events: []string{"test.outbound", "test.inbound"}, To: []string{"crm"}}},
			event: failed, want: []string{"crm"}, matched: []string{"a"},
		},
		{
			name:  "events: glob",
			rules: []config.Rule{{Name: "a", Events: []string{"whatsapp:*"}, To: []string{"crm"}}},
			event: wa, want: []string{"crm"}, matched: []string{"a"},
		},
		{
			name:  "events: glob of another provider",
			rules: []config.Rule{{Name: "a", Events: []string{"whatsapp:*"}, To: []string{"crm"}}},
			event: failed, want: nil,
		},
		{
			name:  "filters on a rule",
			rules: []config.Rule{{Name: "a", Filters: filters("status", "busy", "status", "failed", "channel", "x1"), To: []string{"crm"}}},
			event: failed, want: []string{"crm"}, matched: []string{"a"},
		},
		{
			name: "all conditions must hold",
			rules: []config.Rule{{Name: "a", Sources: []string{"bird"}, Events: []string{"test.*"},
				Filters: filters("channel", "x1"), When: `status == "busy"`, To: []string{"crm"}}},
			event: failed, want: nil,
		},
		{
			name:      "unmatched when no rule matched",
			rules:     []config.Rule{{Name: "a", When: `status == "busy"`, To: []string{"crm"}}},
			unmatched: []string{"archive", "audit"},
			event:     failed, want: []string{"archive", "audit"},
		},
		{
			name:      "unmatched not used when a rule matched",
			rules:     []config.Rule{{Name: "a", When: `status == "failed"`, To: []string{"crm"}}},
			unmatched: []string{"archive"},
			event:     failed, want: []string{"crm"}, matched: []string{"a"},
		},
		{
			name:      "unmatched not used when a rule matched whose sinks were already chosen",
			rules:     []config.Rule{{Name: "a", To: []string{"crm"}}, {Name: "b", To: []string{"crm"}}},
			unmatched: []string{"archive"},
			event:     failed, want: []string{"crm"}, matched: []string{"a", "b"},
		},
		{
			name:      "unmatched when the only rule errors",
			rules:     []config.Rule{{Name: "a", When: `units > 3`, To: []string{"crm"}}},
			unmatched: []string{"archive"},
			event:     failed, want: []string{"archive"},
		},
		{
			name:  "no rules, no unmatched: nowhere",
			event: failed, want: nil,
		},
		{
			name:      "no rules: unmatched",
			unmatched: []string{"archive"},
			event:     failed, want: []string{"archive"},
		},
		{
			name: "a when that errors is no match and later rules still run",
			rules: []config.Rule{
				{Name: "bad", When: `units > 3`, To: []string{"crm"}, Stop: true},
				{Name: "good", When: `units == "5"`, To: []string{"archive"}},
			},
			event: failed, want: []string{"archive"}, matched: []string{"good"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := compile(t, tc.rules, tc.unmatched...)
			rec := &recorder{}
			if got := route(tb, tc.event, rec, nil); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("sinks = %q, want %q", got, tc.want)
			}
			if !reflect.DeepEqual(rec.matched, tc.matched) {
				t.Errorf("observer heard matches %q, want %q", rec.matched, tc.matched)
			}
			// Tracing must not change the outcome.
			var trace []router.Verdict
			if got := route(tb, tc.event, nil, &trace); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("with trace: sinks = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRuntimeErrorIsReportedAndCountsAsNoMatch(t *testing.T) {
	tb := compile(t, []config.Rule{
		{Name: "too-many-units", When: `units > 3`, To: []string{"crm"}},
		{Name: "bare-field", When: `units`, To: []string{"crm"}},
		{Name: "all", To: []string{"archive"}},
	})
	rec := &recorder{}
	e := inbound("failed", `{"units":"5"}`)
	if got := route(tb, e, rec, nil); !reflect.DeepEqual(got, []string{"archive"}) {
		t.Errorf("sinks = %q, want [archive]", got)
	}
	wantFailed := []string{
		"too-many-units: when: invalid operation: string > int (column 7)",
		"bare-field: when: invalid operation: bool(string) (column 1)",
	}
	if !reflect.DeepEqual(rec.failed, wantFailed) {
		t.Errorf("failed = %q\nwant     %q", rec.failed, wantFailed)
	}
	if !reflect.DeepEqual(rec.matched, []string{"all"}) {
		t.Errorf("matched = %q, want [all]", rec.matched)
	}
	// A nil observer is allowed.
	if got := route(tb, e, nil, nil); !reflect.DeepEqual(got, []string{"archive"}) {
		t.Errorf("nil observer: sinks = %q", got)
	}
	// The same rule on an event where it works.
	rec = &recorder{}
	if got := route(tb, inbound("failed", `{"units":5}`), rec, nil); !reflect.DeepEqual(got, []string{"crm", "archive"}) {
		t.Errorf("numeric units: sinks = %q", got)
	}
}

func TestTraceVerdicts(t *testing.T) {
	tb := compile(t, []config.Rule{
		{Name: "other-source", Sources: []string{"generic"}, To: []string{"crm"}},
		{Name: "other-event", Events: []string{"whatsapp:*", "test.outbound"}, To: []string{"crm"}},
		{Name: "filter-value", Filters: filters("status", "busy", "status", "no-answer"), To: []string{"crm"}},
		{Name: "filter-missing", Filters: filters("channelId", "c1"), To: []string{"crm"}},
		{Name: "when-false", When: `status == "busy"`, To: []string{"crm"}},
		{Name: "when-error", When: `units > 3`, To: []string{"crm"}},
		{Name: "match", When: `status == "failed"`, To: []string{"oncall"}},
		{Name: "match-stop", Events: []string{"test.*"}, To: []string{"archive"}, Stop: true},
		{Name: "after-stop", To: []string{"audit"}},
	}, "audit")
	var trace []router.Verdict
	got := route(tb, inbound("failed", `{"units":"5"}`), nil, &trace)
	if want := []string{"oncall", "archive"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sinks = %q, want %q", got, want)
	}
	want := []router.Verdict{
		{Rule: "other-source", Verdict: "no_match", Reason: `source "bird" is not one of ["generic"]`},
		{Rule: "other-event", Verdict: "no_match", Reason: `event "test.inbound" is not one of ["whatsapp:*" "test.outbound"]`},
		{Rule: "filter-value", Verdict: "no_match", Reason: `filter status: "failed" is not one of ["busy" "no-answer"]`},
		{Rule: "filter-missing", Verdict: "no_match", Reason: `filter channelId: the event has no channelId`},
		{Rule: "when-false", Verdict: "no_match", Reason: `when is false: status == "busy"`},
		{Rule: "when-error", Verdict: "error", Reason: `when: invalid operation: string > int (column 7)`},
		{Rule: "match", Verdict: "match"},
		{Rule: "match-stop", Verdict: "match", Reason: "stop: later rules are not evaluated"},
		{Rule: "after-stop", Verdict: "no_match", Reason: "not evaluated: rule match-stop matched with stop: true"},
	}
	if !reflect.DeepEqual(trace, want) {
		t.Errorf("trace:\n got %+v\nwant %+v", trace, want)
	}
	if router.Match != "match" || router.NoMatch != "no_match" || router.Error != "error" {
		t.Error("verdict names are part of the `route --json` contract")
	}
}

// env is the event every expression case runs against.
func envEvent() *router.Event {
	e := inbound("completed", `{
		"status": "payload-status",
		"id": "payload-id",
		"type": "sms",
		"count": 7,
		"len": 3,
		"duration": 30,
		"units": "5",
		"price": 0.25,
		"recorded": true,
		"to": "+31612345678",
		"direction": "incoming",
		"tags": ["vip", "nl"],
		"recipient": {"from": "+3161", "user": {"name": "Ada"}},
		"note": null,
		"payload": "shadowed",
		"headers": "shadowed"
	}`)
	return e
}

func TestExpressionEnvironment(t *testing.T) {
	e := envEvent()
	for _, tc := range []struct {
		when string
		want bool
		err  string
	}{
		// Normalized fields.
		{when: `id == "ev-1"`, want: true},
		{when: `source == "bird"`, want: true},
		{when: `event == "test.inbound"`, want: true},
		{when: `status == "completed"`, want: true},
		{when: `time == date("2026-11-23T07:00:00.123Z")`, want: true},
		{when: `received_at > time`, want: true},
		{when: `received_at - time < duration("1s")`, want: true},
		{when: `time < now()`, want: true},
		{when: `time.Year() == 2026`, want: true},
		{when: `payload.direction == "incoming"`, want: true},
		{when: `headers["x-a"] == "1"`, want: true},
		{when: `headers["content-type"] startsWith "application/"`, want: true},
		{when: `headers["x-missing"] == ""`, want: true},
		// Top-level payload fields by their own name.
		{when: `direction == "incoming"`, want: true},
		{when: `units == "5"`, want: true},
		{when: `price < 1`, want: true},
		{when: `recorded`, want: true},
		{when: `recorded == true`, want: true},
		{when: `recipient.from == "+3161"`, want: true},
		{when: `recipient.user.name == "Ada"`, want: true},
		{when: `"vip" in tags`, want: true},
		{when: `len(tags) == 2`, want: true},
		{when: `tags[0] == "vip"`, want: true},
		{when: `note == nil`, want: true},
		// Collisions: the normalized field keeps the name; payload.<name> is the payload's.
		{when: `status == "payload-status"`, want: false},
		{when: `payload.status == "payload-status"`, want: true},
		{when: `id == "payload-id"`, want: false},
		{when: `payload.id == "payload-id"`, want: true},
		{when: `payload.payload == "shadowed"`, want: true},
		{when: `payload.headers == "shadowed"`, want: true},
		// Collisions with builtins: the builtin keeps its meaning.
		{when: `payload.type == "sms"`, want: true},
		{when: `type(payload.type) == "string"`, want: true},
		{when: `type(tags) == "array"`, want: true},
		{when: `payload.count == 7`, want: true},
		{when: `count(tags, # startsWith "v") == 1`, want: true},
		{when: `payload.len == 3`, want: true},
		{when: `len("abcd") == 4`, want: true},
		{when: `payload.duration == 30`, want: true},
		{when: `duration("1m") > duration("30s")`, want: true},
		// A field the event lacks is nil, not an error.
		{when: `foo == nil`, want: true},
		{when: `foo != nil`, want: false},
		{when: `recipient.user.email == nil`, want: true},
		{when: `recipient.missing.deeper == nil`, want: true},
		{when: `a.b.c == nil`, want: true},
		{when: `payload.a.b.c == nil`, want: true},
		{when: `note.x == nil`, want: true},
		{when: `foo == "x"`, want: false},
		// Operators.
		{when: `to matches "^\\+316"`, want: true},
		{when: `to matches "^\\+44"`, want: false},
		{when: `status in ["failed", "completed"]`, want: true},
		{when: `status in ["failed", "busy"]`, want: false},
		{when: `status not in ["failed", "busy"]`, want: true},
		{when: `event startsWith "test."`, want: true},
		{when: `event endsWith ".inbound"`, want: true},
		{when: `event contains "in"`, want: true},
		{when: `upper(status) == "COMPLETED"`, want: true},
		{when: `status == "completed" && (direction == "incoming" || units == "9")`, want: true},
		{when: `!(status == "completed")`, want: false},
		// Run-time errors.
		{when: `units > 3`, err: "when: invalid operation: string > int (column 7)"},
		{when: `foo > 3`, err: "when: invalid operation: <nil> > int (column 5)"},
		{when: `units`, err: "when: invalid operation: bool(string) (column 1)"},
		{when: `int(direction) > 1`, err: "when: invalid operation: int(incoming) (column 1)"},
	} {
		t.Run(tc.when, func(t *testing.T) {
			tb := compile(t, []config.Rule{{Name: "r", When: tc.when, To: []string{"crm"}}})
			var trace []router.Verdict
			rec := &recorder{}
			got := route(tb, e, rec, &trace)
			if tc.err != "" {
				want := []router.Verdict{{Rule: "r", Verdict: "error", Reason: tc.err}}
				if !reflect.DeepEqual(trace, want) {
					t.Errorf("trace = %+v, want %+v", trace, want)
				}
				if len(rec.failed) != 1 || len(got) != 0 {
					t.Errorf("failed = %q, sinks = %q", rec.failed, got)
				}
				return
			}
			if len(trace) != 1 || trace[0].Verdict == "error" {
				t.Fatalf("trace = %+v", trace)
			}
			if matched := len(got) == 1; matched != tc.want {
				t.Errorf("matched = %v, want %v (trace %+v)", matched, tc.want, trace)
			}
		})
	}
}

func TestExpressionEnvironmentOfASparseEvent(t *testing.T) {
	// No payload, no headers, no time: the names still exist.
	e := &router.Event{ID: "x", Source: "generic", Event: "ping", ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, when := range []string{
		`status == ""`,
		`payload.anything == nil`,
		`len(payload) == 0`,
		`headers["x-a"] == ""`,
		`len(headers) == 0`,
		`time == received_at`, // time falls back to received_at
		`anything == nil`,
	} {
		tb := compile(t, []config.Rule{{Name: "r", When: when, To: []string{"crm"}}})
		var trace []router.Verdict
		if got := route(tb, e, nil, &trace); len(got) != 1 {
			t.Errorf("%s: trace %+v", when, trace)
		}
	}
}

// Payload fields from one event must not leak into the next one evaluated
// with the same pooled environment.
func TestEnvironmentIsFreshForEachEvent(t *testing.T) {
	tb := compile(t, []config.Rule{{Name: "r", When: `channel == nil`, To: []string{"crm"}}})
	with := inbound("failed", `{"channel":"x1"}`)
	without := inbound("failed", `{}`)
	for range 100 {
		if got := route(tb, with, nil, nil); got != nil {
			t.Fatalf("event with channel: %q", got)
		}
		if got := route(tb, without, nil, nil); len(got) != 1 {
			t.Fatalf("event without channel: %q", got)
		}
	}
}

func TestRouteIsSafeForConcurrentUse(t *testing.T) {
	tb := compile(t, []config.Rule{
		{Name: "a", When: `channel == "x1" && status == "failed"`, To: []string{"crm"}},
		{Name: "b", When: `channel == "x2"`, To: []string{"oncall"}},
	}, "archive")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				ch := fmt.Sprintf("x%d", (g+i)%3)
				want := map[string][]string{"x0": {"archive"}, "x1": {"crm"}, "x2": {"oncall"}}[ch]
				got := route(tb, inbound("failed", `{"channel":"`+ch+`"}`), nil, nil)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("channel %s: sinks = %q, want %q", ch, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestRouteAppendsToDst(t *testing.T) {
	tb := compile(t, []config.Rule{{Name: "a", To: []string{"crm", "oncall"}}})
	dst := make([]int, 0, 8)
	got := tb.Route(inbound("x", ""), dst, nil, nil)
	if len(got) != 2 || &got[:1][0] != &dst[:1][0] {
		t.Errorf("Route must reuse dst's storage: %v", got)
	}
	var names []string
	for _, i := range got {
		names = append(names, tb.SinkName(i))
	}
	if !reflect.DeepEqual(names, []string{"crm", "oncall"}) {
		t.Errorf("sinks = %q", names)
	}
	if want := []string{"archive", "audit", "crm", "oncall"}; !reflect.DeepEqual(tb.Sinks(), want) {
		t.Errorf("Sinks() = %q, want %q (sorted)", tb.Sinks(), want)
	}
}

func TestCompileProblems(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rules     []config.Rule
		unmatched []string
		want      []string
	}{
		{
			name:  "syntax error",
			rules: []config.Rule{{Name: "r", When: `status ==`, To: []string{"crm"}}},
			want:  []string{"rules[0] (r).when: unexpected token EOF (column 9)"},
		},
		{
			name:  "syntax error mid-expression",
			rules: []config.Rule{{Name: "r", When: `status == "a" &&& event == "b"`, To: []string{"crm"}}},
			want:  []string{"rules[0] (r).when: unexpected token Operator(\"&\") (column 17)"},
		},
		{
			name:  "not a bool",
			rules: []config.Rule{{Name: "r", When: `status`, To: []string{"crm"}}},
			want:  []string{"rules[0] (r).when: expected bool, but got string"},
		},
		{
			name:  "not a bool: arithmetic",
			rules: []config.Rule{{Name: "r", When: `1 + 2`, To: []string{"crm"}}},
			want:  []string{"rules[0] (r).when: expected bool, but got int"},
		},
		{
			name:  "unknown function",
			rules: []config.Rule{{Name: "r", When: `foo(status)`, To: []string{"crm"}}},
			want:  []string{"rules[0] (r).when: unknown function foo(); expr's functions are listed at https://expr-lang.org/docs/language-definition"},
		},
		{
			name:  "unknown function inside an expression",
			rules: []config.Rule{{Name: "r", When: `status == "x" || lenght(tags) > 1`, To: []string{"crm"}}},
			want:  []string{"rules[0] (r).when: unknown function lenght(); expr's functions are listed at https://expr-lang.org/docs/language-definition"},
		},
		{
			name:  "type error",
			rules: []config.Rule{{Name: "r", When: `status + 1 == 2`, To: []string{"crm"}}},
			want:  []string{"rules[0] (r).when: invalid operation: + (mismatched types string and int) (column 8)"},
		},
		{
			name:  "a builtin where a payload field was meant",
			rules: []config.Rule{{Name: "r", When: `type == "sms"`, To: []string{"crm"}}},
			want:  []string{`rules[0] (r).when: "type" is expr's type() function here, not a payload field; reach the field as payload.type (column 1)`},
		},
		{
			name:  "bad regexp",
			rules: []config.Rule{{Name: "r", When: `to matches "["`, To: []string{"crm"}}},
			want:  []string{"rules[0] (r).when: error parsing regexp: missing closing ]: `[` (column 4)"},
		},
		{
			name:  "undefined sink in to",
			rules: []config.Rule{{Name: "r", To: []string{"crm", "pager"}}},
			want:  []string{"rules[0] (r).to[1]: sink \"pager\" is not defined; define it under sinks: or use one of: archive, audit, crm, oncall"},
		},
		{
			name:      "undefined sink in unmatched",
			unmatched: []string{"archive", "trash"},
			want:      []string{"unmatched[1]: sink \"trash\" is not defined; define it under sinks: or use one of: archive, audit, crm, oncall"},
		},
		{
			name:  "undefined source",
			rules: []config.Rule{{Name: "r", Sources: []string{"bird", "brid"}, To: []string{"crm"}}},
			want:  []string{"rules[0] (r).sources[1]: source \"brid\" is not defined; use one of: bird, generic, whatsapp"},
		},
		{
			name: "duplicate names",
			rules: []config.Rule{
				{Name: "r", To: []string{"crm"}},
				{Name: "s", To: []string{"crm"}},
				{Name: "r", To: []string{"crm"}},
			},
			want: []string{"rules[2] (r).name: \"r\" is also the name of rules[0]; rule names must be unique"},
		},
		{
			name:  "missing name",
			rules: []config.Rule{{To: []string{"crm"}}},
			want:  []string{"rules[0].name: is required: name each rule, it appears in logs, metrics and `route` output"},
		},
		{
			name:  "missing to",
			rules: []config.Rule{{Name: "r"}},
			want:  []string{"rules[0] (r).to: is required: the sinks that receive matching events"},
		},
		{
			name:  "empty event name",
			rules: []config.Rule{{Name: "r", Events: []string{"test.inbound", ""}, To: []string{"crm"}}},
			want:  []string{"rules[0] (r).events[1]: is empty; write an event name such as voice.inbound or a glob such as whatsapp:*"},
		},
		{
			name:  "status filter against the rule's events",
			rules: []config.Rule{{Name: "r", Events: []string{"test.inbound"}, Filters: filters("status", "accepted"), To: []string{"crm"}}},
			want:  []string{`rules[0] (r).filters[0].value: "accepted" is not a status of test.inbound; it can be one of: completed, ringing, starting`},
		},
		{
			name:  "status filter against the events its sources pin",
			rules: []config.Rule{{Name: "r", Sources: []string{"bird"}, Filters: filters("status", "busy"), To: []string{"crm"}}},
			want:  []string{`rules[0] (r).filters[0].value: "busy" is not a status of test.inbound, test.outbound; it can be one of: accepted, completed, ringing, starting`},
		},
		{
			name:  "status filter with a source that pins nothing: no check",
			rules: []config.Rule{{Name: "r", Sources: []string{"bird", "generic"}, Filters: filters("status", "busy"), To: []string{"crm"}}},
		},
		{
			name:  "second channelId on a rule",
			rules: []config.Rule{{Name: "r", Filters: filters("channelId", "a", "channelId", "b"), To: []string{"crm"}}},
			want:  []string{"rules[0] (r).filters[1]: a second channelId filter; a subscription takes at most one channelId, so split this into two rules or sources"},
		},
		{
			name: "every problem, each with its rule",
			rules: []config.Rule{
				{Name: "a", When: `status`, To: []string{"nope"}},
				{When: `foo(1)`},
				{Name: "a", Sources: []string{"x"}, To: []string{"crm"}},
			},
			unmatched: []string{"gone"},
			want: []string{
				"rules[0] (a).when: expected bool, but got string",
				"rules[0] (a).to[0]: sink \"nope\" is not defined; define it under sinks: or use one of: archive, audit, crm, oncall",
				"rules[1].name: is required: name each rule, it appears in logs, metrics and `route` output",
				"rules[1].when: unknown function foo(); expr's functions are listed at https://expr-lang.org/docs/language-definition",
				"rules[1].to: is required: the sinks that receive matching events",
				"rules[2] (a).name: \"a\" is also the name of rules[0]; rule names must be unique",
				"rules[2] (a).sources[0]: source \"x\" is not defined; use one of: bird, generic, whatsapp",
				"unmatched[0]: sink \"gone\" is not defined; define it under sinks: or use one of: archive, audit, crm, oncall",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ps := router.Compile(tc.rules, tc.unmatched, testSinks, testSources)
			var got []string
			for _, p := range ps {
				got = append(got, p.Error())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

func TestCompileWithoutSinks(t *testing.T) {
	_, ps := router.Compile([]config.Rule{{Name: "r", To: []string{"crm"}}}, nil, nil, nil)
	want := `rules[0] (r).to[0]: sink "crm" is not defined; define it under sinks: or use one of: (none defined)`
	if ps.Error() != want {
		t.Errorf("got %q, want %q", ps.Error(), want)
	}
}

// BenchmarkRoute measures evaluation against tables of 1, 10 and 100 rules
// of the same shape, where only the last can match. Allocations per event
// should not grow with the number of rules.
func BenchmarkRoute(b *testing.B) {
	e := inbound("failed", `{"channel":"x0","units":2,"recipient":{"from":"+3161"}}`)
	for _, n := range []int{1, 10, 100} {
		rules := make([]config.Rule, n)
		for i := range rules {
			rules[i] = config.Rule{
				Name: fmt.Sprintf("r%d", i),
				When: fmt.Sprintf(`status == "failed" && channel == "x%d"`, n-1-i),
				To:   []string{testSinks[i%len(testSinks)]},
			}
		}
		tb := compile(b, rules, "archive")
		dst := make([]int, 0, len(testSinks))
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				dst = tb.Route(e, dst[:0], nil, nil)
			}
		})
	}
}

func TestRouteAllocationsDoNotGrowWithRules(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are only meaningful without -race")
	}
	shapes := map[string]func(n, i int) string{
		"top-level field": func(n, i int) string { return fmt.Sprintf(`status == "failed" && channel == "x%d"`, n-1-i) },
		"payload path":    func(n, i int) string { return fmt.Sprintf(`status == "failed" && payload.payload.channel == "x%d"`, i) },
		"left to the VM":  func(n, i int) string { return fmt.Sprintf(`units > 1 && channel == "x%d"`, n-1-i) },
	}
	e := inbound("failed", `{"channel":"x0","units":2,"payload":{"channel":"x0"}}`)
	for shape, when := range shapes {
		allocs := map[int]float64{}
		for _, n := range []int{1, 100, 1000} {
			rules := make([]config.Rule, n)
			for i := range rules {
				rules[i] = config.Rule{Name: fmt.Sprintf("r%d", i), When: when(n, i), To: []string{"crm"}}
			}
			tb := compile(t, rules)
			dst := make([]int, 0, 4)
			allocs[n] = testing.AllocsPerRun(100, func() { dst = tb.Route(e, dst[:0], nil, nil) })
		}
		if allocs[1000] > allocs[1] {
			t.Errorf("%s: allocations per event grow with rules: %v", shape, allocs)
		}
		t.Logf("%s: allocations per event by rule count: %v", shape, allocs)
	}
}
