package main

import (
	"fmt"
	"io"
	"log/slog"

	"switchboard/config"
	"switchboard/metrics"
	"switchboard/router"
	"switchboard/router/boltqueue"
	"switchboard/router/natsqueue"
)

// durableQueue is what `run` and `dlq` need of a queue driver.
type durableQueue interface {
	router.Queue
	router.DeadLetters
}

// openQueue opens the queue that queue.driver names.
func openQueue(q config.Queue, log *slog.Logger) (durableQueue, error) {
	switch q.Driver {
	case config.DriverNATS:
		n := q.NATS
		return natsqueue.Open(natsqueue.Options{
			URL: n.URL, Stream: n.Stream, Replicas: n.Replicas,
			CredentialsFile: n.CredentialsFile, NKeyFile: n.NKeyFile, TokenFile: n.TokenFile,
			CAFile: n.TLS.CAFile, CertFile: n.TLS.CertFile, KeyFile: n.TLS.KeyFile,
			MaxBytes: int64(q.MaxBytes), MaxPendingPerSink: q.MaxPendingPerSink, DedupWindow: q.DedupWindow,
			DeadLetterMaxAge: q.DeadLetterMaxAge, DeadLetterMaxBytes: int64(q.DeadLetterMaxBytes),
			Dropped: func(dl router.DeadLetter) { metrics.DeadLettersDropped.WithLabelValues(dl.Sink).Inc() },
			AckWait: n.AckWait, Log: log,
		})
	case config.DriverEmbedded, "":
		return boltqueue.Open(boltqueue.Options{Dir: q.Dir, MaxBytes: int64(q.MaxBytes),
			MaxPendingPerSink: q.MaxPendingPerSink, DedupWindow: q.DedupWindow, Log: log})
	}
	return nil, fmt.Errorf("queue.driver %q is not a queue driver", q.Driver)
}

// queueWhere names where the queue lives, for messages.
func queueWhere(q config.Queue) string {
	if q.Driver == config.DriverNATS {
		return "the NATS stream " + q.NATS.Stream + " at " + q.NATS.URL
	}
	return "the queue in " + q.Dir
}

// printWarnings prints what `check` should draw attention to without
// refusing the file.
func printWarnings(w io.Writer, f *config.File) {
	for _, p := range f.Warnings() {
		fmt.Fprintln(w, "warning: "+p.Error())
	}
}
