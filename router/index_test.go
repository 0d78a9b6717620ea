package router_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"switchboard/config"
	"switchboard/router"
)

// whenAtoms are the conditions random rules are made of: ones the index
// decides, on fixed fields and on payload paths of every depth, and ones
// only the VM can (comparisons, functions, bare fields that may not be
// booleans, errors).
var whenAtoms = []string{
	`status == "failed"`, `status in ["failed", "busy"]`, `"busy" == status`, `status == ""`,
	`event == "test.inbound"`, `event in ["test.outbound", "whatsapp:message:status"]`,
	`source == "bird"`, `id == "ev-1"`,
	`payload.a == "x"`, `payload.a in ["x", "y"]`, `a == "y"`, `a in ["x"]`,
	`payload.a.b == "x"`, `payload["a"]["b"] in ["x", "y"]`, `a.b == "y"`, `payload.a.b.c == "x"`,
	`payload?.channel == "x1"`, `channel == "x2"`, `channel in ["x1", "x3"]`, `payload.payload.channel == "x1"`,
	`payload.n == 5`, `payload.n > 3`, `payload.a.b != nil`, `payload.flag`, `len(payload.list) > 1`,
	`status == "failed" || channel == "x2"`, `payload.a.b.c > 1`, `not (status == "busy")`, `payload["a.b"] == "x"`,
}

var (
	eventNames  = []string{"test.inbound", "test.outbound", "whatsapp:message:status", "voice.inbound", "x", ""}
	eventGlobs  = []string{"test.inbound", "test.outbound", "test.*", "whatsapp:*", "*.inbound", "*", "w*:*:status", "voice.inbound"}
	filterKeys  = []string{"status", "channel", "a", "a.b", "n", "flag", "id", "payload.channel"}
	filterVals  = []string{"failed", "busy", "x", "x1", "5", "true", "", "ev-1"}
	sourceNames = []string{"bird", "generic", "whatsapp"}
)

func pick[T any](r *rand.Rand, l []T) T { return l[r.IntN(len(l))] }

func randomRules(r *rand.Rand) ([]config.Rule, []string) {
	rules := make([]config.Rule, 1+r.IntN(12))
	for i := range rules {
		rc := config.Rule{Name: fmt.Sprintf("r%d", i), Stop: r.IntN(6) == 0}
		for range r.IntN(3) {
			rc.To = append(rc.To, pick(r, testSinks))
		}
		if len(rc.To) == 0 {
			rc.To = []string{pick(r, testSinks)}
		}
		if r.IntN(4) == 0 {
			rc.Sources = []string{pick(r, sourceNames)}
		}
		for range r.IntN(3) * r.IntN(2) {
			rc.Events = append(rc.Events, pick(r, eventGlobs))
		}
		for range r.IntN(3) * r.IntN(2) {
			rc.Filters = append(rc.Filters, config.Filter{Key: pick(r, filterKeys), Value: pick(r, filterVals)})
		}
		var conj []string
		for range r.IntN(5) {
			conj = append(conj, pick(r, whenAtoms))
		}
		rc.When = strings.Join(conj, pick(r, []string{" && ", " and "}))
		if len(conj) > 2 && r.IntN(3) == 0 { // a nested chain: (a && b) && c
			rc.When = "(" + conj[0] + " && " + conj[1] + ") && " + strings.Join(conj[2:], " && ")
		}
		rules[i] = rc
	}
	var unmatched []string
	if r.IntN(2) == 0 {
		unmatched = []string{pick(r, testSinks)}
	}
	return rules, unmatched
}

// randomValue is a payload value of any shape a decoded body can hold.
func randomValue(r *rand.Rand, depth int) any {
	switch r.IntN(9) {
	case 0:
		return nil
	case 1, 2:
		return pick(r, []string{"x", "y", "x1", "x2", "failed", "5", ""})
	case 3:
		return pick(r, []any{5, 3, 0, 5.5, uint64(1 << 63)})
	case 4:
		return pick(r, []any{true, false})
	case 5:
		return []any{"x", 5}
	}
	m := map[string]any{}
	if depth < 3 {
		for _, k := range []string{"a", "b", "c", "channel"} {
			if r.IntN(2) == 0 {
				m[k] = randomValue(r, depth+1)
			}
		}
	}
	return m
}

