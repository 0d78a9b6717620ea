package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"switchboard/daemon"
	"switchboard/daemon/daemontest"
)

const adminToken = "admin-token-0123456789abcdef"

func adminConfig(dir, admin string) string {
	return `
server: { listen: "127.0.0.1:0" }
admin:
  listen: "127.0.0.1:0"
` + admin + `
queue: { dir: ` + filepath.Join(dir, "q") + ` }
sources:
  app: { type: generic }
sinks:
  archive: { type: file, path: ` + filepath.Join(dir, "events.jsonl") + ` }
rules:
  - { name: all, to: [archive] }
`
}

func startAdmin(t *testing.T, admin string) (*daemon.Daemon, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "switchboard.yaml")
	if err := os.WriteFile(path, []byte(adminConfig(dir, admin)), 0o600); err != nil {
		t.Fatal(err)
	}
	return daemontest.StartFile(t, path), path
}

// endpoint is one admin endpoint and what it answers a request that
// passes the access control.
type endpoint struct {
	method, path, body string
	open               bool // needs no token
	probe              bool // needs nothing at all
}

var endpoints = []endpoint{
	{method: "GET", path: "/healthz", probe: true},
	{method: "GET", path: "/readyz", probe: true},
	{method: "GET", path: "/metrics", open: true},
	{method: "POST", path: "/-/reload", body: `{}`},
	{method: "GET", path: "/api/dlq"},
	{method: "GET", path: "/api/dlq/nope"},
	{method: "POST", path: "/api/dlq/replay", body: `{"all": true}`},
	{method: "POST", path: "/api/dlq/purge", body: `{"all": true}`},
	{method: "GET", path: "/debug/pprof/"},
	{method: "GET", path: "/api/session", open: true},
	{method: "POST", path: "/api/session", body: `{"token": "` + adminToken + `"}`, open: true},
	{method: "POST", path: "/api/session/logout", body: `{}`, open: true},
	{method: "GET", path: "/", open: true},
	{method: "GET", path: "/console/app.js", open: true},
	{method: "GET", path: "/no/such/thing"},
}

// credential is how a request authenticates.
type credential struct {
	name  string
	apply func(*http.Request, string) // cookie passed in
	valid bool
}

var credentials = []credential{
	{"no token", func(*http.Request, string) {}, false},
	{"wrong token", func(r *http.Request, _ string) { r.Header.Set("Authorization", "Bearer nope-"+adminToken) }, false},
	{"basic scheme", func(r *http.Request, _ string) { r.SetBasicAuth("admin", adminToken) }, false},
	{"right token", func(r *http.Request, _ string) { r.Header.Set("Authorization", "Bearer "+adminToken) }, true},
	{"right token, scheme in lower case", func(r *http.Request, _ string) { r.Header.Set("Authorization", "bearer  "+adminToken) }, true},
	{"session cookie", func(r *http.Request, c string) { r.AddCookie(&http.Cookie{Name: "switchboard_session", Value: c}) }, true},
	{"forged cookie", func(r *http.Request, _ string) {
		r.AddCookie(&http.Cookie{Name: "switchboard_session", Value: "forged"})
	}, false},
}

// attack is what else is wrong with a request.
type attack struct {
	name   string
	apply  func(*http.Request)
	status func(e endpoint) int // 0: not refused for it
}

func refusedUnlessProbe(status int) func(endpoint) int {
	return func(e endpoint) int {
		if e.probe {
			return 0
		}
		return status
	}
}

var attacks = []attack{
	{"none", func(*http.Request) {}, func(endpoint) int { return 0 }},
	{"foreign Host (DNS rebinding)", func(r *http.Request) { r.Host = "evil.example:9090" }, refusedUnlessProbe(403)},
	{"foreign Origin", func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }, refusedUnlessProbe(403)},
	{"Origin on another port", func(r *http.Request) { r.Header.Set("Origin", "http://127.0.0.1:1") }, refusedUnlessProbe(403)},
	{"null Origin", func(r *http.Request) { r.Header.Set("Origin", "null") }, refusedUnlessProbe(403)},
	{"cross-site fetch", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }, func(e endpoint) int {
		if e.probe || e.open && e.method == "GET" && (e.path == "/" || strings.HasPrefix(e.path, "/console/")) {
			return 0 // the console's page may be linked to
		}
		return 403
	}},
	{"text/plain body (a form or no-cors fetch)", func(r *http.Request) {
		if r.Method == "POST" {
			r.Header.Set("Content-Type", "text/plain")
		}
	}, func(e endpoint) int {
		if e.method == "POST" {
			return 415
		}
		return 0
	}},
	{"GET on a POST endpoint", func(r *http.Request) {
		if r.Method == "POST" {
			r.Method = "GET"
		}
	}, func(e endpoint) int {
		if e.method == "POST" && e.path != "/api/session" {
			return 405
		}
		return 0
	}},
	{"PUT", func(r *http.Request) {
		if r.Method == "POST" {
			r.Method = "PUT"
		}
	}, func(e endpoint) int {
		if e.method == "POST" {
			return 405
		}
		return 0
	}},
}

