package daemon

import (
	"log/slog"

	"switchboard/config"
	"switchboard/metrics"
	"switchboard/router/logqueue"
)

// OpenQueue opens the embedded queue in f's queue.dir with f's limits,
// keeping the queue's metrics current. A damaged queue is a
// *logqueue.DamageError saying what to do.
func OpenQueue(f *config.File, log *slog.Logger) (*logqueue.Queue, error) {
	return logqueue.Open(QueueOptions(f, log))
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
		Metrics: &logqueue.Metrics{
			Depth:              metrics.QueueDepth,
			DeadLetters:        metrics.DeadLetters,
			Bytes:              metrics.QueueBytes,
			MaxBytes:           metrics.QueueMaxBytes,
			WriteErrors:        metrics.QueueWriteErrors,
			Unreadable:         metrics.QueueRecordsUnreadable,
			DeadLettersDropped: metrics.DeadLettersDropped,
		},
	}
}
