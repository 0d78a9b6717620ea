package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"switchboard/daemon/history"
	"switchboard/metrics"
	"switchboard/redact"
	"switchboard/router"
	"switchboard/sinks"
	"switchboard/sources"
)

// Daemon is a running switchboard.
type Daemon struct {
	log   *slog.Logger
	queue router.Queue
	snap  atomic.Pointer[Snapshot]

	webhook, admin *http.Server
	webhookLn      net.Listener
	adminLn        net.Listener
	draining       atomic.Bool

	// ConfigPath, when set before Start, is watched and reloaded on
	// change; Reload reads it too.
	ConfigPath string
	// Version, when set before Start, is logged at start.
	Version string

	reloadMu sync.Mutex // one reload at a time
	lastHash [32]byte   // of the config bytes last applied
	failed   bool       // the last reload was refused; under reloadMu

	failures *failureLog // delivery failures, summed up per sink

	// The operator console's sources (console.go).
	started time.Time
	history *history.Store
	tap     tapHub
	stats   stats
	reload  atomic.Pointer[reloadState]

	mu      sync.Mutex
	workers map[string]*router.Worker
	streams map[string]stream
	ctx     context.Context // lives until Shutdown
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New prepares a daemon for a built snapshot and the queue it accepts
// into, which must not be nil: the durable queue (OpenQueue), which tests
// open in a temporary directory.
func New(snap *Snapshot, queue router.Queue, log *slog.Logger) *Daemon {
	d := &Daemon{log: log, queue: queue, workers: map[string]*router.Worker{}, streams: map[string]stream{},
		failures: newFailureLog(log), started: time.Now().UTC(),
		history: history.New(snap.File.History.MaxEvents, snap.File.History.MaxAge)}
	d.reload.Store(&reloadState{At: d.started, Trigger: "start"})
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.snap.Store(snap)
	return d
}

// Start binds both listeners and starts the delivery workers and stream
// sources. It returns once the daemon is serving.
func (d *Daemon) Start() error {
	snap := d.snap.Load()
	f := snap.File
	redact.Set(redact.New(snap.Secrets...))
	var err error
	if d.webhookLn, err = net.Listen("tcp", f.Server.Listen); err != nil {
		return fmt.Errorf("server.listen %s: %w", f.Server.Listen, err)
	}
	if d.adminLn, err = net.Listen("tcp", f.Admin.Listen); err != nil {
		d.webhookLn.Close()
		return fmt.Errorf("admin.listen %s: %w", f.Admin.Listen, err)
	}
	d.webhook = &http.Server{
		Handler:           http.HandlerFunc(d.serveWebhook),
		ReadHeaderTimeout: f.Server.ReadTimeout,
		ReadTimeout:       f.Server.ReadTimeout,
		WriteTimeout:      f.Server.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
	d.admin = &http.Server{
		Handler:           d.adminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Bodies are small JSON; no write timeout, as a CPU profile takes
		// the seconds it is asked for.
		ReadTimeout:    time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
	d.shareQueue(len(snap.Sinks))
	if dl, ok := d.queue.(interface {
		DeadLetterSinks(keep func(string) bool, reason string) (int, error)
	}); ok {
		n, err := dl.DeadLetterSinks(func(sink string) bool { return snap.Sinks[sink] != nil }, "sink removed")
		if err != nil {
			return fmt.Errorf("queue: %w", err)
		}
		if n > 0 {
			d.log.Warn("queued deliveries to sinks no longer configured moved to the dead-letter queue", "count", n, "reason", "sink removed")
		}
	}
	publishSeries(nil, snap)
	for name, s := range snap.Sinks {
		d.startWorker(name, s)
	}
	for _, src := range snap.Sources {
		d.startStream(src)
	}
	if d.ConfigPath != "" {
		if err := d.watch(); err != nil {
			d.log.Warn("config file changes will not be picked up; reload with SIGHUP or POST /-/reload", "err", err)
		}
	}
	d.reloadMu.Lock()
	d.noteApplied("start", d.lastHash)
	d.reloadMu.Unlock()
	d.wg.Add(4)
	go d.reportQueue(d.ctx)
	go d.throttleSummaries(d.ctx)
	go d.flushFailures(d.ctx)
	go d.sweepHistory(d.ctx)
	d.serve(d.webhook, webhookListener(d.webhookLn, f.Server.MaxConnections, d.log), "webhook")
	d.serve(d.admin, d.adminLn, "admin")
	metrics.ReloadSuccessful.Set(1)
	metrics.ReloadSuccessTime.SetToCurrentTime()
	logConfigWarnings(d.log, nil, f)
	d.logStart(snap)
	return nil
}

// logStart says what runs: one line per source with where it listens, one
// per sink with a backlog taken over from the last run, then one line with
// the version, the files and the addresses.
func (d *Daemon) logStart(snap *Snapshot) {
	for _, name := range sortedKeys(snap.Sources) {
		src := snap.Sources[name]
		if src.HTTP != nil {
			d.log.Info("source ready", "source", name, "type", src.Type, "path", src.Path, "methods", src.Methods)
		} else {
			d.log.Info("source ready", "source", name, "type", src.Type, "stream", true)
		}
	}
	pending, dead := 0, 0
	if st, ok := d.queue.(interface{ Stats() map[string][2]int }); ok {
		stats := st.Stats()
		for _, sink := range sortedKeys(stats) {
			v := stats[sink]
			pending += v[0]
			dead += v[1]
			if v[0] > 0 {
				d.log.Info("backlog resumed", "sink", sink, "pending", v[0])
			}
		}
	}
	attrs := append([]any{"version", d.Version, "config", d.ConfigPath}, QueueAttrs(snap.File.Queue)...)
	d.log.Info("switchboard started", append(attrs,
		"listen", d.webhookLn.Addr().String(), "admin", d.adminLn.Addr().String(),
		"sources", len(snap.Sources), "sinks", len(snap.Sinks), "rules", len(snap.File.Rules),
		"pending", pending, "dead_letters", dead)...)
}

func (d *Daemon) serve(srv *http.Server, ln net.Listener, name string) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("listener failed", "listener", name, "err", err)
		}
	}()
}