// wantStatus is the contract: probes always answer; a foreign Host or
// Origin is refused (403) with or without a token; then a missing or
// wrong token (401); then what is wrong with the method or body.
func wantStatus(e endpoint, c credential, a attack, baseline int) int {
	st := a.status(e)
	if st == 403 {
		return 403
	}
	if !e.open && !e.probe && !c.valid {
		return 401
	}
	if st != 0 {
		return st
	}
	return baseline
}

func adminRequest(t *testing.T, d *daemon.Daemon, e endpoint) *http.Request {
	t.Helper()
	req, err := http.NewRequest(e.method, "http://"+d.AdminAddr()+e.path, strings.NewReader(e.body))
	if err != nil {
		t.Fatal(err)
	}
	if e.method == "POST" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func login(t *testing.T, d *daemon.Daemon, token string) *http.Cookie {
	t.Helper()
	req := adminRequest(t, d, endpoint{method: "POST", path: "/api/session", body: `{"token": "` + token + `"}`})
	resp, body := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "switchboard_session" {
			return c
		}
	}
	t.Fatalf("login set no session cookie: %v", resp.Header)
	return nil
}

func TestAdminAccessEveryEndpointCredentialAndAttack(t *testing.T) {
	d, _ := startAdmin(t, "  pprof: true\n  auth: { bearer_token: "+adminToken+" }")
	cookie := login(t, d, adminToken).Value
	baseline := map[string]int{}
	for _, e := range endpoints {
		req := adminRequest(t, d, e)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, body := do(t, req)
		baseline[e.method+" "+e.path] = resp.StatusCode
		if resp.StatusCode == 401 || resp.StatusCode == 403 || resp.StatusCode >= 405 && resp.StatusCode < 500 && resp.StatusCode != 415 {
			t.Fatalf("%s %s with the token: %d %s", e.method, e.path, resp.StatusCode, body)
		}
	}
	for _, e := range endpoints {
		for _, c := range credentials {
			for _, a := range attacks {
				req := adminRequest(t, d, e)
				c.apply(req, cookie)
				a.apply(req)
				want := wantStatus(e, c, a, baseline[e.method+" "+e.path])
				if e.path == "/api/session/logout" && c.name == "session cookie" && a.name == "none" {
					continue // would end the session the rest of the table uses
				}
				resp, body := do(t, req)
				if resp.StatusCode != want {
					t.Errorf("%s %s, %s, %s: %d %s; want %d", e.method, e.path, c.name, a.name, resp.StatusCode, body, want)
				}
				if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("%s %s, %s, %s: 401 with WWW-Authenticate %q", e.method, e.path, c.name, a.name, resp.Header.Get("WWW-Authenticate"))
				}
			}
		}
	}
}

func TestAdminWithoutTokenStillRefusesForeignPagesAndForms(t *testing.T) {
	d, _ := startAdmin(t, "")
	for _, e := range endpoints {
		base := adminRequest(t, d, e)
		resp, _ := do(t, base)
		for _, a := range attacks {
			req := adminRequest(t, d, e)
			a.apply(req)
			want := a.status(e)
			if want == 0 {
				want = resp.StatusCode
			}
			if got, body := do(t, req); got.StatusCode != want {
				t.Errorf("%s %s, %s: %d %s; want %d", e.method, e.path, a.name, got.StatusCode, body, want)
			}
		}
	}
}

func TestPprofIsOffByDefault(t *testing.T) {
	d, _ := startAdmin(t, "")
	if st, _ := daemontest.Admin(t, d, "GET", "/debug/pprof/", "", ""); st != 404 {
		t.Errorf("pprof answered %d, want 404", st)
	}
	d, _ = startAdmin(t, "  pprof: true")
	if st, _ := daemontest.Admin(t, d, "GET", "/debug/pprof/", "", ""); st != 200 {
		t.Errorf("pprof on answered %d, want 200", st)
	}
}

