package router

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"switchboard/config"
)

// Table is one compiled configuration of rules: immutable once built, shared
// by every request, swapped whole on reload.
type Table struct {
	rules     []*rule
	sinks     []string // sink index -> name
	unmatched []int
	// vars are the payload fields that some `when` names at top level; only
	// those are copied into the expression environment.
	vars []string
	// sinkThrottles is indexed like sinks; nil where a sink has none.
	sinkThrottles []*Throttle
	pool          sync.Pool // *evalState
}

type rule struct {
	name     string
	sources  []string
	events   []string
	filters  Filters
	when     *vm.Program
	whenSrc  string
	to       []int
	stop     bool
	throttle *Throttle
}

// evalState is the per-goroutine scratch space of evaluation: one VM and
// one environment map, reused so that evaluating costs no allocation per rule.
type evalState struct {
	vm  vm.VM
	env map[string]any
}

// fixedVars are the environment names every event has; payload fields of
// the same name are reached as payload.<name>.
var fixedVars = []string{"id", "source", "event", "status", "time", "received_at", "payload", "headers"}

var builtins = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range builtin.Builtins {
		m[f.Name] = true
	}
	return m
}()

// typeEnv declares the types of the fixed names so that `check` catches
// `status + 1` or a `when` that is not a bool.
var typeEnv = map[string]any{
	"id": "", "source": "", "event": "", "status": "",
	"time": time.Time{}, "received_at": time.Time{},
	"payload": map[string]any{}, "headers": map[string]string{},
}

// Compile checks and compiles rules. sinks are the configured sink names;
// sources maps each configured source name to the events it pins (nil when
// it takes any).
func Compile(rules []config.Rule, unmatched []string, sinks []string, sources map[string][]string) (*Table, config.Problems) {
	var ps config.Problems
	t := &Table{sinks: slices.Clone(sinks)}
	slices.Sort(t.sinks)
	sinkIndex := map[string]int{}
	for i, s := range t.sinks {
		sinkIndex[s] = i
	}
	resolve := func(path string, names []string) []int {
		var out []int
		for i, n := range names {
			idx, ok := sinkIndex[n]
			if !ok {
				ps.Add(fmt.Sprintf("%s[%d]", path, i), "sink %q is not defined; define it under sinks: or use one of: %s", n, list(t.sinks))
				continue
			}
			if !slices.Contains(out, idx) {
				out = append(out, idx)
			}
		}
		return out
	}
	vars := map[string]bool{}
	seen := map[string]int{}
	for i, rc := range rules {
		at := fmt.Sprintf("rules[%d]", i)
		if rc.Name == "" {
			ps.Add(at+".name", "is required: name each rule, it appears in logs, metrics and `route` output")
		} else {
			at = fmt.Sprintf("rules[%d] (%s)", i, rc.Name)
			if j, dup := seen[rc.Name]; dup {
				ps.Add(at+".name", "%q is also the name of rules[%d]; rule names must be unique", rc.Name, j)
			}
			seen[rc.Name] = i
		}
		events := make([]string, len(rc.Events))
		for j, e := range rc.Events {
			events[j] = Canonical(e)
		}
		r := &rule{name: rc.Name, sources: rc.Sources, events: events, stop: rc.Stop, whenSrc: rc.When}
		for j, s := range rc.Sources {
			if _, ok := sources[s]; !ok {
				ps.Add(fmt.Sprintf("%s.sources[%d]", at, j), "source %q is not defined; use one of: %s", s, list(keys(sources)))
			}
		}
		for j, e := range rc.Events {
			if e == "" {
				ps.Add(fmt.Sprintf("%s.events[%d]", at, j), "is empty; write an event name such as voice.inbound or a glob such as whatsapp:*")
			}
		}
		pinned := events
		if len(pinned) == 0 && len(rc.Sources) > 0 {
			for _, s := range rc.Sources {
				if sources[s] == nil {
					pinned = nil
					break
				}
				pinned = append(pinned, sources[s]...)
			}
		}
		var fps config.Problems
		r.filters, fps = CompileFilters(rc.Filters, at+".filters", pinned)
		ps = append(ps, fps...)
		if strings.TrimSpace(rc.When) != "" {
			prog, err := compileWhen(rc.When, vars)
			if err != nil {
				ps.Add(at+".when", "%v", err)
			}
			r.when = prog
		}
		if len(rc.To) == 0 {
			ps.Add(at+".to", "is required: the sinks that receive matching events")
		}
		r.to = resolve(at+".to", rc.To)
		if rc.Throttle != nil {
			var tps config.Problems
			r.throttle, tps = compileThrottle(rc.Throttle, "rule "+rc.Name, at+".throttle", vars)
			ps = append(ps, tps...)
		}
		t.rules = append(t.rules, r)
	}
	t.unmatched = resolve("unmatched", unmatched)
	for v := range vars {
		t.vars = append(t.vars, v)
	}
	slices.Sort(t.vars)
	t.pool.New = func() any { return &evalState{env: make(map[string]any, len(fixedVars)+len(t.vars))} }
	return t, ps
}

