package daemon

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"switchboard/config"
	"switchboard/metrics"
	"switchboard/router"
	"switchboard/router/logqueue"
	"switchboard/router/natsqueue"
)

// DurableQueue is what `run` and `dlq` need of a queue driver.
type DurableQueue interface {
	router.Queue
	router.DeadLetters
}

// OpenQueue opens the queue f's queue.driver names, with f's limits,
// keeping the queue's metrics current: the embedded queue in queue.dir (a
// damaged one is a *logqueue.DamageError saying what to do), or the NATS
// JetStream streams that replicas share.
func OpenQueue(f *config.File, log *slog.Logger) (DurableQueue, error) {
	switch f.Queue.Driver {
	case config.DriverNATS:
		return natsqueue.Open(natsOptions(f, log))
	case config.DriverEmbedded, "":
		q, err := logqueue.Open(QueueOptions(f, log))
		if err == nil {
			// Loading a large queue builds its indexes by growing them: the
			// outgrown tables are garbage the heap would otherwise keep
			// reserved (a million pending deliveries: ~50 MB). The live
			// indexes hold no pointers, so this collection is short.
			debug.FreeOSMemory()
		}
		return q, err
	}
	return nil, fmt.Errorf("queue.driver %q is not a queue driver", f.Queue.Driver)
}

// QueueAttrs name the queue in the log: queue.dir, or the NATS servers
// (without credentials) and stream.
func QueueAttrs(q config.Queue) []any {
	if q.Driver == config.DriverNATS {
		return []any{"queue_driver", q.Driver, "nats_url", natsqueue.RedactURL(q.NATS.URL), "nats_stream", q.NATS.Stream}
	}
	return []any{"queue_dir", q.Dir}
}

// natsOptions are the shared queue's options for f.
func natsOptions(f *config.File, log *slog.Logger) natsqueue.Options {
	q, n := f.Queue, f.Queue.NATS
	return natsqueue.Options{
		URL: n.URL, Stream: n.Stream, Replicas: n.Replicas,
		CredentialsFile: n.CredentialsFile, NKeyFile: n.NKeyFile, TokenFile: n.TokenFile,
		CAFile: n.TLS.CAFile, CertFile: n.TLS.CertFile, KeyFile: n.TLS.KeyFile,
		MaxBytes: int64(q.MaxBytes), MaxPendingPerSink: q.MaxPendingPerSink, DedupWindow: q.DedupWindow,
		DeadLetterMaxAge: q.DeadLetterMaxAge, DeadLetterMaxBytes: int64(q.DeadLetterMaxBytes),
		Dropped: func(dl router.DeadLetter) { metrics.DeadLettersDropped.WithLabelValues(dl.Sink).Inc() },
		AckWait: n.AckWait, Log: log,
	}
}

// QueueOptions are the embedded queue's options for f.
func QueueOptions(f *config.File, log *slog.Logger) logqueue.Options {
	return logqueue.Options{
		Dir:                f.Queue.Dir,
		MaxBytes:           int64(f.Queue.MaxBytes),
		MaxPendingPerSink:  f.Queue.MaxPendingPerSink,
		DedupWindow:        f.Queue.DedupWindow,
		DeadLetterMaxAge:   f.Queue.DeadLetterMaxAge,
		DeadLetterMaxBytes: int64(f.Queue.DeadLetterMaxBytes),
		Log:                log,
		// Depth and dead letters by sink are the daemon's to report
		// (refreshQueueGauges), so that a removed sink's series go.
		Metrics: &logqueue.Metrics{
			Bytes:              metrics.QueueBytes,
			MaxBytes:           metrics.QueueMaxBytes,
			WriteErrors:        metrics.QueueWriteErrors,
			Unreadable:         metrics.QueueRecordsUnreadable,
			DeadLettersDropped: metrics.DeadLettersDropped,
		},
	}
}

// shareQueue tells the queue how many sinks share queue.max_bytes: the
// embedded queue gives each its part, so that one sink down cannot fill
// max_bytes for the others (logqueue.Queue.SetSinks). A part smaller than
// server.max_body_bytes is one of the config's Warnings.
func (d *Daemon) shareQueue(sinks int) {
	if q, ok := d.queue.(interface{ SetSinks(int) }); ok {
		q.SetSinks(sinks)
	}
}
