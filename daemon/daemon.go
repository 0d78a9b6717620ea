package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"switchboard/metrics"
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

	// swap is held shared by every accept (route + enqueue) and taken
	// exclusively by a reload to publish a new snapshot, so that once a
	// reload goes on, no event routed by the old config is still on its
	// way into the queue.
	swap     sync.RWMutex
	reloadMu sync.Mutex // one reload at a time
	lastHash [32]byte   // of the config bytes last applied

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
	d := &Daemon{log: log, queue: queue, workers: map[string]*router.Worker{}, streams: map[string]stream{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.snap.Store(snap)
	return d
}

// Start binds both listeners and starts the delivery workers and stream
// sources. It returns once the daemon is serving.
func (d *Daemon) Start() error {
	snap := d.snap.Load()
	f := snap.File
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
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
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
	d.wg.Add(2)
	go d.reportQueue(d.ctx)
	go d.throttleSummaries(d.ctx)
	d.serve(d.webhook, d.webhookLn, "webhook")
	d.serve(d.admin, d.adminLn, "admin")
	metrics.ReloadSuccessful.Set(1)
	metrics.ReloadSuccessTime.SetToCurrentTime()
	d.log.Info("switchboard started", "listen", d.webhookLn.Addr().String(), "admin", d.adminLn.Addr().String(),
		"sources", len(snap.Sources), "sinks", len(snap.Sinks), "rules", len(f.Rules))
	return nil
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
	w := &router.Worker{
		Name: name, Sink: s.Sink, Retry: s.Retry, Concurrency: s.Concurrency,
		Queue: d.queue, Observer: deliveryObserver{d.log}, Log: d.log,
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
			d.swap.RLock()
			snap := d.snap.Load()
			var batch []router.Routed
			for _, s := range snap.Table.Summaries(now) {
				names := snap.Table.SinkNames(s.Sinks)
				batch = append(batch, router.Routed{Event: s.Event, Sinks: names})
				d.log.Info("storm control summary", "throttle", s.Event.Payload["throttle"], "key", s.Event.Payload["key"],
					"suppressed", s.Event.Payload["suppressed"], "sinks", names)
			}
			if len(batch) > 0 {
				if err := d.queue.Enqueue(ctx, batch); err != nil {
					d.log.Error("could not queue storm control summaries", "count", len(batch), "err", err)
				}
			}
			d.swap.RUnlock()
		}
	}
}

// reportQueue keeps the age of each sink's oldest pending delivery
// current; the queue updates its other gauges itself as it changes.
func (d *Daemon) reportQueue(ctx context.Context) {
	defer d.wg.Done()
	st, ok := d.queue.(interface{ Stats() map[string][2]int })
	oldest, ok2 := d.queue.(interface {
		OldestPending(time.Time) map[string]time.Duration
	})
	if !ok || !ok2 {
		return
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		ages := oldest.OldestPending(time.Now())
		for sink := range st.Stats() {
			metrics.OldestPending.WithLabelValues(sink).Set(ages[sink].Seconds())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Daemon) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
			return
		}
		// A stream source whose stream is down receives nothing.
		var down []string
		for name, src := range d.snap.Load().Sources {
			if c, ok := src.Stream.(sources.Connector); ok && !c.Connected() {
				down = append(down, name)
			}
		}
		if len(down) > 0 {
			slices.Sort(down)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "stream not connected", "sources": down})
			return
		}
		// A queue that cannot write (a full disk) refuses every event.
		if r, ok := d.queue.(interface{ Ready() error }); ok {
			if err := r.Ready(); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "queue cannot store events", "error": err.Error()})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /-/reload", d.serveReload)
	d.dlqRoutes(mux)
	// Profiles for diagnosing a slow or hungry daemon; admin.listen is
	// loopback by default.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Snapshot returns the config currently in force.
func (d *Daemon) Snapshot() *Snapshot { return d.snap.Load() }