func randomEvent(r *rand.Rand) *router.Event {
	e := &router.Event{
		ID: pick(r, []string{"ev-1", "ev-2"}), Source: pick(r, sourceNames),
		Event: pick(r, eventNames), Status: pick(r, []string{"failed", "busy", ""}),
	}
	if r.IntN(8) > 0 {
		e.Payload = map[string]any{}
		for _, k := range []string{"a", "a.b", "channel", "n", "flag", "list", "payload", "id", "status"} {
			if r.IntN(2) == 0 {
				e.Payload[k] = randomValue(r, 0)
			}
		}
	}
	return e
}

// routing is everything Route tells the world about one event.
type routing struct {
	sinks   []string
	matched []string
	failed  []string
}

// indexedAndLinear routes e with the index and, through the trace path that
// evaluates every rule, without it.
func indexedAndLinear(tb *router.Table, e *router.Event) (indexed, linear routing) {
	// The same event as a source that does not decode bodies makes it:
	// its payload only bytes, read by path, decoded if a rule needs it.
	raw, err := json.Marshal(e.Payload)
	if err != nil {
		panic(err)
	}
	lazy := &router.Event{ID: e.ID, Source: e.Source, Event: e.Event, Status: e.Status, Time: e.Time,
		ReceivedAt: e.ReceivedAt, RawPayload: raw, Headers: e.Headers}
	rz := &recorder{}
	lazySinks := route(tb, lazy, rz, nil)
	defer func() {
		if !slices.Equal(lazySinks, indexed.sinks) || !slices.Equal(rz.matched, indexed.matched) || !slices.Equal(rz.failed, indexed.failed) {
			indexed.sinks = append(lazySinks, "(undecoded payload)") // makes the caller's comparison fail, with both in its message
			indexed.matched = append(rz.matched, "(undecoded payload)")
		}
	}()
	ri, rl := &recorder{}, &recorder{}
	indexed.sinks = route(tb, e, ri, nil)
	var trace []router.Verdict
	linear.sinks = route(tb, e, rl, &trace)
	indexed.matched, indexed.failed = ri.matched, ri.failed
	linear.matched, linear.failed = rl.matched, rl.failed
	return indexed, linear
}

func TestIndexedRoutingEqualsLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rounds := 3000
	if testing.Short() || raceEnabled { // the race detector makes each round ~20x slower
		rounds = 300
	}
	var sawMatch, sawError, sawStop int
	for round := range rounds {
		rules, unmatched := randomRules(r)
		tb, ps := router.Compile(rules, unmatched, testSinks, testSources)
		if len(ps) > 0 {
			continue // a random filter's status value can be refused; skip that set
		}
		stops := map[string]bool{}
		for _, rc := range rules {
			stops[rc.Name] = rc.Stop
		}
		for range 20 {
			e := randomEvent(r)
			got, want := indexedAndLinear(tb, e)
			if !slices.Equal(got.sinks, want.sinks) || !slices.Equal(got.matched, want.matched) || !slices.Equal(got.failed, want.failed) {
				t.Fatalf("round %d: indexed routing differs from linear\nrules: %+v\nevent: %+v\nindexed: %+v\nlinear:  %+v",
					round, rules, e, got, want)
			}
			sawMatch += len(got.matched)
			sawError += len(got.failed)
			if n := len(got.matched); n > 0 && stops[got.matched[n-1]] {
				sawStop++
			}
		}
	}
	// The comparison means something only if the random sets exercise it.
	if sawMatch < 1000 || sawError < 100 || sawStop < 50 {
		t.Errorf("random rule sets too tame: %d matches, %d errors, %d stops", sawMatch, sawError, sawStop)
	}
	t.Logf("%d matches, %d rule errors, %d stops compared", sawMatch, sawError, sawStop)
}

// FuzzIndexedRouting routes a fuzzed payload against rule sets made from
// a fuzzed seed: the index must agree with evaluating every rule.
func FuzzIndexedRouting(f *testing.F) {
	f.Add(uint64(1), `{"a":{"b":"x"},"channel":"x1"}`, "failed")
	f.Add(uint64(2), `{"a":"x","payload":{"channel":"x1"}}`, "busy")
	f.Add(uint64(3), `{"a":5,"n":5,"flag":true,"list":[1,2]}`, "")
	f.Add(uint64(4), `{"a":[1],"channel":null}`, "failed")
	f.Fuzz(func(t *testing.T, seed uint64, payload, status string) {
		p, err := router.DecodeObject([]byte(payload))
		if err != nil {
			return
		}
		r := rand.New(rand.NewPCG(seed, seed>>32))
		rules, unmatched := randomRules(r)
		tb, ps := router.Compile(rules, unmatched, testSinks, testSources)
		if len(ps) > 0 {
			return
		}
		e := randomEvent(r)
		e.Payload, e.Status = p, status
		got, want := indexedAndLinear(tb, e)
		if !slices.Equal(got.sinks, want.sinks) || !slices.Equal(got.matched, want.matched) || !slices.Equal(got.failed, want.failed) {
			t.Fatalf("indexed routing differs from linear\nrules: %+v\nevent: %+v\nindexed: %+v\nlinear:  %+v", rules, e, got, want)
		}
	})
}

