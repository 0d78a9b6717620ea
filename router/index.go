package router

import (
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// The rule index lets an event evaluate only the rules it could match.
//
// Each rule is filed under one condition that must hold for it to match:
// its sources, its event names (exact, or the text before a glob's first
// *), one of its filters, or one equality or `in` conjunct at the head of
// its `when` (`status == "failed" && payload.a.b == "x"`). Of those, the
// rule is filed under the one shared by the fewest rules. An event looks up
// the value of each indexed key once, collects the rules filed under that
// value, and evaluates them in table order; every other rule cannot match.
//
// The conjuncts are also checked without the expression VM: a `when` made
// only of such conjuncts is decided from the event's key values, which
// costs no allocation however many rules are evaluated.
//
// Exactness: a conjunct is decided only where expr would decide it the
// same way without an error. expr's `==` with a string literal is true for
// an equal Go string and false for anything else (nil, numbers, objects);
// `in` a list of strings is false for nil, errors for any other non-string;
// and a member access through a value that is neither an object nor nil
// errors. Where the event's value leaves that open (valOther for `in`,
// valBroken for a path), the rule is evaluated by the VM as before, so a
// rule that errors today still errors, in the same order.

// A key is a value of the event that rules compare: a normalized field, a
// path into the payload, or a filter's key.
type key struct {
	filter bool     // compared as a filter compares (String of the value, if present)
	field  string   // id, source, event, status; "" for a payload path
	path   []string // payload path, for expr keys
	name   string   // a filter's key, or the dotted expr path
}

// Value states of a key on one event.
const (
	valNone   uint8 = iota // absent or nil (expr), absent (filter)
	valStr                 // a Go string, in s
	valOther               // present, not a string (expr keys only)
	valBroken              // a path went through a non-object: expr errors there
)

type keyVal struct {
	gen   uint32
	state uint8
	s     string
}

// cond is one conjunct of a `when`: key == value, or key in values.
type cond struct {
	key    int
	in     bool
	values []string
}

// Outcomes of deciding a cond without the VM.
const (
	condFalse = iota
	condTrue
	condUnknown // the VM must decide (it may raise an error)
)

func (c *cond) eval(v keyVal) int {
	switch {
	case v.state == valStr:
		if slices.Contains(c.values, v.s) {
			return condTrue
		}
		return condFalse
	case v.state == valNone, v.state == valOther && !c.in:
		return condFalse
	}
	return condUnknown
}

// keyBuckets are the rules filed under one key, by value, and the rules
// that must be evaluated whatever the value when expr could fail on it.
type keyBuckets struct {
	key      int
	byValue  map[string][]int32
	onOther  []int32 // evaluate when the value is valOther or valBroken
	onBroken []int32 // evaluate when the value is valBroken
}

type ruleIndex struct {
	keys       []key
	keyIDs     map[string]int // registry: identity -> index in keys
	buckets    []keyBuckets
	prefixes   map[string][]int32 // event-name glob prefix -> rules
	prefixLens []int              // distinct prefix lengths, ascending
	always     []int32            // rules filed under nothing
}

// keyID returns the id of k in the registry, adding it if new.
func (x *ruleIndex) keyID(k key) int {
	// Path segments may hold dots (payload["a.b"]) or anything else: each
	// goes in with its length.
	ident := "filter:" + k.name
	if !k.filter {
		ident = "expr:" + k.field
		for _, seg := range k.path {
			ident += ":" + strconv.Itoa(len(seg)) + ":" + seg
		}
	}
	if id, ok := x.keyIDs[ident]; ok {
		return id
	}
	if x.keyIDs == nil {
		x.keyIDs = map[string]int{}
	}
	x.keys = append(x.keys, k)
	x.keyIDs[ident] = len(x.keys) - 1
	return len(x.keys) - 1
}

func (x *ruleIndex) fieldKey(field string) int {
	return x.keyID(key{field: field, name: field})
}

// value returns key k's value on e, computed once per event (st.gen).
func (st *evalState) value(x *ruleIndex, k int, e *Event) keyVal {
	v := &st.vals[k]
	if v.gen == st.gen {
		return *v
	}
	*v = lookupKey(&x.keys[k], e)
	v.gen = st.gen
	return *v
}

func lookupKey(k *key, e *Event) keyVal {
	if k.filter {
		// Exactly what Filters.Match compares.
		v, ok := e.Lookup(k.name)
		if !ok {
			return keyVal{state: valNone}
		}
		return keyVal{state: valStr, s: String(v)}
	}
	switch k.field {
	case "id":
		return keyVal{state: valStr, s: e.ID}
	case "source":
		return keyVal{state: valStr, s: e.Source}
	case "event":
		return keyVal{state: valStr, s: e.Event}
	case "status":
		return keyVal{state: valStr, s: e.Status}
	}
	// As the environment shows it: payload is the event's payload (an empty
	// object when it has none), member access is nil-safe.
	if e.undecoded() {
		return rawKeyVal(e.RawPayload, k.path)
	}
	var cur any = e.Fields()
	for _, seg := range k.path {
		switch m := cur.(type) {
		case map[string]any:
			cur = m[seg]
		case nil:
			return keyVal{state: valNone}
		default:
			return keyVal{state: valBroken}
		}
	}
	switch v := cur.(type) {
	case string:
		return keyVal{state: valStr, s: v}
	case nil:
		return keyVal{state: valNone}
	}
	return keyVal{state: valOther}
}

// whenConds returns the conjuncts at the head of a `when`'s top-level &&
// chain that the index understands, in evaluation order, and whether they
// are the whole expression. The rest of the chain is left to the VM.
func (x *ruleIndex) whenConds(src string) (conds []cond, whole bool) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, false
	}
	var chain []ast.Node
	flattenAnd(tree.Node, &chain)
	for _, n := range chain {
		c, ok := x.condOf(n)
		if !ok {
			return conds, false
		}
		conds = append(conds, c)
	}
	return conds, true
}

