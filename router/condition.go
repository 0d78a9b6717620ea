package router

import (
	"errors"
	"strings"

	"switchboard/config"
)

// Condition is a `when` expression compiled outside the rules, for those
// who filter events by the rules' own language (the live tap). It is a
// one-rule Table underneath, so that it sees exactly the environment, the
// nil-safety and the number comparisons a rule sees.
type Condition struct {
	t *Table
}

// CompileCondition compiles src as a rule's when would be; the error reads
// like check's message for a rule's when, without the YAML path.
func CompileCondition(src string) (*Condition, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("the expression is empty")
	}
	t, ps := Compile([]config.Rule{{Name: "when", When: src, To: []string{"match"}}}, nil, []string{"match"}, nil)
	if len(ps) > 0 {
		return nil, errors.New(ps[0].Msg)
	}
	return &Condition{t: t}, nil
}

// Match reports whether e satisfies the condition; an error at run time
// (comparing a string with a number) is returned, and counts as no match.
func (c *Condition) Match(e *Event) (bool, error) {
	var obs failure
	return len(c.t.Route(e, nil, &obs, nil)) > 0, obs.err
}

// failure keeps the run-time error of a Condition's one rule.
type failure struct{ err error }

func (f *failure) RuleMatched(string, *Event)               {}
func (f *failure) RuleFailed(_ string, _ *Event, err error) { f.err = err }
func (f *failure) Throttled(string, *Event)                 {}
