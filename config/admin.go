package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// MinAdminToken is the admin token length below which `check` warns: the
// token is all that stands between the network and the dead letters.
const MinAdminToken = 16

func (a *Admin) check(ps *Problems) {
	for i, h := range a.AllowedHosts {
		if msg := badAllowedHost(h); msg != "" {
			ps.Add(fmt.Sprintf("admin.allowed_hosts[%d]", i), "%q %s; write a host name as requests give it in Host, e.g. switchboard.monitoring.svc or switchboard.example.com:9090", h, msg)
		}
	}
}

func badAllowedHost(h string) string {
	switch {
	case strings.TrimSpace(h) == "":
		return "is empty"
	case strings.Contains(h, "://"):
		return "is a URL, not a host"
	case strings.ContainsAny(h, "/?# \t,"):
		return "is not a host name"
	}
	if _, port, err := net.SplitHostPort(h); err == nil && port == "" {
		return "ends in a colon without a port"
	}
	return ""
}

// Warnings lists what is allowed but unsafe or pointless in f, each at
// its YAML path: `check` prints them and the daemon logs them at start.
func (f *File) Warnings() Problems {
	var ws Problems
	a := f.Admin
	token := a.Auth.BearerToken.Reveal()
	if token == "" && !LoopbackListen(a.Listen) {
		ws.Add("admin.listen", "%q is reachable from other hosts and admin.auth sets no bearer_token: anyone who reaches it can reload, replay and purge dead letters and read their events; set admin.auth.bearer_token_file, or listen on 127.0.0.1", a.Listen)
	}
	if token != "" && len(token) < MinAdminToken {
		ws.Add("admin.auth.bearer_token", "is %d characters long; use at least %d random characters (e.g. the output of `openssl rand -hex 32`)", len(token), MinAdminToken)
	}
	if token == "" && a.Auth.ProtectMetrics {
		ws.Add("admin.auth.protect_metrics", "has no effect without admin.auth.bearer_token")
	}
	f.queueWarnings(&ws)
	return ws
}

// LoopbackListen reports whether a listen address only accepts
// connections from this host.
func LoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
