// Command natsserver runs one NATS server with JetStream for benchmarks
// and local trials of queue.driver nats, so that nothing has to be
// installed: go run ./bench/natsserver -store /tmp/js
//
// It is a plain nats-server (the same code the project's tests run in
// process), listening on loopback only. SIGTERM or SIGINT stops it.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4222", "client `host:port` (loopback)")
	store := flag.String("store", "", "JetStream store `dir` (default: a new temporary directory)")
	syncAlways := flag.Bool("sync", false, "fsync every message before acknowledging it (nats-server's sync_interval: always)")
	flag.Parse()
	host, port, err := net.SplitHostPort(*addr)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil {
		fmt.Fprintf(os.Stderr, "natsserver: -addr %q is not host:port\n", *addr)
		os.Exit(2)
	}
	dir := *store
	if dir == "" {
		if dir, err = os.MkdirTemp("", "natsserver-"); err != nil {
			fmt.Fprintln(os.Stderr, "natsserver:", err)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
	}
	opts := &server.Options{ServerName: "bench", Host: host, Port: p, JetStream: true, StoreDir: dir,
		MaxPayload: 8 << 20, NoSigs: true}
	if *syncAlways {
		// What the server's config file sets for sync_interval: always.
		opts.SyncInterval, opts.SyncAlways = 2*time.Minute, true
	}
	s, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsserver:", err)
		os.Exit(1)
	}
	s.ConfigureLogger()
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		fmt.Fprintln(os.Stderr, "natsserver: not ready after 10s")
		os.Exit(1)
	}
	fmt.Printf("nats-server ready at nats://%s, JetStream store %s\n", *addr, dir)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	s.Shutdown()
	s.WaitForShutdown()
}
