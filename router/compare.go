package router

import (
	"cmp"
	"encoding/json"
	"math"
	"reflect"
	"strconv"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// expr compares a uint64 with an int by converting both to int, so that a
// payload id of 18446744073709551615 is less than 5, and refuses to order
// a json.Number at all. Comparisons whose operand types are only known at
// run time (payload fields) are therefore compiled into calls of the
// functions below, which compare numbers by their exact value and leave
// every other pair of values to expr's own operators:
//
//   - int, uint64 and float64 compare by value (uint64 against int exactly);
//   - a json.Number compares as the decimal number it spells, exactly,
//     against any number: a float64 as the shortest decimal that reads back
//     as it (0.1 is 0.1), an int or uint64 as its digits;
//   - anything else (strings, booleans, nil, ...) as expr compares it.
//
// The functions live in the expression environment under names a rule
// cannot spell by accident, and have expr's typed-call signature, so a
// call costs no allocation.
var numberOps = map[string]string{
	"==": "$eq", "!=": "$ne", "<": "$lt", ">": "$gt", "<=": "$le", ">=": "$ge", "in": "$in",
}

// numberFuncs are the functions numberOps names.
var numberFuncs = map[string]func(a, b any) bool{
	"$eq": func(a, b any) bool { return numEqual(a, b) },
	"$ne": func(a, b any) bool { return !numEqual(a, b) },
	"$lt": func(a, b any) bool {
		if c, ok := numCompare(a, b); ok {
			return c < 0
		}
		return runtime.Less(a, b)
	},
	"$gt": func(a, b any) bool {
		if c, ok := numCompare(a, b); ok {
			return c > 0
		}
		return runtime.More(a, b)
	},
	"$le": func(a, b any) bool {
		if c, ok := numCompare(a, b); ok {
			return c <= 0
		}
		return runtime.LessOrEqual(a, b)
	},
	"$ge": func(a, b any) bool {
		if c, ok := numCompare(a, b); ok {
			return c >= 0
		}
		return runtime.MoreOrEqual(a, b)
	},
	"$in": func(needle, list any) bool {
		if l, ok := list.([]any); ok {
			for _, v := range l {
				if numEqual(needle, v) {
					return true
				}
			}
			return false
		}
		return runtime.In(needle, list)
	},
}

// numberCompare is the expr patch that routes comparisons through
// numberFuncs where an operand's type is unknown at compile time and the
// other may be a number.
type numberCompare struct{}

func (numberCompare) Visit(n *ast.Node) {
	b, ok := (*n).(*ast.BinaryNode)
	if !ok {
		return
	}
	fn, ok := numberOps[b.Operator]
	if !ok {
		return
	}
	l, r := b.Left.Type(), b.Right.Type()
	if b.Operator == "in" {
		if !unknownType(l) || !(unknownType(r) || r.Kind() == reflect.Slice || r.Kind() == reflect.Array) {
			return
		}
	} else if !(unknownType(l) && mayBeNumber(r) || unknownType(r) && mayBeNumber(l)) {
		return
	}
	ast.Patch(n, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: []ast.Node{b.Left, b.Right}})
}

func unknownType(t reflect.Type) bool { return t == nil || t.Kind() == reflect.Interface }

// jsonNumber is a literal past uint64 (bigint.go), a string to expr.
var jsonNumber = reflect.TypeFor[json.Number]()

