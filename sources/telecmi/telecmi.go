// Package telecmi is the source type for TeleCMI (CHUB) live call events and
// call detail records (CDRs).
//
// TeleCMI notifies one URL per app, by POST with a JSON body (what its
// documentation and example receivers show), or by GET. The GET format is not
// documented; this source reads the same keys as query parameters. A POST
// with an application/x-www-form-urlencoded body is read the same way. The
// `token` parameter is the shared secret (see below) and never enters the
// payload.
//
// Normalization:
//   - event: "telecmi:event" when the payload's `type` is "event" (a live
//     event), "telecmi:cdr" when it is "cdr" (matched without regard to
//     case). Any other or no `type` is refused with 400 no_event.
//   - status: the payload's `status`, verbatim (waiting, started, ringing,
//     answered, hangup for live events; answered, missed for CDRs); omitted
//     when absent.
//   - id: cmiuuid ":" leg ":" type ":" status, leaving out the leg and the
//     status when the payload has none (CDRs of incoming calls have no leg):
//     "ccd826f9-...:a:event:answered", "5b7c...:cdr:missed". cmiuuid
//     identifies one leg of one call, so the id is the same for a resend of
//     the same notification and different for each change of status. The
//     2019 samples' `cmiuid` (sic) stands in for cmiuuid. Without either, the
//     id is router.DeriveID over the normalized payload.
//   - time: the payload's `time`, milliseconds since the Unix epoch (a value
//     below 1e11 is taken as seconds); the receipt time when absent.
//   - payload: the notification's object, normalized so that rules see the
//     same types whatever the transport:
//     `app_id` is always present when `app_id` or `appid` was sent (CDRs
//     send `appid`); `appid` is kept too when sent. Likewise `cmiuuid` is
//     added from `cmiuid`. `time`, `app_id`, `appid`, `answeredsec` and
//     `waitedsec` written as digit strings become numbers. `record`,
//     `voicemail` and `click_to_call` written as "true"/"false" become
//     booleans. `custom` and `extra_params` holding an object encoded as a
//     string become that object, and the string as sent is kept in
//     `custom_raw` / `extra_params_raw`; a string that is not an object stays
//     as it is. Phone-number fields (`from`, `to`, `virtual_number`,
//     `callerid`) keep the type they were sent with: a JSON number stays a
//     number, a string (and every query or form value) stays a string, so
//     leading zeros and "+" survive and nothing is ever written with an
//     exponent. Every other field is kept as sent.
//
// TeleCMI signs nothing. The source can require a shared `token`, given as
// the last path segment (/hooks/<name>/<token>) or as a `token` query
// parameter (401 without it), and can restrict the client addresses with
// `allow_ips` (403 from others). Both are checked before the body is read.
package telecmi

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"switchboard/config"
	"switchboard/router"
	"switchboard/sources"
)

// Event names.
const (
	EventLive = "telecmi:event"
	EventCDR  = "telecmi:cdr"
)

func init() {
	sources.Register("telecmi", func() sources.Builder { return &Options{} })
	router.DeclareEvent(EventLive, "waiting", "started", "ringing", "answered", "hangup")
	router.DeclareEvent(EventCDR, "answered", "missed")
}

// minTokenLen keeps the token out of guessing range: it is the only
// secret, and it travels in the URL.
const minTokenLen = 16

// Options are the telecmi source's settings.
type Options struct {
	// Token, when set, must be the last path segment or the `token` query
	// parameter of every request.
	Token config.Secret `koanf:"token"`
	// AllowIPs, when set, lists the client addresses (IPs or CIDR
	// prefixes) that may post.
	AllowIPs []string `koanf:"allow_ips"`
	// TrustForwardedFor takes the client address from the first
	// X-Forwarded-For entry instead of the connection's peer.
	TrustForwardedFor bool `koanf:"trust_forwarded_for"`
}

// Events implements sources.Catalog.
func (o *Options) Events() []string { return []string{EventLive, EventCDR} }

// Build implements sources.Builder.
func (o *Options) Build(info sources.Info) (any, error) {
	var ps config.Problems
	if tok := o.Token.Reveal(); tok != "" {
		switch {
		case strings.IndexFunc(tok, func(r rune) bool { return !isTokenChar(r) }) >= 0:
			ps.Add("token", "holds characters that would need escaping in a URL; use only letters, digits, '-', '_', '.' and '~' (e.g. the output of `openssl rand -hex 16`)")
		case len(tok) < minTokenLen:
			ps.Add("token", "is %d characters long; use at least %d random characters (e.g. the output of `openssl rand -hex 16`), as the token is the only secret", len(tok), minTokenLen)
		}
	}
	allow := make([]netip.Prefix, 0, len(o.AllowIPs))
	for i, s := range o.AllowIPs {
		p, err := parsePrefix(s)
		if err != nil {
			ps.Add(fmt.Sprintf("allow_ips[%d]", i), "%q is not an IP address or CIDR prefix; write it like 203.0.113.7, 203.0.113.0/24 or 2001:db8::/32", s)
			continue
		}
		allow = append(allow, p)
	}
	if o.TrustForwardedFor && len(o.AllowIPs) == 0 {
		ps.Add("trust_forwarded_for", "is true but allow_ips is empty, so no address is checked; list TeleCMI's addresses in allow_ips or remove trust_forwarded_for")
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return &Source{name: info.Name, token: []byte(o.Token.Reveal()), allow: allow, trustXFF: o.TrustForwardedFor}, nil
}

func isTokenChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '~'
}