// compileWhen compiles one expression, makes member access nil-safe (a
// missing field is nil, not an error), rejects unknown functions, and adds
// the top-level names it uses to vars.
func compileWhen(src string, vars map[string]bool) (*vm.Program, error) {
	return compileExpr(src, vars, true)
}

// compileExpr compiles an expression over the event environment; asBool
// requires a bool result (conditions) where a key expression takes any.
func compileExpr(src string, vars map[string]bool, asBool bool) (*vm.Program, error) {
	names := &nameCollector{names: map[string]bool{}}
	opts := []expr.Option{
		expr.Env(typeEnv),
		expr.AllowUndefinedVariables(),
		expr.Patch(nilSafe{}),
		expr.Patch(names),
	}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if hint := whenHint(src, err); hint != "" {
		return nil, errors.New(hint)
	}
	if err != nil {
		return nil, exprError(err)
	}
	if names.unknownCall != "" {
		return nil, fmt.Errorf("unknown function %s(); expr's functions are listed at https://expr-lang.org/docs/language-definition", names.unknownCall)
	}
	for n := range names.names {
		if _, fixed := typeEnv[n]; !fixed && !builtins[n] {
			vars[n] = true
		}
	}
	return prog, nil
}

func exprError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return fmt.Errorf("%s (column %d)", fe.Message, fe.Column+1)
	}
	return err
}

// nilSafe turns every a.b into a?.b.
type nilSafe struct{}

func (nilSafe) Visit(n *ast.Node) {
	if m, ok := (*n).(*ast.MemberNode); ok && !m.Optional {
		m.Optional = true
		ast.Patch(n, &ast.ChainNode{Node: m})
	}
}

type nameCollector struct {
	names       map[string]bool
	unknownCall string
}

func (c *nameCollector) Visit(n *ast.Node) {
	switch v := (*n).(type) {
	case *ast.IdentifierNode:
		c.names[v.Value] = true
	case *ast.CallNode:
		if id, ok := v.Callee.(*ast.IdentifierNode); ok && !builtins[id.Value] && c.unknownCall == "" {
			if _, fixed := typeEnv[id.Value]; !fixed {
				c.unknownCall = id.Value
			}
		}
	}
}

// Verdict is one rule's result for one event, as `route` prints it.
type Verdict struct {
	Rule    string `json:"name"`
	Verdict string `json:"verdict"` // match, no_match, error
	Reason  string `json:"reason,omitempty"`
}

// Verdicts of rules.
const (
	Match   = "match"
	NoMatch = "no_match"
	Error   = "error"
)

// RuleObserver hears about every rule that matched or failed; the daemon
// counts and logs through it. It may be nil.
type RuleObserver interface {
	RuleMatched(rule string, e *Event)
	RuleFailed(rule string, e *Event, err error)
	// Throttled says storm control (of "rule x" or "sink y") held e back.
	Throttled(owner string, e *Event)
}

// Route evaluates the rules in order against e and appends to dst the
// indexes of the sinks that should receive it, each once. When trace is not
// nil it also gets one Verdict per rule, in order.
func (t *Table) Route(e *Event, dst []int, obs RuleObserver, trace *[]Verdict) []int {
	st := t.pool.Get().(*evalState)
	defer t.pool.Put(st)
	envReady := false
	matched := false
	for i, r := range t.rules {
		ok, reason, err := r.match(e, st, &envReady, t, trace != nil)
		switch {
		case err != nil:
			if obs != nil {
				obs.RuleFailed(r.name, e, err)
			}
			if trace != nil {
				*trace = append(*trace, Verdict{Rule: r.name, Verdict: Error, Reason: err.Error()})
			}
			continue
		case !ok:
			if trace != nil {
				*trace = append(*trace, Verdict{Rule: r.name, Verdict: NoMatch, Reason: reason})
			}
			continue
		}
		matched = true
		if obs != nil {
			obs.RuleMatched(r.name, e)
		}
		throttled := trace == nil && r.throttle != nil && !r.throttle.allow(e, st, &envReady, t, time.Now())
		if throttled && obs != nil {
			obs.Throttled("rule "+r.name, e)
		}
		if trace != nil {
			v := Verdict{Rule: r.name, Verdict: Match}
			if r.stop {
				v.Reason = "stop: later rules are not evaluated"
			}
			*trace = append(*trace, v)
		}
		for _, s := range r.to {
			if !throttled && !slices.Contains(dst, s) {
				dst = append(dst, s)
			}
		}
		if r.stop {
			if trace != nil {
				for _, later := range t.rules[i+1:] {
					*trace = append(*trace, Verdict{Rule: later.name, Verdict: NoMatch,
						Reason: "not evaluated: rule " + r.name + " matched with stop: true"})
				}
			}
			break
		}
	}
	if !matched {
		dst = append(dst, t.unmatched...)
	}
	if t.sinkThrottles != nil && trace == nil {
		now := time.Now()
		kept := dst[:0]
		for _, s := range dst {
			if th := t.sinkThrottles[s]; th != nil && !th.allow(e, st, &envReady, t, now) {
				if obs != nil {
					obs.Throttled("sink "+t.sinks[s], e)
				}
				continue
			}
			kept = append(kept, s)
		}
		dst = kept
	}
	return dst
}