func flattenAnd(n ast.Node, out *[]ast.Node) {
	if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == "&&" || b.Operator == "and") {
		flattenAnd(b.Left, out)
		flattenAnd(b.Right, out)
		return
	}
	*out = append(*out, n)
}

// condOf reads `key == "literal"`, `"literal" == key` or
// `key in ["literal", ...]`.
func (x *ruleIndex) condOf(n ast.Node) (cond, bool) {
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		return cond{}, false
	}
	switch b.Operator {
	case "==":
		k, lit := b.Left, b.Right
		if _, ok := k.(*ast.StringNode); ok {
			k, lit = lit, k
		}
		s, ok := lit.(*ast.StringNode)
		if !ok {
			return cond{}, false
		}
		id, ok := x.exprKey(k)
		return cond{key: id, values: []string{s.Value}}, ok
	case "in":
		arr, ok := b.Right.(*ast.ArrayNode)
		if !ok || len(arr.Nodes) == 0 {
			return cond{}, false
		}
		var values []string
		for _, e := range arr.Nodes {
			s, ok := e.(*ast.StringNode)
			if !ok {
				return cond{}, false
			}
			if !slices.Contains(values, s.Value) {
				values = append(values, s.Value)
			}
		}
		id, ok := x.exprKey(b.Left)
		return cond{key: id, in: true, values: values}, ok
	}
	return cond{}, false
}

// exprKey reads a key from an expression: a normalized string field, a
// payload field named at top level (`channel`), or a chain of named members
// from payload or from such a field (`payload.a["b"]`, `recipient.from`).
func (x *ruleIndex) exprKey(n ast.Node) (int, bool) {
	var path []string
	for {
		if c, ok := n.(*ast.ChainNode); ok {
			n = c.Node
			continue
		}
		m, ok := n.(*ast.MemberNode)
		if !ok {
			break
		}
		p, ok := m.Property.(*ast.StringNode)
		if !ok || m.Method {
			return 0, false
		}
		path = append(path, p.Value)
		n = m.Node
	}
	id, ok := n.(*ast.IdentifierNode)
	if !ok {
		return 0, false
	}
	slices.Reverse(path)
	switch name := id.Value; {
	case name == "payload":
		if len(path) == 0 {
			return 0, false
		}
	case name == "id" || name == "source" || name == "event" || name == "status":
		if len(path) > 0 {
			return 0, false
		}
		return x.fieldKey(name), true
	case isFixed(name) || builtins[name] || strings.HasPrefix(name, "$"):
		return 0, false
	default:
		path = append([]string{name}, path...)
	}
	return x.keyID(key{path: path, name: "payload." + strings.Join(path, ".")}), true
}

// globPrefix returns the text every name matching pattern starts with, and
// whether the pattern is that text exactly. Glob's one wildcard is *.
func globPrefix(pattern string) (prefix string, exact bool) {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern, true
	}
	return pattern[:star], false
}

func isFixed(name string) bool {
	_, ok := typeEnv[name]
	return ok
}

// option is one condition a rule could be filed under.
type option struct {
	key      int      // -1 for event-name prefixes only
	values   []string // values of key under which the rule is filed
	prefixes []string // event-name glob prefixes
	cond     int      // for a `when` conjunct, its position in rule.conds; else -1
}

// options lists the conditions rule r could be filed under, cheapest
// first when costs tie: the `when` conjuncts, filters, events, sources.
func (x *ruleIndex) options(r *rule) []option {
	var out []option
	for i, c := range r.conds {
		out = append(out, option{key: c.key, values: c.values, cond: i})
	}
	for i, g := range r.filters.groups {
		out = append(out, option{key: r.filterKeys[i], values: g.values, cond: -1})
	}
	if len(r.events) > 0 {
		o := option{key: x.fieldKey("event"), cond: -1}
		for _, pat := range r.events {
			p := pat.String()
			prefix, exact := globPrefix(p)
			switch {
			case exact:
				o.values = append(o.values, p)
			case prefix == "":
				o.key = -2 // matches names with nothing in common
			default:
				o.prefixes = append(o.prefixes, prefix)
			}
		}
		if o.key != -2 {
			if len(o.values) == 0 {
				o.key = -1
			}
			out = append(out, o)
		}
	}
	if len(r.sources) > 0 {
		out = append(out, option{key: x.fieldKey("source"), values: r.sources, cond: -1})
	}
	return out
}