// parsePrefix reads an address (a one-address prefix) or a CIDR prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("IPv4-mapped prefix shorter than /96")
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Source parses TeleCMI notifications.
type Source struct {
	name     string
	token    []byte // empty: no token required
	allow    []netip.Prefix
	trustXFF bool
}

// Methods implements sources.Methods: TeleCMI posts, or GETs with a query.
func (s *Source) Methods() []string { return []string{http.MethodGet, http.MethodPost} }

// TakesSubpath implements sources.Subpaths: with a token, the webhook URL
// may end in it (/hooks/<name>/<token>).
func (s *Source) TakesSubpath() bool { return len(s.token) > 0 }

// Precheck implements sources.Prechecker: the address and the token are
// in the request line and headers.
func (s *Source) Precheck(req *sources.Request) error {
	query, _ := url.ParseQuery(req.HTTP.URL.RawQuery)
	return s.authorize(req, query)
}

// Parse implements sources.HTTPSource.
func (s *Source) Parse(req *sources.Request) (*sources.Result, error) {
	// A malformed query matters only when it carries the event: decode
	// reports it then. The token is looked up in what could be read.
	query, qerr := url.ParseQuery(req.HTTP.URL.RawQuery)
	if err := s.authorize(req, query); err != nil {
		return nil, err
	}
	n, err := decode(req, query, qerr)
	if err != nil {
		return nil, err
	}
	ev, err := s.event(n, req)
	if err != nil {
		return nil, err
	}
	return sources.OneEvent(ev), nil
}

// authorize checks the client address (403 when it is not allowed: no
// credential would help), then the token (401). Neither message repeats
// the token.
func (s *Source) authorize(req *sources.Request, query map[string][]string) error {
	return sources.WithChallenge(s.check(req, query), sources.SchemeChallenge("Token", s.name))
}

func (s *Source) check(req *sources.Request, query map[string][]string) error {
	if len(s.allow) > 0 {
		addr, from, err := s.clientAddr(req.HTTP)
		if err != nil {
			return err
		}
		if !s.allowed(addr) {
			return sources.Reject(http.StatusForbidden, "ip",
				"client address %s (from %s) is not in allow_ips; add it if this is TeleCMI", addr, from)
		}
	}
	if len(s.token) == 0 {
		return nil
	}
	if req.Subpath != "" && subtle.ConstantTimeCompare([]byte(req.Subpath), s.token) == 1 {
		return nil
	}
	qt, hasQT := query["token"]
	if hasQT && len(qt) > 0 && subtle.ConstantTimeCompare([]byte(qt[0]), s.token) == 1 {
		return nil
	}
	switch {
	case req.Subpath != "":
		return sources.Reject(http.StatusUnauthorized, "auth",
			"wrong token in the URL path; the webhook URL must end in the source's token: /hooks/%s/<token>", s.name)
	case hasQT:
		return sources.Reject(http.StatusUnauthorized, "auth", "wrong token query parameter; it must equal the source's token")
	}
	return sources.Reject(http.StatusUnauthorized, "auth",
		"missing token: end the webhook URL with the source's token (/hooks/%s/<token>) or add ?token=<token>", s.name)
}

// clientAddr is the connection's peer or, when trusted, the first
// X-Forwarded-For entry; from says which, for the rejection message.
func (s *Source) clientAddr(r *http.Request) (netip.Addr, string, error) {
	if s.trustXFF {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			a, err := netip.ParseAddr(strings.TrimSpace(first))
			if err != nil {
				return netip.Addr{}, "", sources.Reject(http.StatusForbidden, "ip",
					"cannot read the client address from X-Forwarded-For (%q is not an IP address)", strings.TrimSpace(first))
			}
			return a.Unmap().WithZone(""), "X-Forwarded-For", nil
		}
	}
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, "", sources.Reject(http.StatusForbidden, "ip", "cannot read the client address %q of the connection", r.RemoteAddr)
	}
	return a.Unmap().WithZone(""), "the connection", nil
}

func (s *Source) allowed(a netip.Addr) bool {
	for _, p := range s.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var (
	_ sources.Builder    = (*Options)(nil)
	_ sources.Catalog    = (*Options)(nil)
	_ sources.HTTPSource = (*Source)(nil)
	_ sources.Methods    = (*Source)(nil)
	_ sources.Subpaths   = (*Source)(nil)
	_ sources.Prechecker = (*Source)(nil)
)
