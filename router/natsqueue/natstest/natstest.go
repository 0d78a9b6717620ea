// Package natstest runs real NATS servers with JetStream inside a test
// process: one server, or a cluster of several, each with its file store
// in the test's temporary directory. Servers keep their ports and stores
// across Stop and Start, like a restarted pod.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is one in-process nats-server.
type Server struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
	// URL is the server's client URL (nats://127.0.0.1:port).
	URL string
}

// Options returns a JetStream server's options on free loopback ports
// with its store under dir.
func Options(name, dir string) server.Options {
	return server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       freePort(),
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		// Tests post events of up to a few hundred KiB.
		MaxPayload: 8 << 20,
	}
}

// RunServer starts one JetStream server; it is shut down when the test
// ends.
func RunServer(t testing.TB) *Server {
	t.Helper()
	return Run(t, Options("n0", filepath.Join(t.TempDir(), "n0")))
}

// Run starts a server with these options; it is shut down when the test
// ends.
func Run(t testing.TB, opts server.Options) *Server {
	t.Helper()
	s := &Server{t: t, opts: opts, URL: fmt.Sprintf("nats://127.0.0.1:%d", opts.Port)}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts (or restarts) the server and waits until it takes clients.
func (s *Server) Start() {
	s.t.Helper()
	opts := s.opts // the server keeps and changes what it is given
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatalf("nats-server %s: %v", s.opts.ServerName, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.t.Fatalf("nats-server %s not ready after 10s", s.opts.ServerName)
	}
	s.srv = srv
}

// Stop shuts the server down (a clean stop: clients see the connection
// close at once). Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Running reports whether the server runs.
func (s *Server) Running() bool { return s.srv != nil }

// Name is the server's name in the cluster.
func (s *Server) Name() string { return s.opts.ServerName }

// Cluster is several servers routed to each other, with JetStream
// clustered among them.
type Cluster struct {
	Servers []*Server
	// URL lists every server, comma-separated, as queue.nats.url does.
	URL string
}

// RunCluster starts n servers as one JetStream cluster and waits until it
// has a meta leader; they are shut down when the test ends.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{}
	dir := t.TempDir()
	routes := make([]*url.URL, n)
	ports := make([]int, n)
	for i := range n {
		ports[i] = freePort()
		routes[i] = &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])}
	}
	var urls []string
	for i := range n {
		name := fmt.Sprintf("n%d", i)
		o := Options(name, filepath.Join(dir, name))
		o.Cluster = server.ClusterOpts{Name: "switchboard-test", Host: "127.0.0.1", Port: ports[i]}
		o.Routes = routes
		s := &Server{t: t, opts: o, URL: fmt.Sprintf("nats://127.0.0.1:%d", o.Port)}
		c.Servers = append(c.Servers, s)
		urls = append(urls, s.URL)
	}
	c.URL = strings.Join(urls, ",")
	for _, s := range c.Servers {
		opts := s.opts
		srv, err := server.NewServer(&opts)
		if err != nil {
			t.Fatalf("nats-server %s: %v", s.opts.ServerName, err)
		}
		go srv.Start()
		s.srv = srv
	}
	for _, s := range c.Servers {
		if !s.srv.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats-server %s not ready after 10s", s.opts.ServerName)
		}
		t.Cleanup(s.Stop)
	}
	c.WaitForMetaLeader()
	return c
}

// WaitForMetaLeader waits until the running servers have elected a
// JetStream meta leader that sees every running server, so that streams
// replicated on all of them can be created.
func (c *Cluster) WaitForMetaLeader() {
	t := c.Servers[0].t
	t.Helper()
	running := 0
	for _, s := range c.Servers {
		if s.srv != nil {
			running++
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.Servers {
			if s.srv != nil && s.srv.JetStreamIsLeader() && len(s.srv.JetStreamClusterPeers()) >= running {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the NATS cluster elected no JetStream meta leader seeing every server in 30s")
}

// StreamLeader returns the server leading stream (in the global account),
// waiting up to 20s for one; nil if none was elected.
func (c *Cluster) StreamLeader(stream string) *Server {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.Servers {
			if s.srv != nil && s.srv.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
				return s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
