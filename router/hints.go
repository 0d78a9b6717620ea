package router

import (
	"fmt"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// whenHint explains the mistakes newcomers make in expressions, which expr
// reports in its own terms or not at all: a payload field named like a
// builtin function (`duration < 5` compares the duration() function with
// 5), and `=` for `==`. err is the compile error, nil when it compiled. It
// returns "" when it has nothing to add.
func whenHint(src string, err error) string {
	if name, col, ok := shadowedBuiltin(src); ok {
		return fmt.Sprintf("%q is expr's %s() function here, not a payload field; reach the field as payload.%s (column %d)", name, name, name, col)
	}
	if err != nil && strings.Contains(err.Error(), `Operator("=")`) {
		return exprError(err).Error() + "; did you mean ==?"
	}
	return ""
}

// shadowedBuiltin finds the first builtin named without being called:
// always a payload field the author meant, since a bare function is of
// no use in a condition.
func shadowedBuiltin(src string) (name string, column int, found bool) {
	tree, err := parser.Parse(src)
	if err != nil {
		return "", 0, false
	}
	v := &builtinRefs{called: map[*ast.IdentifierNode]bool{}}
	ast.Walk(&tree.Node, v)
	for _, id := range v.refs {
		if !v.called[id] {
			return id.Value, id.Location().From + 1, true
		}
	}
	return "", 0, false
}

// builtinRefs collects identifiers that name builtins, and which of them
// are called.
type builtinRefs struct {
	refs   []*ast.IdentifierNode
	called map[*ast.IdentifierNode]bool
}

func (v *builtinRefs) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		if builtins[x.Value] {
			v.refs = append(v.refs, x)
		}
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok {
			v.called[id] = true
		}
	}
}