type bucketKey struct {
	key   int // -1: event-name prefix
	value string
}

// build files every rule under its most selective option: the one whose
// values the fewest rules share.
func (x *ruleIndex) build(rules []*rule) {
	opts := make([][]option, len(rules))
	count := map[bucketKey]int{}
	for i, r := range rules {
		opts[i] = x.options(r)
		for _, o := range opts[i] {
			for _, v := range o.values {
				count[bucketKey{o.key, v}]++
			}
			for _, p := range o.prefixes {
				count[bucketKey{-1, p}]++
			}
		}
	}
	byKey := map[int]int{} // key -> index in x.buckets
	kb := func(k int) *keyBuckets {
		i, ok := byKey[k]
		if !ok {
			i = len(x.buckets)
			byKey[k] = i
			x.buckets = append(x.buckets, keyBuckets{key: k, byValue: map[string][]int32{}})
		}
		return &x.buckets[i]
	}
	x.prefixes = map[string][]int32{}
	for i, r := range rules {
		best, bestCost := -1, 0
		for j, o := range opts[i] {
			cost := 0
			for _, v := range o.values {
				cost += count[bucketKey{o.key, v}]
			}
			for _, p := range o.prefixes {
				cost += count[bucketKey{-1, p}]
			}
			if best < 0 || cost < bestCost {
				best, bestCost = j, cost
			}
		}
		ri := int32(i)
		if best < 0 {
			x.always = append(x.always, ri)
			continue
		}
		o := opts[i][best]
		if o.key >= 0 {
			b := kb(o.key)
			for _, v := range o.values {
				b.byValue[v] = appendOnce(b.byValue[v], ri)
			}
		}
		for _, p := range o.prefixes {
			x.prefixes[p] = appendOnce(x.prefixes[p], ri)
			if !slices.Contains(x.prefixLens, len(p)) {
				x.prefixLens = append(x.prefixLens, len(p))
			}
		}
		// Conjuncts before the chosen one run first and may fail on this
		// event's value: then the rule must be evaluated to report it.
		for j := 0; j <= o.cond; j++ {
			c := r.conds[j]
			k := &x.keys[c.key]
			switch {
			case k.field != "":
			case c.in:
				b := kb(c.key)
				b.onOther = appendOnce(b.onOther, ri)
			case len(k.path) > 1:
				b := kb(c.key)
				b.onBroken = appendOnce(b.onBroken, ri)
			}
		}
	}
	slices.Sort(x.prefixLens)
}

func appendOnce(l []int32, r int32) []int32 {
	if n := len(l); n > 0 && l[n-1] == r {
		return l
	}
	return append(l, r)
}

// candidates returns, in table order, the rules e could match: every other
// rule fails one of its conditions without an error. The result lives in
// st's scratch space until the next call.
func (x *ruleIndex) candidates(e *Event, st *evalState) []int32 {
	lists := st.lists[:0]
	for i := range x.buckets {
		b := &x.buckets[i]
		v := st.value(x, b.key, e)
		switch v.state {
		case valStr:
			lists = appendList(lists, b.byValue[v.s])
		case valBroken:
			lists = appendList(lists, b.onBroken)
			lists = appendList(lists, b.onOther)
		case valOther:
			lists = appendList(lists, b.onOther)
		}
	}
	for _, n := range x.prefixLens {
		if n > len(e.Event) {
			break
		}
		lists = appendList(lists, x.prefixes[e.Event[:n]])
	}
	lists = appendList(lists, x.always)
	st.lists = lists
	switch len(lists) {
	case 0:
		return nil
	case 1:
		return lists[0]
	}
	st.cand = mergeSorted(st.cand[:0], lists)
	return st.cand
}

func appendList(lists [][]int32, l []int32) [][]int32 {
	if len(l) == 0 {
		return lists
	}
	return append(lists, l)
}

// mergeSorted appends to dst the union of ascending lists, ascending and
// without repeats.
func mergeSorted(dst []int32, lists [][]int32) []int32 {
	for {
		least := int32(-1)
		for _, l := range lists {
			if len(l) > 0 && (least < 0 || l[0] < least) {
				least = l[0]
			}
		}
		if least < 0 {
			return dst
		}
		dst = append(dst, least)
		for i, l := range lists {
			if len(l) > 0 && l[0] == least {
				lists[i] = l[1:]
			}
		}
	}
}
