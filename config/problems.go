package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a configuration, located by its path in the
// YAML document: `sinks.crm.url`, `rules[2] (failed-calls).when`.
type Problem struct {
	Path string
	Msg  string
}

func (p Problem) Error() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// Problems is every problem found in one configuration. Validation never
// stops at the first one: an operator fixes them all in one edit.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Add records a problem at path; args format msg.
func (ps *Problems) Add(path, msg string, args ...any) {
	if len(args) > 0 {
		msg = fmt.Sprintf(msg, args...)
	}
	*ps = append(*ps, Problem{Path: path, Msg: msg})
}

// Merge appends err's problems under prefix. A plain error becomes one
// problem at prefix; Problems keep their own paths, joined to prefix.
func (ps *Problems) Merge(prefix string, err error) {
	if err == nil {
		return
	}
	var list Problems
	var one Problem
	switch {
	case errors.As(err, &list):
		for _, p := range list {
			*ps = append(*ps, Problem{Path: Join(prefix, p.Path), Msg: p.Msg})
		}
	case errors.As(err, &one):
		*ps = append(*ps, Problem{Path: Join(prefix, one.Path), Msg: one.Msg})
	default:
		*ps = append(*ps, Problem{Path: prefix, Msg: err.Error()})
	}
}

// Err returns nil when there are no problems, so callers can `return ps.Err()`.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// Sort orders problems by path so that output is stable across runs
// (maps are decoded in random order).
func (ps Problems) Sort() {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Path < ps[j].Path })
}

// Join builds a dotted path, leaving out empty parts and not doubling dots
// before an index ("rules" + "[2]" = "rules[2]").
func Join(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case path[0] == '[':
		return prefix + path
	}
	return prefix + "." + path
}