func TestProtectMetrics(t *testing.T) {
	d, _ := startAdmin(t, "  auth: { bearer_token: "+adminToken+", protect_metrics: true }")
	if st, _ := daemontest.Admin(t, d, "GET", "/metrics", "", ""); st != 401 {
		t.Errorf("metrics without token: %d", st)
	}
	if st, _ := daemontest.Admin(t, d, "GET", "/metrics", adminToken, ""); st != 200 {
		t.Errorf("metrics with token: %d", st)
	}
	if st, _ := daemontest.Admin(t, d, "GET", "/healthz", "", ""); st != 200 {
		t.Errorf("healthz: %d", st)
	}
}

func TestSessionCookieIsHttpOnlyStrictAndEndsOnLogoutAndTokenChange(t *testing.T) {
	d, path := startAdmin(t, "  auth: { bearer_token: "+adminToken+" }")
	c := login(t, d, adminToken)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure {
		t.Errorf("cookie %+v", c)
	}
	get := func(c *http.Cookie) int {
		req := adminRequest(t, d, endpoint{method: "GET", path: "/api/dlq"})
		req.AddCookie(c)
		resp, _ := do(t, req)
		return resp.StatusCode
	}
	if st := get(c); st != 200 {
		t.Fatalf("with the cookie: %d", st)
	}
	// Over TLS (here: a proxy terminating it) the cookie is Secure.
	req := adminRequest(t, d, endpoint{method: "POST", path: "/api/session", body: `{"token": "` + adminToken + `"}`})
	req.Header.Set("X-Forwarded-Proto", "https")
	if resp, _ := do(t, req); len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure {
		t.Errorf("cookie over TLS: %v", resp.Cookies())
	}
	// A wrong token gets no cookie.
	req = adminRequest(t, d, endpoint{method: "POST", path: "/api/session", body: `{"token": "guess"}`})
	if resp, _ := do(t, req); resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Errorf("wrong token: %d %v", resp.StatusCode, resp.Cookies())
	}
	// Logout ends the session on the server, not just in the browser.
	req = adminRequest(t, d, endpoint{method: "POST", path: "/api/session/logout", body: `{}`})
	req.AddCookie(c)
	if resp, _ := do(t, req); resp.StatusCode != 200 || resp.Cookies()[0].MaxAge >= 0 {
		t.Errorf("logout: %d %v", resp.StatusCode, resp.Cookies())
	}
	if st := get(c); st != 401 {
		t.Errorf("after logout: %d", st)
	}
	// A new token ends every session opened with the old one.
	c = login(t, d, adminToken)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(b), adminToken, "rotated-"+adminToken, 1)), 0o600)
	if st, body := daemontest.Admin(t, d, "POST", "/-/reload", adminToken, "{}"); st != 200 {
		t.Fatalf("reload: %d %s", st, body)
	}
	if st := get(c); st != 401 {
		t.Errorf("session of the old token after rotation: %d", st)
	}
	if st, _ := daemontest.Admin(t, d, "GET", "/api/dlq", "rotated-"+adminToken, ""); st != 200 {
		t.Errorf("new token: %d", st)
	}
}

func TestSessionStatusTellsTheConsoleWhetherToAskForTheToken(t *testing.T) {
	d, _ := startAdmin(t, "  auth: { bearer_token: "+adminToken+" }")
	if _, body := daemontest.Admin(t, d, "GET", "/api/session", "", ""); !strings.Contains(body, `"auth_required":true`) || !strings.Contains(body, `"authenticated":false`) {
		t.Errorf("got %s", body)
	}
	if _, body := daemontest.Admin(t, d, "GET", "/api/session", adminToken, ""); !strings.Contains(body, `"authenticated":true`) {
		t.Errorf("got %s", body)
	}
	d, _ = startAdmin(t, "")
	if _, body := daemontest.Admin(t, d, "GET", "/api/session", "", ""); !strings.Contains(body, `"auth_required":false`) {
		t.Errorf("got %s", body)
	}
}

func TestAllowedHosts(t *testing.T) {
	d, _ := startAdmin(t, "  allowed_hosts: [switchboard.monitoring.svc, \"ops.example.com:8443\", 192.0.2.10, \"[2001:db8::7]\"]")
	_, port, _ := net.SplitHostPort(d.AdminAddr())
	for host, want := range map[string]int{
		"localhost:" + port:                 200,
		"LOCALHOST:1234":                    200,
		"127.0.0.1:" + port:                 200,
		"127.0.0.2":                         200,
		"[::1]:" + port:                     200,
		"switchboard.monitoring.svc:9090":   200,
		"switchboard.monitoring.svc.":       200,
		"ops.example.com:8443":              200,
		"ops.example.com:9090":              403,
		"evil.switchboard.monitoring.svc":   403,
		"localhost.evil.example":            403,
		"10.11.12.13:" + port:               403, // not this listener's address
		"switchboard.monitoring.svc.evil.x": 403,
		"192.0.2.10:19090":                  200, // a port published by a container runtime
		"[2001:db8::7]:9090":                200,
		"0.0.0.0:" + port:                   403, // browsers send it for http://0.0.0.0
		"[::ffff:127.0.0.1]:" + port:        200,
	} {
		req := adminRequest(t, d, endpoint{method: "GET", path: "/api/dlq"})
		req.Host = host
		if resp, body := do(t, req); resp.StatusCode != want {
			t.Errorf("Host %q: %d %s; want %d", host, resp.StatusCode, body, want)
		}
	}
}