// ThrottleSinks adds sink-level storm control; throttles maps sink names to
// their settings. Call it once, before the table is used.
func (t *Table) ThrottleSinks(throttles map[string]*config.Throttle) config.Problems {
	var ps config.Problems
	vars := map[string]bool{}
	for _, v := range t.vars {
		vars[v] = true
	}
	for i, name := range t.sinks {
		c := throttles[name]
		if c == nil {
			continue
		}
		if t.sinkThrottles == nil {
			t.sinkThrottles = make([]*Throttle, len(t.sinks))
		}
		var tps config.Problems
		t.sinkThrottles[i], tps = compileThrottle(c, "sink "+name, "sinks."+name+".throttle", vars)
		ps = append(ps, tps...)
	}
	t.vars = t.vars[:0]
	for v := range vars {
		t.vars = append(t.vars, v)
	}
	slices.Sort(t.vars)
	return ps
}

// match evaluates one rule. reason is filled only when explain is set.
func (r *rule) match(e *Event, st *evalState, envReady *bool, t *Table, explain bool) (bool, string, error) {
	if len(r.sources) > 0 && !slices.Contains(r.sources, e.Source) {
		if !explain {
			return false, "", nil // boxing the reason's arguments would cost an allocation per rule
		}
		return false, fmt.Sprintf("source %q is not one of %q", e.Source, r.sources), nil
	}
	if len(r.events) > 0 && !matchAny(r.events, e.Event) {
		if !explain {
			return false, "", nil
		}
		return false, fmt.Sprintf("event %q is not one of %q", e.Event, r.events), nil
	}
	if !r.filters.Match(e) {
		if explain {
			return false, r.filters.explain(e), nil
		}
		return false, "", nil
	}
	if r.when == nil {
		return true, "", nil
	}
	if !*envReady {
		t.fillEnv(st.env, e)
		*envReady = true
	}
	out, err := st.vm.Run(r.when, st.env)
	if err != nil {
		return false, "", fmt.Errorf("when: %w", exprError(err))
	}
	b, ok := out.(bool)
	if !ok {
		// AsBool rejects non-bool types it can see; an interface{} result
		// (e.g. a bare payload field) is only known now.
		return false, "", fmt.Errorf("when: result is %T, not a bool; compare it, e.g. `%s == \"...\"`", out, r.whenSrc)
	}
	if !b {
		if !explain {
			return false, "", nil
		}
		return false, "when is false: " + r.whenSrc, nil
	}
	return true, "", nil
}

func (t *Table) fillEnv(env map[string]any, e *Event) {
	clear(env)
	tm := e.Time
	if tm.IsZero() {
		tm = e.ReceivedAt
	}
	env["id"] = e.ID
	env["source"] = e.Source
	env["event"] = e.Event
	env["status"] = e.Status
	env["time"] = tm
	env["received_at"] = e.ReceivedAt
	if e.Payload != nil {
		env["payload"] = e.Payload
	} else {
		env["payload"] = map[string]any{}
	}
	if e.Headers != nil {
		env["headers"] = e.Headers
	} else {
		env["headers"] = map[string]string{}
	}
	for _, v := range t.vars {
		if x, ok := e.Payload[v]; ok {
			env[v] = x
		}
	}
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if Glob(p, name) {
			return true
		}
	}
	return false
}

// SinkName returns the name of sink index i.
func (t *Table) SinkName(i int) string { return t.sinks[i] }

// SinkNames returns the names of sink indexes, as Route returns them.
func (t *Table) SinkNames(idx []int) []string {
	names := make([]string, len(idx))
	for i, s := range idx {
		names[i] = t.sinks[s]
	}
	return names
}

// Sinks returns the sink names in index order.
func (t *Table) Sinks() []string { return t.sinks }

func list(names []string) string {
	if len(names) == 0 {
		return "(none defined)"
	}
	return strings.Join(names, ", ")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
