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
	index         *ruleIndex
	pool          sync.Pool // *evalState
}

type rule struct {
	name     string
	sources  []string
	events   Patterns
	filters  Filters
	when     *vm.Program
	whenSrc  string
	to       []int
	stop     bool
	throttle *Throttle
	// filterKeys are the index's keys of filters.groups, in order.
	filterKeys []int
	// conds are the conjuncts at the head of when that the index decides
	// without the VM; whole is set when they are all of it.
	conds []cond
	whole bool
}

// evalState is the per-goroutine scratch space of evaluation: one VM, one
// environment map and the index's per-event values, reused so that
// evaluating costs no allocation per rule.
type evalState struct {
	vm  vm.VM
	env map[string]any
	// vals caches the index's key values for the event of generation gen.
	vals  []keyVal
	gen   uint32
	lists [][]int32
	cand  []int32
}

func (st *evalState) next() {
	st.gen++
	if st.gen == 0 { // wrapped: old entries could pass for current ones
		clear(st.vals)
		st.gen = 1
	}
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
var typeEnv = func() map[string]any {
	m := map[string]any{
		"id": "", "source": "", "event": "", "status": "",
		"time": time.Time{}, "received_at": time.Time{},
		"payload": map[string]any{}, "headers": map[string]string{},
	}
	for name, fn := range numberFuncs {
		m[name] = fn
	}
	return m
}()

// Compile checks and compiles rules. sinks are the configured sink names;
// sources maps each configured source name to the events it pins (nil when
// it takes any).
func Compile(rules []config.Rule, unmatched []string, sinks []string, sources map[string][]string) (*Table, config.Problems) {
	var ps config.Problems
	t := &Table{sinks: slices.Clone(sinks), index: &ruleIndex{}}
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
		r := &rule{name: rc.Name, sources: rc.Sources, events: CompilePatterns(events), stop: rc.Stop, whenSrc: rc.When}
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
		for _, g := range r.filters.groups {
			r.filterKeys = append(r.filterKeys, t.index.keyID(key{filter: true, name: g.key}))
		}
		if strings.TrimSpace(rc.When) != "" {
			prog, err := compileWhen(rc.When, vars)
			if err != nil {
				ps.Add(at+".when", "%v", err)
			} else {
				widened, _ := widenBigInts(rc.When)
				r.conds, r.whole = t.index.whenConds(widened)
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
	t.index.build(t.rules)
	nkeys := len(t.index.keys)
	t.pool.New = func() any {
		env := make(map[string]any, len(fixedVars)+len(t.vars)+len(numberFuncs))
		for name, fn := range numberFuncs {
			env[name] = fn
		}
		return &evalState{env: env, vals: make([]keyVal, nkeys)}
	}
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
	src, big := widenBigInts(src)
	if big != nil {
		opts = append(opts, expr.Patch(big))
	}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	// Type errors are found without the numberCompare patch: once an
	// operand is inside a patched call, expr no longer reports them.
	_, err := expr.Compile(src, opts...)
	if hint := whenHint(src, err); hint != "" {
		return nil, errors.New(hint)
	}
	if err != nil {
		return nil, exprError(err)
	}
	prog, err := expr.Compile(src, append(opts, expr.Patch(numberCompare{}))...)
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
//
// Without a trace only the index's candidates are evaluated; with one,
// every rule is, so that each gets its verdict and reason. Both reach the
// same result (see TestIndexedRoutingEqualsLinear).
func (t *Table) Route(e *Event, dst []int, obs RuleObserver, trace *[]Verdict) []int {
	st := t.pool.Get().(*evalState)
	defer t.pool.Put(st)
	st.next()
	envReady := false
	matched := false
	var order []int32
	n := len(t.rules)
	if trace == nil {
		order = t.index.candidates(e, st)
		n = len(order)
	}
	for k := range n {
		i := k
		if trace == nil {
			i = int(order[k])
		}
		r := t.rules[i]
		var ok bool
		var reason string
		var err error
		if trace == nil {
			ok, err = r.decide(e, st, &envReady, t)
		} else {
			ok, reason, err = r.explain(e, st, &envReady, t)
		}
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
		dst = t.fire(r, e, dst, st, &envReady, obs, trace)
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
		dst = t.throttleSinks(e, dst, st, &envReady, obs)
	}
	return dst
}

// fire records that r matched e and adds its sinks to dst, unless its
// storm control holds e back.
func (t *Table) fire(r *rule, e *Event, dst []int, st *evalState, envReady *bool, obs RuleObserver, trace *[]Verdict) []int {
	if obs != nil {
		obs.RuleMatched(r.name, e)
	}
	throttled := trace == nil && r.throttle != nil && !r.throttle.allow(e, st, envReady, t, time.Now())
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
	if throttled {
		return dst
	}
	for _, s := range r.to {
		if !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return dst
}

func (t *Table) throttleSinks(e *Event, dst []int, st *evalState, envReady *bool, obs RuleObserver) []int {
	now := time.Now()
	kept := dst[:0]
	for _, s := range dst {
		if th := t.sinkThrottles[s]; th != nil && !th.allow(e, st, envReady, t, now) {
			if obs != nil {
				obs.Throttled("sink "+t.sinks[s], e)
			}
			continue
		}
		kept = append(kept, s)
	}
	return kept
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

// explain evaluates one rule the reference way, every condition in turn,
// and says why it does not match; decide reaches the same verdicts faster.
func (r *rule) explain(e *Event, st *evalState, envReady *bool, t *Table) (bool, string, error) {
	if len(r.sources) > 0 && !slices.Contains(r.sources, e.Source) {
		return false, fmt.Sprintf("source %q is not one of %q", e.Source, r.sources), nil
	}
	if len(r.events) > 0 && !r.events.Match(e.Event) {
		return false, fmt.Sprintf("event %q is not one of %q", e.Event, r.events.Strings()), nil
	}
	if !r.filters.Match(e) {
		return false, r.filters.explain(e), nil
	}
	ok, err := r.run(e, st, envReady, t)
	if err != nil || ok {
		return ok, "", err
	}
	return false, "when is false: " + r.whenSrc, nil
}

// decide is explain without reasons, with the filters and the leading
// conjuncts of when decided from the event's key values, computed once per
// event however many rules compare them.
func (r *rule) decide(e *Event, st *evalState, envReady *bool, t *Table) (bool, error) {
	if len(r.sources) > 0 && !slices.Contains(r.sources, e.Source) {
		return false, nil
	}
	if len(r.events) > 0 && !r.events.Match(e.Event) {
		return false, nil
	}
	for i, k := range r.filterKeys {
		v := st.value(t.index, k, e)
		if v.state != valStr || !slices.Contains(r.filters.groups[i].values, v.s) {
			return false, nil
		}
	}
	for i := range r.conds {
		switch r.conds[i].eval(st.value(t.index, r.conds[i].key, e)) {
		case condFalse:
			return false, nil
		case condUnknown:
			return r.run(e, st, envReady, t)
		}
	}
	if r.whole {
		return true, nil
	}
	return r.run(e, st, envReady, t)
}

// run evaluates when on the VM; a rule without one matches.
func (r *rule) run(e *Event, st *evalState, envReady *bool, t *Table) (bool, error) {
	if r.when == nil {
		return true, nil
	}
	if !*envReady {
		t.fillEnv(st.env, e)
		*envReady = true
	}
	out, err := st.vm.Run(r.when, st.env)
	if err != nil {
		return false, fmt.Errorf("when: %w", exprError(err))
	}
	b, ok := out.(bool)
	if !ok {
		// AsBool rejects non-bool types it can see; an interface{} result
		// (e.g. a bare payload field) is only known now.
		return false, fmt.Errorf("when: result is %T, not a bool; compare it, e.g. `%s == \"...\"`", out, r.whenSrc)
	}
	return b, nil
}

func (t *Table) fillEnv(env map[string]any, e *Event) {
	// The fixed names are all set below and the comparison functions
	// stay; only the payload fields of the previous event must go.
	for _, v := range t.vars {
		delete(env, v)
	}
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
	payload := e.Fields()
	env["payload"] = payload
	if e.Headers != nil {
		env["headers"] = e.Headers
	} else {
		env["headers"] = map[string]string{}
	}
	for _, v := range t.vars {
		if x, ok := payload[v]; ok {
			env[v] = x
		}
	}
}

// SinkName returns the name of sink index i.
func (t *Table) SinkName(i int) string { return t.sinks[i] }

// SinkNames returns the names of sink indexes, as Route returns them. The
// list is read-only: for one sink, nearly every event, it is part of the
// table's own.
func (t *Table) SinkNames(idx []int) []string {
	if len(idx) == 1 {
		i := idx[0]
		return t.sinks[i : i+1 : i+1]
	}
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
