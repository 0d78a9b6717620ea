package router

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"switchboard/config"
)

// Filters is a compiled list of {key, value} conditions with the providers'
// documented subscription semantics: no filters pass every event; several
// values for one key are alternatives (OR); different keys must all hold
// (AND). The zero value passes everything.
type Filters struct {
	groups []filterGroup
}

type filterGroup struct {
	key    string
	values []string
}

// CompileFilters checks and compiles a filter list found at path. pinned are
// the event names the list applies to (from `events`); when they are all
// known provider events, every `status` value must be one they can have.
func CompileFilters(fs []config.Filter, path string, pinned []string) (Filters, config.Problems) {
	var ps config.Problems
	var out Filters
	index := map[string]int{}
	channelIDs := 0
	known, statuses, checkStatus := KnownStatuses(pinned)
	for i, f := range fs {
		at := fmt.Sprintf("%s[%d]", path, i)
		if f.Key == "" {
			ps.Add(at+".key", "is required: the event field to compare (status, event, or a payload field such as channelId)")
			continue
		}
		if f.Key == "channelId" {
			if channelIDs++; channelIDs == 2 {
				ps.Add(at, "a second channelId filter; a subscription takes at most one channelId, so split this into two rules or sources")
			}
		}
		if f.Key == "status" && checkStatus && !statuses[f.Value] {
			sort.Strings(known)
			if len(statuses) == 0 {
				ps.Add(at+".value", "%s carries no status, so a status filter never passes; remove it", strings.Join(known, ", "))
			} else {
				ps.Add(at+".value", "%q is not a status of %s; it can be one of: %s",
					f.Value, strings.Join(known, ", "), strings.Join(sortedKeys(statuses), ", "))
			}
		}
		g, ok := index[f.Key]
		if !ok {
			g = len(out.groups)
			index[f.Key] = g
			out.groups = append(out.groups, filterGroup{key: f.Key})
		}
		if !slices.Contains(out.groups[g].values, f.Value) {
			out.groups[g].values = append(out.groups[g].values, f.Value)
		}
	}
	return out, ps
}

// Match reports whether e passes every key.
func (f Filters) Match(e *Event) bool {
	return f.firstFailing(e) < 0
}

// firstFailing returns the index of the first group e fails, or -1.
func (f Filters) firstFailing(e *Event) int {
	for i := range f.groups {
		g := &f.groups[i]
		v, ok := e.Lookup(g.key)
		if !ok {
			return i
		}
		s := String(v)
		if !slices.Contains(g.values, s) {
			return i
		}
	}
	return -1
}

// explain says why e fails the filters, for `route`.
func (f Filters) explain(e *Event) string {
	i := f.firstFailing(e)
	if i < 0 {
		return ""
	}
	g := f.groups[i]
	v, ok := e.Lookup(g.key)
	if !ok {
		return fmt.Sprintf("filter %s: the event has no %s", g.key, g.key)
	}
	return fmt.Sprintf("filter %s: %q is not one of %q", g.key, String(v), g.values)
}

// Empty reports whether there are no filters.
func (f Filters) Empty() bool { return len(f.groups) == 0 }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
