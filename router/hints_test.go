package router_test

import (
	"testing"

	"switchboard/config"
	"switchboard/router"
)

// The mistakes of a first rule get an answer that says what to write.
func TestWhenHints(t *testing.T) {
	for _, tc := range []struct{ when, want string }{
		{`status = "failed"`, `rules[0] (r).when: unexpected token Operator("=") (column 8); did you mean ==?`},
		{`status == "a" || payload.x = 3`, `rules[0] (r).when: unexpected token Operator("=") (column 28); did you mean ==?`},
		{`status in ["failed", "busy"] && duration < 5`,
			`rules[0] (r).when: "duration" is expr's duration() function here, not a payload field; reach the field as payload.duration (column 33)`},
		{`type == "x"`, `rules[0] (r).when: "type" is expr's type() function here, not a payload field; reach the field as payload.type (column 1)`},
		{`count > 3`, `rules[0] (r).when: "count" is expr's count() function here, not a payload field; reach the field as payload.count (column 1)`},
		{`len == 3`, `rules[0] (r).when: "len" is expr's len() function here, not a payload field; reach the field as payload.len (column 1)`},
		// One that would compile is refused too: it could never match.
		{`type != nil`, `rules[0] (r).when: "type" is expr's type() function here, not a payload field; reach the field as payload.type (column 1)`},
	} {
		t.Run(tc.when, func(t *testing.T) {
			_, ps := router.Compile([]config.Rule{{Name: "r", When: tc.when, To: []string{"crm"}}}, nil, testSinks, testSources)
			if len(ps) != 1 || ps[0].Error() != tc.want {
				t.Errorf("problems %q\nwant      %q", ps, tc.want)
			}
		})
	}
}

// Builtins called as functions, and payload fields reached through
// payload, need no hint.
func TestWhenHintsLeaveGoodExpressionsAlone(t *testing.T) {
	for _, when := range []string{
		`payload.duration < 5 && payload.type == "call"`,
		`len(payload.legs) > 1 && duration("1h") > duration("1m")`,
		`count(payload.legs, # > 1) == 2 && type(payload.x) == "int"`,
		`status == "failed" && units != "3"`,
	} {
		if _, ps := router.Compile([]config.Rule{{Name: "r", When: when, To: []string{"crm"}}}, nil, testSinks, testSources); len(ps) > 0 {
			t.Errorf("%s: %v", when, ps)
		}
	}
}

// Whatever an operator writes in when, check answers with problems, never
// a panic.
func FuzzCompileWhen(f *testing.F) {
	for _, s := range []string{`status = "failed"`, `duration < 5`, `len(payload.x) > count`, `a.b.c == nil`, `"x" matches "["`,
		`payload.id == 12345678901234567891`, `-1_2345678901234567891 < x && "99999999999999999999" == y`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, when string) {
		router.Compile([]config.Rule{{Name: "r", When: when, To: []string{"crm"}}}, nil, testSinks, testSources)
	})
}
