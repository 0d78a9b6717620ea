package daemon

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"switchboard/config"
	"switchboard/metrics"
	"switchboard/redact"
	"switchboard/sources"
)

// The admin listener's access control (admin.auth, admin.allowed_hosts),
// applied by adminGuard to every request before any handler runs:
//
//  1. /healthz and /readyz are open to all: probes carry no token and give
//     any Host, and the answers hold no data.
//  2. The Host must be allowed: a loopback name or address (any port),
//     an address of the listener itself or the name admin.listen gives
//     it, or a name in admin.allowed_hosts.
//     A browser page that rebinds its own name to this host's address
//     sends its own name, and is refused.
//  3. An Origin, when present, must match the Host, and a browser's
//     Sec-Fetch-Site must not be cross-site: no other site's page may use
//     the API, even through a logged-in console.
//  4. With admin.auth.bearer_token set, everything but the console's
//     page and static files, the session endpoint and (unless
//     protect_metrics) /metrics needs `Authorization: Bearer <token>` or
//     the console's session cookie; else 401 with WWW-Authenticate.
//  5. A request that is not GET or HEAD changes state: it must be POST
//     with Content-Type: application/json, which no HTML form and no
//     cross-site script can send without the browser asking first.
//
// Settings are read from the config in force at each request, so that a
// reload rotates the token and edits the allowed hosts.

// access is what a path asks of a request.
type access int

const (
	accessProbe   access = iota // 1 only
	accessOpen                  // 2, 3, 5: no token
	accessToken                 // 2 to 5
	accessMetrics               // accessOpen, or accessToken with protect_metrics
)

func (d *Daemon) accessOf(r *http.Request) access {
	switch p := r.URL.Path; {
	case p == "/healthz" || p == "/readyz":
		return accessProbe
	case p == "/metrics":
		return accessMetrics
	case p == sessionPath || p == sessionPath+"/logout":
		return accessOpen
	case consolePage(r):
		return accessOpen
	}
	return accessToken
}

// consolePage reports whether r asks for the console's page or one of its
// static files.
func consolePage(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, consoleAssets))
}

// adminGuard applies the access control to every admin request.
type adminGuard struct {
	d        *Daemon
	next     http.Handler
	sessions *sessions
	local    localAddrs
	// listenName is the host name admin.listen gives ("ops-box:9090"),
	// lower case, or "" for an address: the name the operator, and the
	// CLI, call the listener by.
	listenName string
}