// TestIndexDecidesAsExprDoes pins the cases where a shortcut could go
// wrong: the index files each rule under its most selective condition, yet
// numbers, missing fields, paths through non-objects and errors of earlier
// conjuncts come out as the VM has them.
func TestIndexDecidesAsExprDoes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		when    string
		events  []string
		filters []config.Filter
		payload string
		event   string
		match   bool
		err     string // prefix of the rule's error, if it fails
	}{
		{name: "string literal, string value", when: `payload.n == "5"`, payload: `{"n":"5"}`, match: true},
		{name: "string literal, number value", when: `payload.n == "5"`, payload: `{"n":5}`},
		{name: "number literal is left to expr", when: `status == "failed" && payload.n == 5`, payload: `{"n":5}`, match: true},
		{name: "missing field", when: `payload.a.b == "x"`, payload: `{}`},
		{name: "null on the way", when: `payload.a.b == "x"`, payload: `{"a":null}`},
		{name: "a dotted member name is one field", when: `payload["a.b"] == "x" && payload.a.b == "y"`, payload: `{"a.b":"x","a":{"b":"y"}}`, match: true},
		{name: "bare payload field", when: `channel == "x1"`, payload: `{"channel":"x1"}`, match: true},
		{name: "member of a bare payload field", when: `recipient.from == "+31"`, payload: `{"recipient":{"from":"+31"}}`, match: true},
		{name: "in a list of strings", when: `payload.a in ["x","y"]`, payload: `{"a":"y"}`, match: true},
		// Comparisons with an operand known only at run time go through
		// the exact number comparison (compare.go): a number is simply
		// not in a list of strings, where bare expr would fail.
		{name: "in with a number value is no match", when: `payload.a in ["x"]`, payload: `{"a":5}`},
		{name: "path through a string fails", when: `payload.a.b == "x"`, payload: `{"a":"s"}`, err: "when: "},
		{name: "an earlier conjunct's error is kept though a later one is false",
			when: `payload.a.b == "x" && payload.c == "never"`, payload: `{"a":"s","c":"other"}`, err: "when: "},
		{name: "a later conjunct's error is not reached", when: `payload.c == "never" && payload.a.b == "x"`, payload: `{"a":"s","c":"other"}`},
		{name: "a non-boolean rest still fails", when: `status == "failed" && payload.flag`, payload: `{"flag":"yes"}`, err: "when: "},
		{name: "filter compares numbers as text", filters: filters("n", "5"), payload: `{"n":5}`, match: true},
		{name: "glob prefix", events: []string{"whatsapp:*"}, event: "whatsapp:message:status", match: true},
		{name: "glob prefix, other name", events: []string{"whatsapp:*"}, event: "voice.inbound"},
		{name: "glob without prefix", events: []string{"*.inbound"}, event: "voice.inbound", match: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := compile(t, []config.Rule{
				{Name: "other", When: `status == "nope"`, To: []string{"audit"}},
				{Name: "r", When: tc.when, Events: tc.events, Filters: tc.filters, To: []string{"crm"}},
			})
			e := inbound("failed", tc.payload)
			if tc.event != "" {
				e.Event = tc.event
			}
			rec := &recorder{}
			got := route(tb, e, rec, nil)
			if tc.match != (len(got) == 1) || len(rec.failed) > 0 != (tc.err != "") {
				t.Fatalf("sinks %v, errors %v; want match=%v err=%q", got, rec.failed, tc.match, tc.err)
			}
			if tc.err != "" && !strings.HasPrefix(rec.failed[0], "r: "+tc.err) {
				t.Errorf("error %q, want prefix %q", rec.failed[0], tc.err)
			}
		})
	}
}
