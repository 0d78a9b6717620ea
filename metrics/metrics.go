// Package metrics defines every Prometheus metric switchboard exports, in
// one place, so that names and labels stay consistent and documented. All
// metrics are named switchboard_* and registered on Registry, which the
// admin listener serves at /metrics.
package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry holds switchboard's metrics plus the Go and process collectors.
var Registry = prometheus.NewRegistry()

var (
	// EventsReceived counts events (or requests refused before they became
	// events) by source and outcome: accepted, filtered, duplicate,
	// rejected. reason says why for rejected (bad_json, auth, too_large, ...).
	EventsReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_events_received_total",
		Help: "Events received by source and outcome (accepted, filtered, duplicate, rejected; reason for rejections).",
	}, []string{"source", "outcome", "reason"})

	// EventsUnmatched counts accepted events no rule matched.
	EventsUnmatched = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_events_unmatched_total",
		Help: "Accepted events that no rule matched (sent to `unmatched` sinks if any).",
	}, []string{"source"})

	// RuleMatches counts events each rule matched.
	RuleMatches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_rule_matches_total",
		Help: "Events matched, by rule.",
	}, []string{"rule"})

	// RuleErrors counts run-time errors of a rule's `when` (counted as no match).
	RuleErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_rule_errors_total",
		Help: "Run-time errors evaluating a rule's `when`, by rule; each counts as no match.",
	}, []string{"rule"})

	// Throttled counts events storm control held back from a rule's or a
	// sink's deliveries.
	Throttled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_throttled_total",
		Help: "Events held back by storm control, by throttle (\"rule x\" or \"sink y\"); summarised when the window ends.",
	}, []string{"throttle"})

	// Deliveries counts delivery attempts by sink and outcome: success,
	// retry, dead.
	Deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_deliveries_total",
		Help: "Delivery attempts by sink and outcome (success, retry, dead).",
	}, []string{"sink", "outcome"})

	// DeliveryLatency observes, for each successful delivery, the time from
	// the event's receipt to the sink's confirmation.
	DeliveryLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "switchboard_delivery_latency_seconds",
		Help:    "Time from an event's receipt to its successful delivery, by sink.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
	}, []string{"sink"})

	// QueueDepth is the number of deliveries waiting or in flight per sink.
	QueueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchboard_queue_depth",
		Help: "Deliveries queued or in flight, by sink.",
	}, []string{"sink"})

	// OldestPending is the age of the oldest queued delivery per sink: a
	// sink falling behind shows here before its backlog is large.
	OldestPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchboard_queue_oldest_pending_seconds",
		Help: "Age of the oldest queued delivery, by sink (0 when none).",
	}, []string{"sink"})

	// DeadLetters is the number of dead letters kept per sink.
	DeadLetters = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchboard_dead_letters",
		Help: "Dead letters kept, by sink.",
	}, []string{"sink"})

	// QueueBytes is the stored size of the events with deliveries pending:
	// what queue.max_bytes bounds.
	QueueBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchboard_queue_bytes",
		Help: "Stored bytes of events with deliveries pending (what queue.max_bytes bounds; dead letters do not count).",
	})

	// QueueMaxBytes is queue.max_bytes (0: no bound).
	QueueMaxBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchboard_queue_max_bytes",
		Help: "queue.max_bytes: past it sources answer 503 (0 means no bound).",
	})

	// QueueWriteErrors counts failed writes to the queue's files (a full
	// or failing disk); each is retried.
	QueueWriteErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_queue_write_errors_total",
		Help: "Failed writes to the queue's files (disk full or failing); sources answer 503 meanwhile and the write is retried.",
	})

	// QueueRecordsUnreadable counts stored records that could not be
	// decoded and became dead letters with their raw bytes.
	QueueRecordsUnreadable = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_queue_records_unreadable_total",
		Help: "Stored queue records that could not be decoded; each became a dead letter keeping its raw bytes.",
	})

	// DeadLettersDropped counts dead letters dropped past
	// queue.dead_letter_max_age or queue.dead_letter_max_bytes.
	DeadLettersDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_dead_letters_dropped_total",
		Help: "Dead letters dropped, oldest first, past queue.dead_letter_max_age or queue.dead_letter_max_bytes, by sink.",
	}, []string{"sink"})

	// ReloadSuccessful is 1 when the last config (re)load was applied, 0
	// when it was refused and the previous config still runs.
	ReloadSuccessful = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchboard_config_last_reload_successful",
		Help: "1 if the last configuration load succeeded, 0 if it was refused.",
	})

	// ReloadSuccessTime is when the config was last applied.
	ReloadSuccessTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchboard_config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last successful configuration load.",
	})

	// BuildInfo is 1, labelled with the build's version and Go version.
	BuildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchboard_build_info",
		Help: "Build information; the value is always 1.",
	}, []string{"version", "commit", "goversion"})
)

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		EventsReceived, EventsUnmatched, RuleMatches, RuleErrors, Throttled, Deliveries,
		DeliveryLatency, QueueDepth, OldestPending, DeadLetters, ReloadSuccessful, ReloadSuccessTime, BuildInfo,
		QueueBytes, QueueMaxBytes, QueueWriteErrors, QueueRecordsUnreadable, DeadLettersDropped,
	)
}

