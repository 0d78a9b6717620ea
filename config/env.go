package config

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// envUse is one ${VAR} expanded from the environment: where, which and
// what it became.
type envUse struct {
	path, name, value string
}

// expandEnv replaces ${VAR} and ${VAR:-default} in every string of the raw
// document, in place, and records in uses each value taken from the
// environment. `$${` stands for a literal `${`. lookup is os.LookupEnv
// outside tests.
func expandEnv(node any, path string, lookup func(string) (string, bool), ps *Problems, uses *[]envUse) any {
	switch v := node.(type) {
	case map[string]any:
		for k, child := range v {
			v[k] = expandEnv(child, Join(path, k), lookup, ps, uses)
		}
	case []any:
		for i, child := range v {
			v[i] = expandEnv(child, fmt.Sprintf("%s[%d]", path, i), lookup, ps, uses)
		}
	case string:
		recorded := func(name, value string) {
			*uses = append(*uses, envUse{path, name, value})
		}
		out, err := expandString(v, lookup, recorded)
		if err != nil {
			ps.Add(path, "%v", err)
			return v
		}
		return out
	}
	return node
}

// expandString expands s; used, when not nil, hears of every value taken
// from the environment.
func expandString(s string, lookup func(string) (string, bool), used func(name, value string)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' { // $${ is a literal ${
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q; close it with } (write $${ for a literal ${)", s)
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s} is not a valid variable reference; use ${NAME} or ${NAME:-default}", expr)
		}
		val, ok := lookup(name)
		switch {
		case ok && (val != "" || !hasDef):
			b.WriteString(val)
			if used != nil && val != "" {
				used(name, val)
			}
		case hasDef:
			b.WriteString(def)
		default:
			return "", fmt.Errorf("environment variable %s is not set; export it or give a default with ${%s:-value}", name, name)
		}
		s = s[i+end+1:]
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}

var osLookup = os.LookupEnv

// nameEnv rewrites problems so that no value taken from the environment
// is printed: a ${SECRET} put in the wrong field (a duration, a URL) must
// not be echoed by `check`, a reload's answer or the log. A quoted value
// becomes `the value of ${NAME}`; a bare one becomes `${NAME}` in problems
// at or around the setting it was expanded into, and anywhere once it is
// long enough not to be an ordinary word.
func nameEnv(ps Problems, uses []envUse) Problems {
	if len(uses) == 0 || len(ps) == 0 {
		return ps
	}
	// Longest values first, so that a value inside another is not
	// replaced inside it.
	sorted := slices.Clone(uses)
	slices.SortStableFunc(sorted, func(a, b envUse) int { return len(b.value) - len(a.value) })
	out := make(Problems, len(ps))
	for i, p := range ps {
		for _, u := range sorted {
			named := "the value of ${" + u.name + "}"
			p.Msg = strings.ReplaceAll(p.Msg, strconv.Quote(u.value), named)
			p.Msg = strings.ReplaceAll(p.Msg, "'"+u.value+"'", named)
			rel := related(plainPath(p.Path), u.path)
			if len(u.value) >= minBareEnvValue || rel {
				p.Msg = strings.ReplaceAll(p.Msg, u.value, "${"+u.name+"}")
			}
			if rel {
				p.Msg = nameFragments(p.Msg, u)
			}
		}
		out[i] = p
	}
	return out
}

// minBareEnvValue is the shortest environment value replaced wherever it
// appears in a problem; a shorter one ("info", "8080") is replaced only
// in problems about the setting it went into.
const minBareEnvValue = 8

// quoted matches what problems quote: "text" (with Go escapes) or 'text'.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'`)

// nameFragments names the environment variable in place of each quoted
// part of its value in msg: a parser quotes the token it stopped at
// (expr's `bad number syntax: "9f"`, `Identifier("secret")`), which is a
// piece of the value when the whole value was put into an expression.
func nameFragments(msg string, u envUse) string {
	return quoted.ReplaceAllStringFunc(msg, func(q string) string {
		text := q[1 : len(q)-1]
		if q[0] == '"' {
			if s, err := strconv.Unquote(q); err == nil {
				text = s
			}
		}
		if len(text) >= 2 && strings.Contains(u.value, text) {
			return "part of ${" + u.name + "}"
		}
		return q
	})
}

// plainPath is a problem's path without the names it shows beside list
// indexes: "rules[0] (calls).when" is the setting rules[0].when.
func plainPath(p string) string {
	for {
		i := strings.Index(p, " (")
		if i < 0 {
			return p
		}
		j := strings.IndexByte(p[i:], ')')
		if j < 0 {
			return p
		}
		p = p[:i] + p[i+j+1:]
	}
}

// related reports whether one path is the other or inside it.
func related(a, b string) bool {
	inside := func(child, parent string) bool {
		return parent == "" || child == parent ||
			strings.HasPrefix(child, parent) && (child[len(parent)] == '.' || child[len(parent)] == '[')
	}
	return inside(a, b) || inside(b, a)
}
