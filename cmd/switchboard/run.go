package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"switchboard/daemon"
	"switchboard/metrics"
)

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon",
		Long: `Runs the daemon: the webhook listener (server.listen), the admin listener
(admin.listen: /healthz, /readyz, /metrics), stream sources and delivery
workers. SIGTERM or SIGINT stops accepting, finishes requests in flight,
gives deliveries server.shutdown_timeout, and exits 0.

The config file is watched: an edit is applied within a second if it passes
everything 'check' checks; otherwise the running config stays and every
problem is logged. SIGHUP and POST /-/reload on the admin listener reload too.`,
		Example: `  switchboard run -c config.example.yaml
  switchboard run --config examples/bird/switchboard.yaml`,
		Args: noArgs("give the config with -c FILE"),
	}
	path := configFlag(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return status(runDaemon(*path, cmd.ErrOrStderr()))
	}
	return cmd
}

func runDaemon(path string, stderr io.Writer) int {
	snap, ok := load(path, stderr)
	if !ok {
		return exitFail
	}
	if ps := daemon.Preflight(snap); len(ps) > 0 {
		printProblems(stderr, path, ps)
		return exitFail
	}
	log := newLogger(snap.File.Log, stderr)
	slog.SetDefault(log) // the log sink and libraries log through it too
	bv := readBuildInfo()
	metrics.SetBuildInfo(bv.Version, bv.shortRevision())
	q, err := daemon.OpenQueue(snap.File, log)
	if err != nil {
		log.Error("cannot open the queue: "+err.Error(), daemon.QueueAttrs(snap.File.Queue)...)
		return exitFail
	}
	d := daemon.New(snap, q, log)
	d.ConfigPath = path
	d.Version = bv.String()
	if err := d.Start(); err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-hup:
			d.Reload("SIGHUP")
		}
	}
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), snap.File.Server.ShutdownTimeout)
	defer cancel()
	if err := d.Shutdown(sctx); err != nil {
		log.Warn("shutdown did not finish cleanly; queued deliveries stay queued", "err", err)
	}
	return exitOK
}
