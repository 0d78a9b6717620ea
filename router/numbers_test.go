package router_test

import (
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"switchboard/config"
	"switchboard/router"
)

// Rules compare payload numbers by value whatever type keeps them exact:
// int, uint64 (past int64), float64 and json.Number (past everything).
func TestRulesCompareNumbersByValue(t *testing.T) {
	payload := `{"n":7,"amount":12.5,"big":18446744073709551615,"huge":123456789012345678901234567890,` +
		`"precise":0.12345678901234567891,"s":"7","list":[1,18446744073709551615]}`
	for _, tc := range []struct {
		when string
		want bool
	}{
		{`payload.n > 5`, true},
		{`payload.n == 7`, true},
		{`payload.n == 7.0`, true},
		{`payload.amount == 12.5`, true},
		{`payload.amount > 12`, true},
		{`payload.big > 5`, true}, // expr alone: int(uint64) is -1, so false
		{`payload.big == -1`, false},
		{`payload.big >= 9223372036854775807`, true},
		{`payload.big < 1.9e19`, true},
		{`payload.big != payload.n`, true},
		{`payload.big in [1, 2, 3]`, false},
		{`payload.n in [1, 7]`, true},
		{`payload.n not in [1, 7]`, false},
		{`payload.huge > payload.big`, true},
		{`payload.huge > 1e29`, true},
		{`payload.huge < 1.3e29`, true},
		{`payload.huge == payload.huge`, true},
		{`payload.precise > 0.1234567890123456`, true},
		{`payload.precise < 0.1234567890123457`, true},
		{`payload.s == "7"`, true},
		{`payload.s == 7`, false},
		{`payload.missing == nil`, true},
		{`payload.missing == 1`, false},
		{`n > 5`, true}, // a top-level payload field
		{`big > 5`, true},
		{`status == "completed"`, true},
	} {
		t.Run(tc.when, func(t *testing.T) { ruleMatches(t, tc.when, payload, tc.want) })
	}
}

// ruleMatches routes a completed inbound call with payload against the one
// rule `when`, traced and through the index, and checks both say want.
func ruleMatches(t *testing.T, when, payload string, want bool) {
	t.Helper()
	tb := compile(t, []config.Rule{{Name: "r", When: when, To: []string{"crm"}}})
	var trace []router.Verdict
	got := len(route(tb, inbound("completed", payload), nil, &trace)) == 1
	if trace[0].Verdict == router.Error {
		t.Fatalf("rule failed: %s", trace[0].Reason)
	}
	if got != want {
		t.Errorf("%s: got %v, want %v (%s)", when, got, want, trace[0].Reason)
	}
	// The indexed path (no trace) agrees.
	if got := len(route(tb, inbound("completed", payload), nil, nil)) == 1; got != want {
		t.Errorf("%s without a trace: got %v, want %v", when, got, want)
	}
}

// Issue 10.2: rules compare ids and amounts past int64 with literals past
// int64 (which expr alone refuses to compile), and an integer against a
// float exactly, not through the nearest float64.
func TestRulesCompareLiteralsPastInt64(t *testing.T) {
	payload := `{"id":12345678901234567891,"other":12345678901234567892,"huge":123456789012345678901234567890,` +
		`"neg":-9223372036854775809,"min":-9223372036854775808,"p53":9007199254740993,"s":"12345678901234567891"}`
	for _, tc := range []struct {
		when string
		want bool
	}{
		{`payload.id == 12345678901234567891`, true},
		{`payload.other == 12345678901234567891`, false},
		{`payload.id != 12345678901234567892`, true},
		{`payload.id < 12_345_678_901_234_567_892`, true},
		{`payload.id in [1, 12345678901234567891]`, true},
		{`payload.other in [1, 12345678901234567891]`, false},
		{`payload.huge == 123456789012345678901234567890`, true},
		{`payload.huge > 123456789012345678901234567889`, true},
		{`payload.id < 123456789012345678901234567890`, true},
		{`payload.neg == -9223372036854775809`, true},
		{`payload.neg < -9223372036854775808`, true},
		{`payload.min == -9223372036854775808`, true},
		{`payload.id > 12345678901234567000.0`, true}, // as a float64 both are 12345678901234567168
		{`payload.p53 == 9007199254740992.0`, false},  // as a float64 both are 2^53
		{`payload.p53 > 9007199254740992.0`, true},
		{`payload.s == "12345678901234567891"`, true},
		{`payload.missing == 12345678901234567891`, false},
		{`status == "completed" && payload.id == 12345678901234567891`, true},
		{`payload.s == 12345678901234567891`, false},
	} {
		t.Run(tc.when, func(t *testing.T) { ruleMatches(t, tc.when, payload, tc.want) })
	}
}

