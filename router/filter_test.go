package router_test

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"switchboard/config"
	"switchboard/router"
)

// The test catalog: two made-up provider events whose statuses differ, so
// that status checks against pinned events can be seen to work.
func TestMain(m *testing.M) {
	router.DeclareEvent("test.inbound", "starting", "ringing", "completed")
	router.DeclareEvent("test.outbound", "starting", "ringing", "completed", "accepted")
	router.DeclareEvent("other:event")
	os.Exit(m.Run())
}

// filters builds a filter list from key, value pairs.
func filters(kv ...string) []config.Filter {
	var out []config.Filter
	for i := 0; i < len(kv); i += 2 {
		out = append(out, config.Filter{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

func mustFilters(t testing.TB, fs []config.Filter, pinned ...string) router.Filters {
	t.Helper()
	f, ps := router.CompileFilters(fs, "filters", pinned)
	if len(ps) > 0 {
		t.Fatalf("CompileFilters: %v", ps)
	}
	return f
}

func decodePayload(t testing.TB, s string) map[string]any {
	t.Helper()
	m, err := router.DecodeObject([]byte(s))
	if err != nil {
		t.Fatalf("payload %s: %v", s, err)
	}
	return m
}

func TestFilterSemantics(t *testing.T) {
	call := func() *router.Event {
		return &router.Event{ID: "ev-1", Source: "bird", Event: "test.inbound", Status: "completed"}
	}
	for _, tc := range []struct {
		name    string
		filters []config.Filter
		event   *router.Event
		payload string
		want    bool
	}{
		{name: "no filters pass every event", want: true},
		{name: "no filters pass an event with nothing", event: &router.Event{}, want: true},
		{name: "one key, its value", filters: filters("status", "completed"), want: true},
		{name: "one key, another value", filters: filters("status", "failed"), want: false},
		{name: "same key twice is OR, second matches", filters: filters("status", "failed", "status", "completed"), want: true},
		{name: "same key twice is OR, first matches", filters: filters("status", "completed", "status", "failed"), want: true},
		{name: "same key twice is OR, none matches", filters: filters("status", "failed", "status", "busy"), want: false},
		{name: "same value twice", filters: filters("status", "completed", "status", "completed"), want: true},
		{name: "different keys are AND, both hold", filters: filters("status", "completed", "event", "test.inbound"), want: true},
		{name: "different keys are AND, one fails", filters: filters("status", "completed", "event", "test.outbound"), want: false},
		{name: "OR within AND", filters: filters("status", "failed", "event", "test.inbound", "status", "completed", "event", "x"), want: true},
		{name: "OR within AND, one key has no match", filters: filters("status", "failed", "event", "test.inbound", "status", "busy"), want: false},
		{name: "missing payload key fails", filters: filters("channelId", "c1"), want: false},
		{name: "missing status fails", filters: filters("status", ""), event: &router.Event{Event: "test.inbound"}, want: false},
		{name: "missing key fails even with other keys passing", filters: filters("event", "test.inbound", "direction", "incoming"), want: false},
		{name: "payload string", filters: filters("channelId", "c1"), payload: `{"channelId":"c1"}`, want: true},
		{name: "payload string is case-sensitive", filters: filters("channelId", "C1"), payload: `{"channelId":"c1"}`, want: false},
		{name: "whole number compared by its text", filters: filters("units", "2"), payload: `{"units":2}`, want: true},
		{name: "whole number does not match another text", filters: filters("units", "2.0"), payload: `{"units":2}`, want: false},
		{name: "fraction compared by its text", filters: filters("price", "0.25"), payload: `{"price":0.25}`, want: true},
		{name: "big int keeps every digit", filters: filters("ts", "1763600000123456789"), payload: `{"ts":1763600000123456789}`, want: true},
		{name: "boolean true by its text", filters: filters("recorded", "true"), payload: `{"recorded":true}`, want: true},
		{name: "boolean false by its text", filters: filters("recorded", "false"), payload: `{"recorded":false}`, want: true},
		{name: "boolean is not 1", filters: filters("recorded", "1"), payload: `{"recorded":true}`, want: false},
		{name: "null matches empty text", filters: filters("note", ""), payload: `{"note":null}`, want: true},
		{name: "dotted path to a nested field", filters: filters("recipient.from", "+3161"), payload: `{"recipient":{"from":"+3161"}}`, want: true},
		{name: "dotted path, other value", filters: filters("recipient.from", "+3162"), payload: `{"recipient":{"from":"+3161"}}`, want: false},
		{name: "dotted path through a non-object", filters: filters("recipient.from", "+3161"), payload: `{"recipient":"+3161"}`, want: false},
		{name: "dotted path, missing leaf", filters: filters("recipient.to", "+3161"), payload: `{"recipient":{"from":"+3161"}}`, want: false},
		{name: "deep dotted path", filters: filters("a.b.c", "1"), payload: `{"a":{"b":{"c":1}}}`, want: true},
		{name: "normalized status", filters: filters("status", "completed"), payload: `{"status":"other"}`, want: true},
		{name: "normalized status wins over the payload's", filters: filters("status", "other"), payload: `{"status":"other"}`, want: false},
		{name: "normalized event", filters: filters("event", "test.inbound"), want: true},
		{name: "normalized id", filters: filters("id", "ev-1"), payload: `{"id":"p-1"}`, want: true},
		{name: "normalized source", filters: filters("source", "bird"), want: true},
		{name: "normalized source, other", filters: filters("source", "telecmi"), want: false},
		{name: "payload field beside normalized ones", filters: filters("status", "completed", "direction", "incoming"), payload: `{"direction":"incoming"}`, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.event
			if e == nil {
				e = call()
			}
			if tc.payload != "" {
				e.Payload = decodePayload(t, tc.payload)
			}
			f := mustFilters(t, tc.filters)
			if got := f.Match(e); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
			if f.Empty() != (len(tc.filters) == 0) {
				t.Errorf("Empty = %v with %d filters", f.Empty(), len(tc.filters))
			}
		})
	}
}

func TestZeroFiltersPassEverything(t *testing.T) {
	var f router.Filters
	if !f.Empty() || !f.Match(&router.Event{}) {
		t.Error("the zero Filters must be empty and pass every event")
	}
}

func TestFilterProblems(t *testing.T) {
	for _, tc := range []struct {
		name    string
		filters []config.Filter
		pinned  []string
		want    []string
	}{
		{name: "one channelId is fine", filters: filters("channelId", "c1", "status", "x")},
		{name: "a second channelId", filters: filters("channelId", "c1", "status", "x", "channelId", "c2"), want: []string{
			"filters[2]: a second channelId filter; a subscription takes at most one channelId, so split this into two rules or sources",
		}},
		{name: "a third channelId is not reported again", filters: filters("channelId", "c1", "channelId", "c2", "channelId", "c3"), want: []string{
			"filters[1]: a second channelId filter; a subscription takes at most one channelId, so split this into two rules or sources",
		}},
		{name: "the same channelId twice is still two", filters: filters("channelId", "c1", "channelId", "c1"), want: []string{
			"filters[1]: a second channelId filter; a subscription takes at most one channelId, so split this into two rules or sources",
		}},
		{name: "missing key", filters: filters("", "x"), want: []string{
			"filters[0].key: is required: the event field to compare (status, event, or a payload field such as channelId)",
		}},
		{name: "status of a pinned event", filters: filters("status", "ringing"), pinned: []string{"test.inbound"}},
		{name: "status a pinned event cannot have", filters: filters("status", "accepted"), pinned: []string{"test.inbound"}, want: []string{
			`filters[0].value: "accepted" is not a status of test.inbound; it can be one of: completed, ringing, starting`,
		}},
		{name: "status typo among good ones", filters: filters("status", "ringing", "status", "complete"), pinned: []string{"test.inbound"}, want: []string{
			`filters[1].value: "complete" is not a status of test.inbound; it can be one of: completed, ringing, starting`,
		}},
		{name: "status of the other pinned event", filters: filters("status", "accepted"), pinned: []string{"test.inbound", "test.outbound"}},
		{name: "status of no pinned event", filters: filters("status", "busy"), pinned: []string{"test.outbound", "test.inbound"}, want: []string{
			`filters[0].value: "busy" is not a status of test.inbound, test.outbound; it can be one of: accepted, completed, ringing, starting`,
		}},
		{name: "glob unions the statuses", filters: filters("status", "accepted"), pinned: []string{"test.*"}},
		{name: "glob, status of none", filters: filters("status", "busy"), pinned: []string{"test.*"}, want: []string{
			`filters[0].value: "busy" is not a status of test.inbound, test.outbound; it can be one of: accepted, completed, ringing, starting`,
		}},
		{name: "event without statuses", filters: filters("status", "x"), pinned: []string{"other:event"}, want: []string{
			`filters[0].value: other:event carries no status, so a status filter never passes; remove it`,
		}},
		{name: "unknown pinned event: no check", filters: filters("status", "anything"), pinned: []string{"nope.event"}},
		{name: "glob matching nothing: no check", filters: filters("status", "anything"), pinned: []string{"nope.*"}},
		{name: "one unknown among known: no check", filters: filters("status", "anything"), pinned: []string{"test.inbound", "nope.event"}},
		{name: "nothing pinned: no check", filters: filters("status", "anything")},
		{name: "other keys are not checked", filters: filters("direction", "sideways"), pinned: []string{"test.inbound"}},
		{name: "every problem reported", filters: filters("channelId", "a", "status", "accepted", "", "x", "channelId", "b"), pinned: []string{"test.inbound"}, want: []string{
			`filters[1].value: "accepted" is not a status of test.inbound; it can be one of: completed, ringing, starting`,
			"filters[2].key: is required: the event field to compare (status, event, or a payload field such as channelId)",
			"filters[3]: a second channelId filter; a subscription takes at most one channelId, so split this into two rules or sources",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ps := router.CompileFilters(tc.filters, "filters", tc.pinned)
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

func TestKnownStatuses(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		events   []string
		statuses []string
		ok       bool
	}{
		{patterns: nil},
		{patterns: []string{"test.inbound"}, events: []string{"test.inbound"}, statuses: []string{"completed", "ringing", "starting"}, ok: true},
		{patterns: []string{"test.*"}, events: []string{"test.inbound", "test.outbound"}, statuses: []string{"accepted", "completed", "ringing", "starting"}, ok: true},
		{patterns: []string{"*bound"}, events: []string{"test.inbound", "test.outbound"}, statuses: []string{"accepted", "completed", "ringing", "starting"}, ok: true},
		{patterns: []string{"test.in*"}, events: []string{"test.inbound"}, statuses: []string{"completed", "ringing", "starting"}, ok: true},
		{patterns: []string{"nope"}},
		{patterns: []string{"test.inbound", "nope"}},
	} {
		events, statuses, ok := router.KnownStatuses(tc.patterns)
		var sts []string
		for s := range statuses {
			sts = append(sts, s)
		}
		slices.Sort(events)
		slices.Sort(sts)
		if ok != tc.ok || !reflect.DeepEqual(events, tc.events) || !reflect.DeepEqual(sts, tc.statuses) {
			t.Errorf("KnownStatuses(%q) = %q, %q, %v; want %q, %q, %v", tc.patterns, events, sts, ok, tc.events, tc.statuses, tc.ok)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"voice.inbound", "voice.inbound", true},
		{"voice.inbound", "voice.outbound", false},
		{"*", "", true},
		{"*", "anything:at.all", true},
		{"whatsapp:*", "whatsapp:message:status", true},
		{"whatsapp:*", "whatsapp:", true},
		{"whatsapp:*", "sms:message:status", false},
		{"*:status", "whatsapp:message:status", true},
		{"*:status", "whatsapp:message:statuses", false},
		{"voice.*bound", "voice.inbound", true},
		{"voice.*bound", "voice.in", false},
		{"*.*", "voice.inbound", true},
		{"*.*", "VOICE_EVENT", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXcYb", false},
		{"", "", true},
		{"", "x", false},
	} {
		if got := router.Glob(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func BenchmarkFilters(b *testing.B) {
	e := &router.Event{ID: "ev-1", Source: "bird", Event: "test.inbound", Status: "completed",
		Payload: decodePayload(b, `{"channelId":"c1","units":2,"recipient":{"from":"+3161"}}`)}
	for _, bc := range []struct {
		name    string
		filters []config.Filter
	}{
		{"none", nil},
		{"status OR", filters("status", "failed", "status", "busy", "status", "completed")},
		{"AND of three", filters("status", "completed", "channelId", "c1", "recipient.from", "+3161")},
		{"number", filters("units", "2")},
		{"failing first key", filters("status", "failed", "channelId", "c1")},
	} {
		f := mustFilters(b, bc.filters)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.Match(e)
			}
		})
	}
}
