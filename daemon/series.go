package daemon

import (
	"switchboard/metrics"
)

// webhookRejectReasons are the rejections the daemon itself makes of any
// webhook source's requests; each gets a series from the start, so that
// "events refused because the queue is full" can be alerted on before it
// first happens. A source's own reasons (signature, bad_json, ...) appear
// with their first occurrence.
var webhookRejectReasons = []string{"too_large", "method", "read", "parse", "queue", "queue_full", "shutting_down"}

// series names what a snapshot counts: by source, rule, sink, throttle.
type series struct {
	sources   map[string]bool // name -> is a webhook source
	rules     map[string]bool
	sinks     map[string]bool
	throttles map[string]bool
}

func seriesOf(s *Snapshot) series {
	out := series{sources: map[string]bool{}, rules: map[string]bool{}, sinks: map[string]bool{}, throttles: map[string]bool{}}
	if s == nil {
		return out
	}
	for name, src := range s.Sources {
		out.sources[name] = src.HTTP != nil
	}
	for _, r := range s.File.Rules {
		out.rules[r.Name] = true
		if r.Throttle != nil {
			out.throttles["rule "+r.Name] = true
		}
	}
	for name, sc := range s.File.Sinks {
		out.sinks[name] = true
		if sc.Throttle != nil {
			out.throttles["sink "+name] = true
		}
	}
	return out
}

// publishSeries makes every series of next exist, at 0 where new, and
// deletes those of old that next no longer has, so that dashboards and
// alerts see exactly the configured sources, rules and sinks from the
// first scrape. old is nil at start.
func publishSeries(old, next *Snapshot) {
	was, now := seriesOf(old), seriesOf(next)
	for name := range was.sources {
		if _, ok := now.sources[name]; !ok {
			metrics.DeleteSource(name)
		}
	}
	for name, webhook := range now.sources {
		var reasons []string
		if webhook {
			reasons = webhookRejectReasons
		}
		metrics.InitSource(name, reasons)
	}
	syncSeries(was.rules, now.rules, metrics.InitRule, metrics.DeleteRule)
	syncSeries(was.sinks, now.sinks, metrics.InitSink, metrics.DeleteSink)
	syncSeries(was.throttles, now.throttles, metrics.InitThrottle, metrics.DeleteThrottle)
}

func syncSeries(was, now map[string]bool, create, remove func(string)) {
	for name := range was {
		if !now[name] {
			remove(name)
		}
	}
	for name := range now {
		create(name)
	}
}