// A literal past int64 keeps its column in messages: it is widened in
// place, not moved.
func TestLiteralPastInt64KeepsColumns(t *testing.T) {
	_, ps := router.Compile([]config.Rule{{Name: "r", When: `payload.id == 12345678901234567891 && nope(1)`, To: []string{"crm"}}},
		nil, []string{"crm"}, nil)
	if len(ps) != 1 || !strings.Contains(ps[0].Msg, "nope") {
		t.Fatalf("problems %v", ps)
	}
	_, ps = router.Compile([]config.Rule{{Name: "r", When: `payload.id == 12345678901234567891 +`, To: []string{"crm"}}},
		nil, []string{"crm"}, nil)
	if len(ps) != 1 || !strings.Contains(ps[0].Msg, "column 36") {
		t.Fatalf("problems %v", ps)
	}
}

// Ordering a number against a string is a rule error, as expr has it.
func TestRulesCompareNumberWithString(t *testing.T) {
	tb := compile(t, []config.Rule{{Name: "r", When: `payload.big < "x"`, To: []string{"crm"}}})
	var trace []router.Verdict
	route(tb, inbound("completed", `{"big":123456789012345678901234567890}`), nil, &trace)
	if trace[0].Verdict != router.Error {
		t.Errorf("verdict %+v, want an error", trace[0])
	}
}

// Comparing through the number functions costs no allocation: a rule
// comparing numbers costs what one comparing strings does.
func TestNumberComparisonAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	e := inbound("completed", `{"n":7,"big":18446744073709551615,"s":"x"}`)
	allocs := func(when string) float64 {
		tb := compile(t, []config.Rule{{Name: "r", When: when, To: []string{"crm"}}})
		var dst []int
		dst = tb.Route(e, dst, nil, nil)
		return testing.AllocsPerRun(200, func() { dst = tb.Route(e, dst[:0], nil, nil) })
	}
	base := allocs(`payload.s == "x" && payload.n != nil`)
	if got := allocs(`payload.big > 5 && payload.n == 7`); got > base {
		t.Errorf("%v allocations per route comparing numbers, %v comparing strings", got, base)
	}
}

func TestDecodedNumbersPrintExactly(t *testing.T) {
	for _, in := range []string{
		"12345678901234567891", "12345678901234567892", "-9223372036854775808", "18446744073709551615",
		"123456789012345678901234567890", "0.12345678901234567891", "12.5", "1e-400", "2e700", "1e20",
	} {
		v, err := router.DecodeJSON([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if !sameValue(in, router.String(v)) {
			t.Errorf("%s decodes as %T and prints as %s", in, v, router.String(v))
		}
		b, _ := json.Marshal(map[string]any{"v": v})
		var back struct{ V json.Number }
		json.Unmarshal(b, &back)
		if !sameValue(in, string(back.V)) {
			t.Errorf("%s encodes as %s", in, b)
		}
	}
}

// sameValue compares two decimal numbers exactly.
func sameValue(a, b string) bool {
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	return ok1 && ok2 && x.Cmp(y) == 0
}

// FuzzNumberRoundTrip: any JSON number decodes to a value that prints
// back (router.String and encoding/json) as the same number.
func FuzzNumberRoundTrip(f *testing.F) {
	for _, s := range []string{"0", "-0", "1.50", "12345678901234567891", "9223372036854775807", "1e-400",
		"123456789012345.6", "0.000000000000000000001", "4.9e-324", "2.2250738585072014e-308", "-1E+2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 64 || !json.Valid([]byte(s)) || strings.ContainsAny(s, "\"[{tfn \t\r\n") {
			return
		}
		if e := strings.IndexAny(s, "eE"); e >= 0 {
			if n, err := strconv.Atoi(strings.TrimPrefix(s[e+1:], "+")); err != nil || n > 400 || n < -400 {
				return // big.Rat would spell out 10^n
			}
		}
		v, err := router.DecodeJSON([]byte(s))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if !sameValue(s, router.String(v)) {
			t.Fatalf("%s decodes as %T %v and prints as %s", s, v, v, router.String(v))
		}
		b, err := json.Marshal(v)
		if err != nil || !sameValue(s, string(b)) {
			t.Fatalf("%s decodes as %T and encodes as %s (%v)", s, v, b, err)
		}
	})
}