func (g *adminGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	acc := g.d.accessOf(r)
	if acc == accessProbe {
		g.next.ServeHTTP(w, r)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	a := g.d.snap.Load().File.Admin
	if !g.hostAllowed(r.Host, a.AllowedHosts) {
		g.refuse(w, r, http.StatusForbidden, "host", "Host "+quoteHost(r.Host)+" is not allowed on the admin listener; call it by a loopback address or add the name to admin.allowed_hosts")
		return
	}
	if msg := crossSite(r, consolePage(r)); msg != "" {
		g.refuse(w, r, http.StatusForbidden, "origin", msg)
		return
	}
	token := a.Auth.BearerToken.Reveal()
	needToken := acc == accessToken || acc == accessMetrics && a.Auth.ProtectMetrics
	if token != "" && needToken && !g.authenticated(r, token) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		g.refuse(w, r, http.StatusUnauthorized, "auth", "this admin endpoint needs admin.auth.bearer_token: send Authorization: Bearer <token> (the CLI reads it from SWITCHBOARD_ADMIN_TOKEN or --token-file)")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, HEAD, POST")
			g.refuse(w, r, http.StatusMethodNotAllowed, "method", "method "+r.Method+" is not allowed; admin actions are POST with a JSON body")
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			g.refuse(w, r, http.StatusUnsupportedMediaType, "content_type", "admin actions take Content-Type: application/json")
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

func (g *adminGuard) refuse(w http.ResponseWriter, r *http.Request, status int, reason, msg string) {
	g.d.log.Warn("admin request refused", "reason", reason, "status", status, "method", r.Method,
		"path", r.URL.Path, "host", r.Host, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
	writeJSON(w, status, map[string]string{"error": msg})
}

// authenticated reports whether r carries the token, in the Authorization
// header (scheme matched without regard to case, RFC 9110) or as a
// session cookie obtained with it.
func (g *adminGuard) authenticated(r *http.Request, token string) bool {
	want := sha256.Sum256([]byte(token))
	if got, ok := sources.BearerToken(r.Header.Get("Authorization")); ok {
		have := sha256.Sum256([]byte(got))
		return subtle.ConstantTimeCompare(have[:], want[:]) == 1
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return g.sessions.valid(c.Value, want)
	}
	return false
}

// hostAllowed reports whether a request's Host names this listener (see
// the top of the file).
func (g *adminGuard) hostAllowed(host string, allowed []string) bool {
	if host == "" {
		return false
	}
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = strings.Trim(host, "[]"), ""
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "localhost" || name == g.listenName && name != "" {
		return true
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		ip = ip.Unmap().WithZone("")
		if ip.IsLoopback() || g.local.has(ip, g.d.adminLn.Addr()) {
			return true
		}
	}
	for _, a := range allowed {
		an, ap, err := net.SplitHostPort(a)
		if err != nil {
			an, ap = strings.Trim(a, "[]"), ""
		}
		if strings.EqualFold(strings.TrimSuffix(an, "."), name) && (ap == "" || ap == port) {
			return true
		}
	}
	return false
}

// listenName is the host name of a listen address, lower case, or ""
// when it gives an address or none.
func listenName(listen string) string {
	host, _, err := net.SplitHostPort(listen)
	if _, perr := netip.ParseAddr(host); err != nil || perr == nil {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100] + "…"
	}
	return `"` + h + `"`
}

// crossSite says why a browser request comes from another site, or "".
// The console's page may be reached by a link from anywhere; it carries
// no data.
func crossSite(r *http.Request, page bool) string {
	if site := r.Header.Get("Sec-Fetch-Site"); !page && (site == "cross-site" || site == "same-site") {
		return "cross-site requests are not allowed on the admin listener"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || !sameHost(u, r.Host) {
		return "Origin " + quoteHost(origin) + " does not match Host " + quoteHost(r.Host) + "; the admin API answers only its own pages"
	}
	return ""
}

// sameHost compares an Origin with a Host, default ports filled in from
// the Origin's scheme.
func sameHost(origin *url.URL, host string) bool {
	def := map[string]string{"http": "80", "https": "443"}[origin.Scheme]
	oport := origin.Port()
	if oport == "" {
		oport = def
	}
	hname, hport, err := net.SplitHostPort(host)
	if err != nil {
		hname, hport = strings.Trim(host, "[]"), def
	}
	return strings.EqualFold(origin.Hostname(), hname) && oport == hport
}

// localAddrs answers whether an address belongs to the listener: its own
// address, or for a wildcard listener any address of this host's
// interfaces (what a probe or a scraper in the same network uses), looked
// up at most every few seconds.
type localAddrs struct {
	mu    sync.Mutex
	at    time.Time
	addrs []netip.Addr
}

func (l *localAddrs) has(ip netip.Addr, ln net.Addr) bool {
	if tcp, ok := ln.(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() {
		own, _ := netip.AddrFromSlice(tcp.IP)
		return own.Unmap() == ip
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.at) > 5*time.Second {
		l.addrs = l.addrs[:0]
		if list, err := net.InterfaceAddrs(); err == nil {
			for _, a := range list {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					l.addrs = append(l.addrs, p.Addr().Unmap().WithZone(""))
				}
			}
		}
		l.at = time.Now()
	}
	return slices.Contains(l.addrs, ip)
}

// adminHandler is the admin listener: every route behind adminGuard.
func (d *Daemon) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", d.serveReady)
	mux.Handle("GET /metrics", redactedMetrics(promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{})))
	mux.HandleFunc("POST /-/reload", d.serveReload)
	d.dlqRoutes(mux)
	// GET /api/dlq/{id} would take these for ids.
	for _, p := range []string{"/api/dlq/replay", "/api/dlq/purge"} {
		mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": p + " takes POST with a JSON body"})
		})
	}
	g := &adminGuard{d: d, next: mux, sessions: newSessions(), listenName: listenName(d.snap.Load().File.Admin.Listen)}
	g.sessionRoutes(mux)
	d.pprofRoutes(mux)
	d.mountConsole(mux)
	return g
}

func (d *Daemon) serveReady(w http.ResponseWriter, r *http.Request) {
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
	// A queue that cannot store events (its disk failing, a shared
	// queue's servers out of reach) would answer every webhook 503.
	if q, ok := d.queue.(interface{ Ready() error }); ok {
		if err := q.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "queue not ready", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// pprofRoutes serves profiles for diagnosing a slow or hungry daemon, when
// admin.pprof is on; off, they answer 404 like any unknown path.
func (d *Daemon) pprofRoutes(mux *http.ServeMux) {
	on := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !d.snap.Load().File.Admin.Pprof {
				http.NotFound(w, r)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /debug/pprof/", on(pprof.Index))
	mux.HandleFunc("GET /debug/pprof/profile", on(pprof.Profile))
	mux.HandleFunc("GET /debug/pprof/trace", on(pprof.Trace))
}

// redactedMetrics passes the scrape through the redactor. Labels carry
// only names from the config and fixed reasons, but a name is the
// operator's choice; the answer is built uncompressed so that it can be
// read.
func redactedMetrics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.Clone(r.Context())
		r.Header.Del("Accept-Encoding")
		buf := &bufferedAnswer{header: http.Header{}, status: http.StatusOK}
		h.ServeHTTP(buf, r)
		for k, v := range buf.header {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(buf.status)
		w.Write(redact.Current().Bytes(buf.body.Bytes()))
	})
}

type bufferedAnswer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedAnswer) Header() http.Header         { return b.header }
func (b *bufferedAnswer) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedAnswer) WriteHeader(status int)      { b.status = status }

// logConfigWarnings logs what `check` warns about in f: every warning at
// start (was nil), and after a reload those the running config (was) did
// not have, so that an edit that adds one is not silent.
func logConfigWarnings(log *slog.Logger, was, f *config.File) {
	var said config.Problems
	if was != nil {
		said = was.Warnings()
	}
	for _, w := range f.Warnings() {
		if !slices.Contains(said, w) {
			log.Warn(w.Msg, "setting", w.Path)
		}
	}
}
