package daemon

import (
	"switchboard/config"
	"switchboard/sinks"
)

// Preflight finds what `run` would refuse in a built config although the
// file itself is valid: a queue.dir it cannot create or write, a sink that
// needs something of the machine it does not get (a file sink's directory).
// `check`, `run` at start and every reload ask it; it changes nothing.
func Preflight(s *Snapshot) config.Problems {
	var ps config.Problems
	if s.File.Queue.Driver != config.DriverNATS { // a shared queue keeps nothing in queue.dir
		if err := config.WritableDir(s.File.Queue.Dir); err != nil {
			ps.Add("queue.dir", "%v; make it writable by the user switchboard runs as, or point queue.dir elsewhere", err)
		}
	}
	names := sortedKeys(s.Sinks)
	for _, name := range names {
		if p, ok := s.Sinks[name].Sink.(sinks.Preflighter); ok {
			ps.Merge("sinks."+name, p.Preflight())
		}
	}
	ps.Sort()
	return ps
}