func mayBeNumber(t reflect.Type) bool {
	if unknownType(t) || t == jsonNumber {
		return true
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func numEqual(a, b any) bool {
	if c, ok := numCompare(a, b); ok {
		return c == 0
	}
	return runtime.Equal(a, b)
}

// numCompare orders two values when either is a uint64 or a json.Number
// and both are numbers; ok is false otherwise (expr then decides).
func numCompare(a, b any) (int, bool) {
	switch x := a.(type) {
	case uint64:
		switch y := b.(type) {
		case uint64:
			return cmp.Compare(x, y), true
		case int:
			if y < 0 {
				return 1, true
			}
			return cmp.Compare(x, uint64(y)), true
		case float64:
			if x <= 1<<53 { // exact as a float64
				return cmp.Compare(float64(x), y), !math.IsNaN(y)
			}
			return decimalVsFloat(strconv.FormatUint(x, 10), y)
		case json.Number:
			return compareDecimal(strconv.FormatUint(x, 10), string(y)), true
		}
	case int:
		switch y := b.(type) {
		case uint64, json.Number:
			c, ok := numCompare(y, x)
			return -c, ok
		case float64:
			if -1<<53 <= x && x <= 1<<53 { // exact as a float64: expr's own way
				return 0, false
			}
			return decimalVsFloat(strconv.Itoa(x), y)
		}
	case float64:
		switch y := b.(type) {
		case uint64, json.Number, int:
			c, ok := numCompare(y, x)
			return -c, ok
		}
	case json.Number:
		switch y := b.(type) {
		case json.Number:
			return compareDecimal(string(x), string(y)), true
		case int:
			return compareDecimal(string(x), strconv.Itoa(y)), true
		case float64:
			return decimalVsFloat(string(x), y)
		case uint64:
			c, _ := numCompare(y, x)
			return -c, true
		}
	}
	return 0, false
}

// decimalVsFloat orders a number written in decimal and a float64, the
// float as the shortest decimal that reads back as it (what a payload's
// float or a rule's literal was written as): an integer past 2^53 is not
// rounded to the nearest float64 first. ok is false for NaN.
func decimalVsFloat(d string, f float64) (int, bool) {
	switch {
	case math.IsNaN(f):
		return 0, false
	case math.IsInf(f, 1):
		return -1, true
	case math.IsInf(f, -1):
		return 1, true
	}
	return compareDecimal(d, strconv.FormatFloat(f, 'e', -1, 64)), true
}

// decimal is a number's exact value: 0.digits x 10^exp, negative when neg;
// digits has no leading or trailing zeros, and is empty for zero.
type decimal struct {
	neg    bool
	digits string
	exp    int
}

// maxExp bounds exponents: far beyond anything a body of max_body_bytes
// can spell with digits, so saturating there keeps the order exact.
const maxExp = 1 << 40

// parseDecimal reads a number in JSON or strconv syntax; it is linear in
// the length of s and never allocates more than the digits.
func parseDecimal(s string) decimal {
	var d decimal
	if s != "" && (s[0] == '-' || s[0] == '+') {
		d.neg = s[0] == '-'
		s = s[1:]
	}
	mant, exp := s, 0
	for i := 0; i < len(s); i++ {
		if s[i] == 'e' || s[i] == 'E' {
			mant, exp = s[:i], parseExp(s[i+1:])
			break
		}
	}
	intPart, frac := mant, ""
	for i := 0; i < len(mant); i++ {
		if mant[i] == '.' {
			intPart, frac = mant[:i], mant[i+1:]
			break
		}
	}
	// 0.digits x 10^exp: the point moves left by the integer digits.
	exp += len(intPart)
	all := intPart + frac
	lead := 0
	for lead < len(all) && all[lead] == '0' {
		lead++
	}
	all = all[lead:]
	exp -= lead
	trail := len(all)
	for trail > 0 && all[trail-1] == '0' {
		trail--
	}
	d.digits = all[:trail]
	d.exp = clampExp(exp)
	if d.digits == "" {
		d.neg, d.exp = false, 0
	}
	return d
}

func parseExp(s string) int {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if n < maxExp {
			n = n*10 + int(s[i]-'0')
		}
	}
	if neg {
		return -n
	}
	return n
}

func clampExp(e int) int {
	return max(-2*maxExp, min(2*maxExp, e))
}

// compareDecimal orders two numbers written in decimal, exactly.
func compareDecimal(a, b string) int {
	x, y := parseDecimal(a), parseDecimal(b)
	switch {
	case x.digits == "" && y.digits == "":
		return 0
	case x.digits == "":
		if y.neg {
			return 1
		}
		return -1
	case y.digits == "":
		if x.neg {
			return -1
		}
		return 1
	case x.neg != y.neg:
		if x.neg {
			return -1
		}
		return 1
	}
	c := compareMagnitude(x, y)
	if x.neg {
		return -c
	}
	return c
}

func compareMagnitude(x, y decimal) int {
	if x.exp != y.exp {
		return cmp.Compare(x.exp, y.exp)
	}
	// Same position of the first digit: digit strings compare like the
	// numbers (a shorter prefix is smaller, its missing digits being 0).
	switch {
	case x.digits < y.digits:
		return -1
	case x.digits > y.digits:
		return 1
	}
	return 0
}
