package router

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser/lexer"
)

// Integer literals past int64 in `when` and `throttle` expressions. expr
// refuses them ("invalid integer literal"), yet ids past int64 are what a
// rule may well compare (payload.id == 12345678901234567891). Before an
// expression is compiled, each such literal is written as a float literal
// of the same length (0e000..., so that columns in messages stay right),
// and the bigLiterals patch puts its exact value back: a uint64 when it
// fits one, else a json.Number, both of which the number comparisons
// (compare.go) compare exactly.

// bigLiterals maps the rune offset of each widened literal to its value.
type bigLiterals map[int]any

// widenBigInts returns src with every decimal integer literal past int64
// rewritten as above, and the literals' values; src itself and nil when
// there are none (nearly always).
func widenBigInts(src string) (string, bigLiterals) {
	toks, err := lexer.Lex(file.NewSource(src))
	if err != nil {
		return src, nil // the compiler reports it
	}
	var out []rune
	var big bigLiterals
	for _, t := range toks {
		if t.Kind != lexer.Number {
			continue
		}
		digits := strings.ReplaceAll(t.Value, "_", "")
		if !isDigits(digits) {
			continue // hex, octal, binary or a float: expr's own syntax
		}
		if _, err := strconv.ParseInt(digits, 10, 64); err == nil {
			continue
		}
		var v any = json.Number(strings.TrimLeft(digits, "0"))
		if u, err := strconv.ParseUint(digits, 10, 64); err == nil {
			v = u
		}
		if out == nil {
			out, big = []rune(src), bigLiterals{}
		}
		n := t.To - t.From
		copy(out[t.From:t.To], []rune("0e"+strings.Repeat("0", n-2)))
		big[t.From] = v
	}
	if out == nil {
		return src, nil
	}
	return string(out), big
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Visit puts each widened literal's value back, and folds a minus sign in
// front of one into the value.
func (b bigLiterals) Visit(n *ast.Node) {
	switch v := (*n).(type) {
	case *ast.FloatNode:
		if val, ok := b[v.Location().From]; ok {
			ast.Patch(n, &ast.ConstantNode{Value: val})
		}
	case *ast.UnaryNode:
		c, ok := v.Node.(*ast.ConstantNode)
		if !ok || v.Operator != "-" {
			return
		}
		if _, ok := b[c.Location().From]; ok {
			ast.Patch(n, &ast.ConstantNode{Value: negateBig(c.Value)})
		}
	}
}

// negateBig negates a widened literal's value: -9223372036854775808 is an
// int, anything further from zero a json.Number.
func negateBig(v any) any {
	switch x := v.(type) {
	case uint64:
		if x == 1<<63 {
			return math.MinInt
		}
		return json.Number("-" + strconv.FormatUint(x, 10))
	case json.Number:
		return json.Number("-" + string(x))
	}
	return v
}
