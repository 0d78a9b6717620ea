package router

import (
	"sync"
)

// The catalog knows which statuses each provider event can carry, so that a
// filter on status can be checked at load: `voice.inbound` has no
// `accepted`, and a rule waiting for it would never fire. Source packages
// declare their events in init.
var catalog = struct {
	sync.RWMutex
	statuses map[string][]string
	open     map[string]bool   // events whose statuses are not all documented
	aliases  map[string]string // documentation names -> the names events carry
}{statuses: map[string][]string{}, open: map[string]bool{}, aliases: map[string]string{}}

// DeclareEvent records a provider event name and every status it can have.
func DeclareEvent(event string, statuses ...string) {
	catalog.Lock()
	defer catalog.Unlock()
	catalog.statuses[event] = append([]string(nil), statuses...)
}

// DeclareAlias records another name for a provider event, one its
// documentation uses but its events never carry (Cisco's ROAMING_EVENT is
// COUNTRY_CHANGE_EVENT on the wire). Rules may use either.
func DeclareAlias(alias, event string) {
	catalog.Lock()
	defer catalog.Unlock()
	catalog.aliases[alias] = event
}

// Canonical returns the event name an alias stands for, or name itself.
func Canonical(name string) string {
	catalog.RLock()
	defer catalog.RUnlock()
	if e, ok := catalog.aliases[name]; ok {
		return e
	}
	return name
}

// DeclareOpenEvent records a provider event whose statuses are not all
// documented: patterns matching it get no status check.
func DeclareOpenEvent(event string) {
	catalog.Lock()
	defer catalog.Unlock()
	catalog.statuses[event] = nil
	catalog.open[event] = true
}

// KnownStatuses returns, for the event patterns given (globs allowed), the
// statuses they can have, and ok=false if any pattern matches no declared
// event: then nothing is known and no check applies.
func KnownStatuses(patterns []string) (events []string, statuses map[string]bool, ok bool) {
	if len(patterns) == 0 {
		return nil, nil, false
	}
	catalog.RLock()
	defer catalog.RUnlock()
	statuses = map[string]bool{}
	for _, p := range patterns {
		found := false
		for ev, sts := range catalog.statuses {
			if !Glob(p, ev) {
				continue
			}
			if catalog.open[ev] {
				return nil, nil, false
			}
			found = true
			events = append(events, ev)
			for _, s := range sts {
				statuses[s] = true
			}
		}
		if !found {
			return nil, nil, false
		}
	}
	return events, statuses, true
}
