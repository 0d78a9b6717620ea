package config

import (
	"fmt"
	"os"
	"strings"
)

// expandEnv replaces ${VAR} and ${VAR:-default} in every string of the raw
// document, in place. `$${` stands for a literal `${`. lookup is os.LookupEnv
// outside tests.
func expandEnv(node any, path string, lookup func(string) (string, bool), ps *Problems) any {
	switch v := node.(type) {
	case map[string]any:
		for k, child := range v {
			v[k] = expandEnv(child, Join(path, k), lookup, ps)
		}
	case []any:
		for i, child := range v {
			v[i] = expandEnv(child, fmt.Sprintf("%s[%d]", path, i), lookup, ps)
		}
	case string:
		out, err := expandString(v, lookup)
		if err != nil {
			ps.Add(path, "%v", err)
			return v
		}
		return out
	}
	return node
}

func expandString(s string, lookup func(string) (string, bool)) (string, error) {
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