func TestRequestWithoutHostIsRefused(t *testing.T) {
	d, _ := startAdmin(t, "")
	conn, err := net.Dial("tcp", d.AdminAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /api/dlq HTTP/1.0\r\n\r\n")
	b, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(b), "HTTP/1.0 403") {
		t.Errorf("got %q", b)
	}
}

// A wildcard listener (the Kubernetes case: probes and scrapers call the
// pod's address) takes the addresses of this host's interfaces as Host.
func TestWildcardListenerTakesItsOwnAddresses(t *testing.T) {
	var own netip.Addr
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() && p.Addr().Is4() {
			own = p.Addr()
			break
		}
	}
	if !own.IsValid() {
		t.Skip("no non-loopback IPv4 address on this host")
	}
	dir := t.TempDir()
	cfg := strings.Replace(adminConfig(dir, ""), `listen: "127.0.0.1:0"`+"\n\n", `listen: "0.0.0.0:0"`+"\n\n", 1)
	cfg = strings.Replace(cfg, "admin:\n  listen: \"127.0.0.1:0\"", "admin:\n  listen: \"0.0.0.0:0\"", 1)
	d := daemontest.Start(t, cfg)
	_, port, _ := net.SplitHostPort(d.AdminAddr())
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%s/api/dlq", port), nil)
	req.Host = net.JoinHostPort(own.String(), port)
	if resp, body := do(t, req); resp.StatusCode != 200 {
		t.Errorf("Host %s: %d %s", req.Host, resp.StatusCode, body)
	}
}

// Paths that the mux cleans or redirects never reach a protected handler
// on the strength of an open prefix.
func TestAdminPathTricksNeedTheToken(t *testing.T) {
	d, _ := startAdmin(t, "  pprof: true\n  auth: { bearer_token: "+adminToken+" }")
	for _, p := range []string{
		"/console/../api/dlq", "/console/%2e%2e/api/dlq", "/console/..%2fapi/dlq", "//api/dlq", "/healthz/../api/dlq",
		"/metrics/../api/dlq", "/api/session/../dlq", "/./api/dlq", "/api/dlq/", "/API/DLQ", "/debug/pprof/goroutine",
		"/console/../debug/pprof/", "/healthz/../-/reload",
	} {
		conn, err := net.Dial("tcp", d.AdminAddr())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", p)
		b, _ := io.ReadAll(conn)
		conn.Close()
		status, _, _ := strings.Cut(string(b), "\r\n")
		if strings.Contains(status, " 200 ") || strings.Contains(string(b), `"event_id"`) || strings.Contains(string(b), "goroutine profile") {
			t.Errorf("GET %s without the token: %s", p, status)
		}
	}
}

// The host name admin.listen gives is the listener's own: the operator and
// the CLI (dlq, tap, history) call it by that name.
func TestListenNameIsAnAllowedHost(t *testing.T) {
	name, err := os.Hostname()
	if err != nil || name == "" || strings.EqualFold(name, "localhost") {
		t.Skip("no host name other than localhost")
	}
	if _, err := net.LookupHost(name); err != nil {
		t.Skipf("host name %s does not resolve: %v", name, err)
	}
	dir := t.TempDir()
	cfg := strings.Replace(adminConfig(dir, ""), "admin:\n  listen: \"127.0.0.1:0\"", "admin:\n  listen: \""+strings.ToUpper(name)+":0\"", 1)
	d := daemontest.Start(t, cfg)
	_, port, _ := net.SplitHostPort(d.AdminAddr())
	for host, want := range map[string]int{
		name + ":" + port:              200,
		strings.ToUpper(name) + ".":    200,
		"evil." + name + ":" + port:    403,
		name + ".evil.example:" + port: 403,
	} {
		req := adminRequest(t, d, endpoint{method: "GET", path: "/api/dlq"})
		req.Host = host
		if resp, body := do(t, req); resp.StatusCode != want {
			t.Errorf("Host %q: %d %s; want %d", host, resp.StatusCode, body, want)
		}
	}
}
