package router_test

import (
	"strings"
	"testing"
	"time"

	"switchboard/router"
)

func TestCondition(t *testing.T) {
	ev := &router.Event{ID: "e1", Source: "bird", Event: "voice.outbound", Status: "failed",
		ReceivedAt: time.Unix(1, 0), Payload: map[string]any{"to": "+31612345678", "seconds": 12, "type": "call"},
		Headers: map[string]string{"x-tenant": "acme"}}
	for _, tc := range []struct {
		name, when string
		match      bool
		err        string // at run time
	}{
		{"fixed field", `status == "failed"`, true, ""},
		{"top-level payload field", `to startsWith "+31"`, true, ""},
		{"number", `seconds > 10`, true, ""},
		{"builtin name keeps its meaning", `payload.type == "call"`, true, ""},
		{"header", `headers["x-tenant"] == "acme"`, true, ""},
		{"missing field is nil", `payload.nothing.deeper == nil`, true, ""},
		{"no match", `source == "mob"`, false, ""},
		{"run-time error is no match", `payload.to + 1 > 2`, false, "when:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := router.CompileCondition(tc.when)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			got, err := c.Match(ev)
			if got != tc.match {
				t.Errorf("match = %v, want %v", got, tc.match)
			}
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestConditionCompileErrors(t *testing.T) {
	for _, tc := range []struct{ when, want string }{
		{"", "the expression is empty"},
		{"   ", "the expression is empty"},
		{`status ==`, "unexpected token"},
		{`status + 1`, ""}, // not a bool, or a type mismatch: some error
		{`nosuchfunc(status)`, "unknown function nosuchfunc()"},
	} {
		_, err := router.CompileCondition(tc.when)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CompileCondition(%q) = %v, want an error containing %q", tc.when, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "rules[") {
			t.Errorf("CompileCondition(%q): error names the wrapped rule: %v", tc.when, err)
		}
	}
}

func FuzzCondition(f *testing.F) {
	for _, s := range []string{`status == "failed"`, `to startsWith "+3"`, `payload.a.b in [1, 2]`, `len(id) > 3`, `(`} {
		f.Add(s)
	}
	ev := &router.Event{ID: "e", Source: "s", Event: "x", Payload: map[string]any{"a": map[string]any{"b": 1}, "to": "+31"}}
	f.Fuzz(func(t *testing.T, when string) {
		c, err := router.CompileCondition(when)
		if err != nil {
			return
		}
		c.Match(ev) // must not panic
	})
}