// stream is a running stream source: how to stop it and when it has.
type stream struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startStream runs a stream source until it is stopped or the daemon
// shuts down.
func (d *Daemon) startStream(src *Source) {
	if src.Stream == nil {
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	done := make(chan struct{})
	d.mu.Lock()
	d.streams[src.Name] = stream{cancel, done}
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(done)
		if l, ok := src.Stream.(sources.LogSetter); ok {
			l.SetLogger(d.log)
		}
		acc := &streamAcceptor{d: d, source: src.Name}
		if err := src.Stream.Run(ctx, acc); err != nil && ctx.Err() == nil {
			d.log.Error("stream source stopped", "source", src.Name, "err", err)
		}
	}()
}

func (d *Daemon) startWorker(name string, s *Sink) {
	// A shared queue sizes what it pulls for the sink by its concurrency.
	if c, ok := d.queue.(interface{ ConfigureSink(string, int) }); ok {
		c.ConfigureSink(name, s.Concurrency)
	}
	w := &router.Worker{
		Name: name, Sink: s.Sink, Retry: s.Retry, Concurrency: s.Concurrency,
		Queue: d.queue, Observer: d.deliveryObserver(name), Log: d.log,
	}
	w.Start(context.Background())
	d.mu.Lock()
	d.workers[name] = w
	d.mu.Unlock()
}

// stopWorker stops a sink's workers; an attempt under way goes back to the
// queue.
func (d *Daemon) stopWorker(name string) {
	d.mu.Lock()
	w := d.workers[name]
	delete(d.workers, name)
	d.mu.Unlock()
	if w != nil {
		w.Stop()
	}
}

// WebhookAddr is the address the webhook listener is bound to.
func (d *Daemon) WebhookAddr() string { return d.webhookLn.Addr().String() }

// AdminAddr is the address the admin listener is bound to.
func (d *Daemon) AdminAddr() string { return d.adminLn.Addr().String() }

