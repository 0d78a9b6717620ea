package daemon

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/net/netutil"
)

// webhookListener bounds the webhook listener's open connections to
// server.max_connections (past it, new connections wait in the kernel's
// backlog until one closes) and reports accept errors.
func webhookListener(ln net.Listener, maxConns int, log *slog.Logger) net.Listener {
	return netutil.LimitListener(&acceptLogger{Listener: ln, log: log, every: 10 * time.Second}, maxConns)
}

// acceptLogger logs failed accepts at warn: "too many open files" means
// the daemon turns senders away, and an operator must hear of it. A
// failing accept repeats every few milliseconds (net/http retries), so at
// most one line per period is written, counting the ones left out.
type acceptLogger struct {
	net.Listener
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *acceptLogger) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		l.report(err)
	}
	return c, err
}

func (l *acceptLogger) report(err error) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.Warn("webhook listener cannot accept connections; senders wait or fail until it can (raise the open-file limit, e.g. LimitNOFILE, or lower server.max_connections)",
		"err", err, "similar_errors_not_logged", n)
}