// SetBuildInfo records the running build.
func SetBuildInfo(version, commit string) {
	BuildInfo.WithLabelValues(version, commit, runtime.Version()).Set(1)
}

// The outcomes every configured source and sink has a series for from the
// first scrape, so that alerts on them (`outcome="dead"`) work before the
// first such event.
var (
	EventOutcomes    = []string{"accepted", "filtered", "duplicate"}
	DeliveryOutcomes = []string{"success", "retry", "dead"}
)

// InitSource creates a source's series at 0: each outcome, and a
// rejection for each of rejectReasons.
func InitSource(name string, rejectReasons []string) {
	for _, o := range EventOutcomes {
		EventsReceived.WithLabelValues(name, o, "")
	}
	for _, r := range rejectReasons {
		EventsReceived.WithLabelValues(name, "rejected", r)
	}
	EventsUnmatched.WithLabelValues(name)
}

// DeleteSource removes every series of a source that is no longer
// configured.
func DeleteSource(name string) {
	EventsReceived.DeletePartialMatch(prometheus.Labels{"source": name})
	EventsUnmatched.DeleteLabelValues(name)
}

// InitRule creates a rule's series at 0.
func InitRule(name string) {
	RuleMatches.WithLabelValues(name)
	RuleErrors.WithLabelValues(name)
}

// DeleteRule removes the series of a rule that is no longer configured.
func DeleteRule(name string) {
	RuleMatches.DeleteLabelValues(name)
	RuleErrors.DeleteLabelValues(name)
}

// InitSink creates a sink's series at 0.
func InitSink(name string) {
	for _, o := range DeliveryOutcomes {
		Deliveries.WithLabelValues(name, o)
	}
	DeliveryLatency.WithLabelValues(name)
	QueueDepth.WithLabelValues(name)
	OldestPending.WithLabelValues(name)
	DeadLetters.WithLabelValues(name)
	DeadLettersDropped.WithLabelValues(name)
}

// DeleteSink removes the series of a sink that is no longer configured.
// Its dead letters, if any are left, are reported again by whoever keeps
// the queue gauges: they are still there to replay or purge.
func DeleteSink(name string) {
	Deliveries.DeletePartialMatch(prometheus.Labels{"sink": name})
	DeliveryLatency.DeleteLabelValues(name)
	QueueDepth.DeleteLabelValues(name)
	OldestPending.DeleteLabelValues(name)
	DeadLetters.DeleteLabelValues(name)
	DeadLettersDropped.DeleteLabelValues(name)
}

// InitThrottle creates a storm control's series at 0; owner is "rule x"
// or "sink y".
func InitThrottle(owner string) { Throttled.WithLabelValues(owner) }

// DeleteThrottle removes the series of a storm control no longer
// configured.
func DeleteThrottle(owner string) { Throttled.DeleteLabelValues(owner) }