// Shutdown stops accepting, lets in-flight requests finish, gives queued
// deliveries until ctx ends to complete, then stops the workers. What is
// still queued stays in the queue.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.draining.Store(true)
	d.log.Info("shutting down: no longer accepting events")
	d.cancel() // stream sources, watcher, gauges
	err := d.webhook.Shutdown(ctx)
	if idle, ok := d.queue.(interface{ Idle() bool }); ok {
		for !idle.Idle() && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	d.mu.Lock()
	for _, w := range d.workers {
		w.Stop()
	}
	d.mu.Unlock()
	d.failures.flush(true) // what the workers failed during the drain
	for _, s := range d.snap.Load().Sinks {
		if c, ok := s.Sink.(sinks.Closer); ok {
			if cerr := c.Close(); cerr != nil {
				d.log.Error("closing sink failed", "sink", s.Name, "err", cerr)
			}
		}
	}
	if qerr := d.queue.Close(); qerr != nil {
		err = errors.Join(err, qerr)
	}
	aerr := d.admin.Shutdown(ctx)
	d.wg.Wait()
	d.log.Info("shutdown complete")
	return errors.Join(err, aerr)
}

// throttleSummaries queues, once a second, the summary event of every
// storm-control window that ended with events held back.
func (d *Daemon) throttleSummaries(ctx context.Context) {
	defer d.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			snap := d.enter()
			var batch []router.Routed
			for _, s := range snap.Table.Summaries(now) {
				batch = append(batch, router.Routed{Event: s.Event, Sinks: snap.Table.SinkNames(s.Sinks)})
			}
			d.queueSummaries(batch, "window ended")
			snap.accepting.RUnlock()
		}
	}
}

// queueSummaries queues storm control's summary events, logging each.
func (d *Daemon) queueSummaries(batch []router.Routed, why string) {
	if len(batch) == 0 {
		return
	}
	for _, r := range batch {
		p := r.Event.Payload
		d.log.Info("storm control summary", "throttle", p["throttle"], "key", p["key"],
			"suppressed", p["suppressed"], "sinks", r.Sinks, "reason", why)
	}
	if err := d.queue.Enqueue(d.ctx, batch); err != nil {
		d.log.Error("could not queue storm control summaries; the events they summarise were held back and are not delivered",
			"count", len(batch), "reason", why, "err", err)
		return
	}
	for _, r := range batch {
		d.history.Add(history.NewEntry(r.Event, history.Accepted, nil, r.Sinks, nil))
		if d.tap.active() {
			d.tap.publish(eventItem(r.Event, outcomeAccepted, nil, r.Sinks, nil))
		}
	}
}

// sweepHistory drops history entries past history.max_age, so that an
// idle daemon gives their memory back.
func (d *Daemon) sweepHistory(ctx context.Context) {
	defer d.wg.Done()
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			d.history.Sweep(now)
		}
	}
}

// reportQueue keeps the queue gauges current: every 2 s, and at once when
// the dead-letter API changes the queue (refreshQueueGauges).
func (d *Daemon) reportQueue(ctx context.Context) {
	defer d.wg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		d.refreshQueueGauges()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refreshQueueGauges sets the queue gauges from the queue. A sink no longer
// configured keeps only its dead-letter gauge, and only while it has dead
// letters.
func (d *Daemon) refreshQueueGauges() {
	st, ok := d.queue.(interface{ Stats() map[string][2]int })
	if !ok {
		return
	}
	var ages map[string]time.Duration
	if oldest, ok := d.queue.(interface {
		OldestPending(time.Time) map[string]time.Duration
	}); ok {
		ages = oldest.OldestPending(time.Now())
	}
	if b, ok := d.queue.(interface{ Bytes() (used, limit int64) }); ok {
		used, limit := b.Bytes()
		metrics.QueueBytes.Set(float64(used))
		metrics.QueueMaxBytes.Set(float64(limit))
	}
	configured := d.snap.Load().Sinks
	for sink, v := range st.Stats() {
		if configured[sink] == nil {
			if v[1] > 0 {
				metrics.DeadLetters.WithLabelValues(sink).Set(float64(v[1]))
			} else {
				metrics.DeadLetters.DeleteLabelValues(sink)
			}
			continue
		}
		metrics.QueueDepth.WithLabelValues(sink).Set(float64(v[0]))
		metrics.DeadLetters.WithLabelValues(sink).Set(float64(v[1]))
		metrics.OldestPending.WithLabelValues(sink).Set(ages[sink].Seconds())
	}
}

// writeJSON answers v, with every configured secret redacted: answers
// carry error texts from receivers and config problems.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	b = redact.Current().Bytes(b)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Snapshot returns the config currently in force.
func (d *Daemon) Snapshot() *Snapshot { return d.snap.Load() }
