// Package email owns the "email" sink: it sends each event as one email
// over SMTP, addressed to every address of `to` and `cc`, its subject and
// bodies rendered from templates over the event. Messages are composed and
// sent with go-mail (github.com/wneessen/go-mail).
//
// Data flow: Send renders the message (a template that fails is a permanent
// failure), then sends it on the sink's one SMTP connection, dialling it
// (TCP, then STARTTLS or implicit TLS, then AUTH) when there is none. The
// connection stays open between messages and is closed after idleTimeout
// without one; a kept connection the server dropped meanwhile fails the
// NOOP go-mail sends first, and is redialled once at no cost to the
// delivery. Failures are classified: a 5xx reply to MAIL FROM, RCPT TO or
// DATA is permanent; 4xx replies, connection failures and timeouts are
// transient, and so is anything that fails while setting the connection up
// (TLS, AUTH): those are about the server or the settings, not the event,
// and a fix lets the queued messages through on their next attempt.
package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"switchboard/config"
	"switchboard/router"
	"switchboard/sinks"
)

// TLS modes.
const (
	TLSNone     = "none"
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
)

// DefaultSubject is the subject when the sink sets none.
const DefaultSubject = `[switchboard] {{ .event }}{{ with .status }} {{ . }}{{ end }} from {{ .source }}`

// idleTimeout is how long the connection is kept open after a message:
// long enough to carry a burst, short of the minutes after which servers
// drop an idle client (RFC 5321 4.5.3.2.7 asks them to wait 5).
const idleTimeout = 30 * time.Second

// SMTP are the settings of the connection to the server.
type SMTP struct {
	Host     string        `koanf:"host"`
	Port     int           `koanf:"port"`
	Username string        `koanf:"username"`
	Password config.Secret `koanf:"password"`
	TLS      string        `koanf:"tls"`
	Timeout  time.Duration `koanf:"timeout"`
	// InsecureSkipVerify accepts any certificate: for tests only; a
	// private CA belongs in CAFile.
	InsecureSkipVerify bool   `koanf:"insecure_skip_verify"`
	CAFile             string `koanf:"ca_file"`
}

// Options are the settings of an email sink.
type Options struct {
	SMTP    SMTP     `koanf:"smtp"`
	From    string   `koanf:"from"`
	To      []string `koanf:"to"`
	Cc      []string `koanf:"cc"`
	Subject string   `koanf:"subject"`
	// Body is the text/plain part; empty means defaultBody.
	Body string `koanf:"body"`
	// HTML, when set, is sent beside Body as multipart/alternative.
	HTML string `koanf:"html"`
}

func init() {
	sinks.Register("email", func() sinks.Builder {
		return &Options{SMTP: SMTP{TLS: TLSStartTLS, Timeout: 10 * time.Second}, Subject: DefaultSubject}
	})
}

// DefaultConcurrency is one: the sink sends over one SMTP connection.
func (o *Options) DefaultConcurrency() int { return 1 }

// Build checks every setting, parses the templates and prepares the
// client; it connects nowhere (ca_file is read, so that `check` finds a
// missing one).
func (o *Options) Build(info sinks.Info) (router.Sink, error) {
	var ps config.Problems
	s := &Sink{name: info.Name, timeout: o.SMTP.Timeout}

	tlsConf := o.SMTP.check(&ps)
	port := o.SMTP.Port
	if port == 0 {
		port = map[string]int{TLSNone: 25, TLSStartTLS: 587, TLSImplicit: 465}[o.SMTP.TLS]
	}
	s.server = net.JoinHostPort(o.SMTP.Host, strconv.Itoa(port))

	switch from, err := mail.ParseAddress(o.From); {
	case strings.TrimSpace(o.From) == "":
		ps.Add("from", `is required: the sender address, e.g. alerts@example.com or "Switchboard <alerts@example.com>"`)
	case err != nil:
		ps.Add("from", "%q is not an email address (%v); write it like alerts@example.com or \"Switchboard <alerts@example.com>\"", o.From, err)
	default:
		s.from = from
	}
	s.to = addresses(&ps, "to", o.To)
	if len(o.To) == 0 {
		ps.Add("to", "is required: the addresses to send to, e.g. [oncall@example.com]")
	}
	s.cc = addresses(&ps, "cc", o.Cc)

	subject := o.Subject
	if strings.TrimSpace(subject) == "" {
		subject = DefaultSubject
	}
	if t, err := router.ParseTemplate(info.Name+".subject", subject); err != nil {
		ps.Add("subject", "does not parse: %v", err)
	} else {
		s.subject = t
	}
	if strings.TrimSpace(o.Body) != "" {
		if t, err := router.ParseTemplate(info.Name+".body", o.Body); err != nil {
			ps.Add("body", "does not parse: %v", err)
		} else {
			s.body = t
		}
	}
	if strings.TrimSpace(o.HTML) != "" {
		if t, err := parseHTML(info.Name+".html", o.HTML); err != nil {
			ps.Add("html", "does not parse: %v", err)
		} else {
			s.html = t
		}
	}

	if len(ps) > 0 {
		return nil, ps
	}

	s.tlsConf = tlsConf
	s.implicitTLS = o.SMTP.TLS == TLSImplicit
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTimeout(o.SMTP.Timeout),
		gomail.WithTLSConfig(tlsConf),
		gomail.WithDialContextFunc(s.dialConn),
	}
	switch o.SMTP.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		// dialConn speaks TLS from the first byte; go-mail sees a TLS
		// connection (and so allows PLAIN and LOGIN) and, the server
		// offering no STARTTLS inside TLS, does not try it again.
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if o.SMTP.Username != "" {
		// The strongest mechanism the server offers; PLAIN and LOGIN only
		// over TLS, which Build has made sure of.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(o.SMTP.Username), gomail.WithPassword(o.SMTP.Password.Reveal()))
	}
	c, err := gomail.NewClient(o.SMTP.Host, opts...)
	if err != nil {
		return nil, config.Problems{{Path: "smtp", Msg: fmt.Sprintf("cannot set up the SMTP client: %v", err)}}
	}
	s.client = c
	return s, nil
}

// check reports problems with the connection settings and returns the TLS
// configuration to use.
func (c *SMTP) check(ps *config.Problems) *tls.Config {
	host := strings.TrimSpace(c.Host)
	switch {
	case host == "":
		ps.Add("smtp.host", "is required: the SMTP server's name, e.g. smtp.example.com")
	case strings.Contains(host, "://") || strings.ContainsAny(host, "/ "):
		ps.Add("smtp.host", "%q is not a host name; write the name alone, e.g. smtp.example.com (the port goes in smtp.port)", c.Host)
	case strings.Count(host, ":") == 1:
		ps.Add("smtp.host", "%q includes a port; write the name alone and set smtp.port", c.Host)
	}
	c.Host = host
	if c.Port < 0 || c.Port > 65535 {
		ps.Add("smtp.port", "%d is not a port; use 1-65535, or leave it out for 587 (starttls), 465 (tls) or 25 (none)", c.Port)
	}
	switch c.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		ps.Add("smtp.tls", "%q is not a TLS mode; use starttls (the default, port 587), tls (TLS from the first byte, port 465) or none (port 25)", c.TLS)
	}
	if c.Timeout <= 0 {
		ps.Add("smtp.timeout", "must be a positive duration, e.g. 10s")
	}
	switch {
	case c.Username != "" && c.Password == "":
		ps.Add("smtp.password", "is required with smtp.username, e.g. ${SMTP_PASSWORD}")
	case c.Username == "" && c.Password != "":
		ps.Add("smtp.username", "is required with smtp.password")
	case c.Username != "" && c.TLS == TLSNone:
		ps.Add("smtp.username", "is set but smtp.tls is none, so the password would cross the network in clear text; use tls: starttls or tls")
	}

	conf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if c.TLS == TLSNone {
		if c.CAFile != "" {
			ps.Add("smtp.ca_file", "is set but smtp.tls is none, so no certificate is checked; use tls: starttls or tls, or remove it")
		}
		if c.InsecureSkipVerify {
			ps.Add("smtp.insecure_skip_verify", "is set but smtp.tls is none, so no certificate is checked; remove it")
		}
		return conf
	}
	if c.CAFile != "" && c.InsecureSkipVerify {
		ps.Add("smtp.insecure_skip_verify", "is set with smtp.ca_file, which it would make pointless; keep ca_file and remove insecure_skip_verify")
	}
	conf.InsecureSkipVerify = c.InsecureSkipVerify
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			ps.Add("smtp.ca_file", "cannot be read: %v", err)
			return conf
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			ps.Add("smtp.ca_file", "holds no PEM certificate; it must be the CA certificate(s) that signed the server's, in PEM (-----BEGIN CERTIFICATE-----)")
			return conf
		}
		conf.RootCAs = pool
	}
	return conf
}

// addresses parses a list setting; one entry may hold several addresses
// separated by commas, so that one variable can carry a whole list.
func addresses(ps *config.Problems, key string, list []string) []*mail.Address {
	var out []*mail.Address
	for i, a := range list {
		at := fmt.Sprintf("%s[%d]", key, i)
		if strings.TrimSpace(a) == "" {
			ps.Add(at, "is empty; write an address like oncall@example.com, or remove the entry")
			continue
		}
		l, err := mail.ParseAddressList(a)
		if err != nil {
			ps.Add(at, "%q is not an email address (%v); write it like oncall@example.com or \"On-call <oncall@example.com>\"", a, err)
			continue
		}
		out = append(out, l...)
	}
	return out
}

// parseHTML parses an html template: html/template over the same data and
// helpers, so that event values are escaped for where they land. Escaping
// problems are found by a trial run, so that they are config errors too.
func parseHTML(name, text string) (*htmltemplate.Template, error) {
	t, err := htmltemplate.New(name).Option("missingkey=zero").Funcs(htmltemplate.FuncMap(router.TemplateFuncs)).Parse(text)
	if err != nil {
		return nil, err
	}
	var escErr *htmltemplate.Error
	if err := t.Execute(&bytes.Buffer{}, router.TemplateData(&router.Event{})); errors.As(err, &escErr) {
		if escErr.ErrorCode == htmltemplate.ErrEndContext {
			return nil, errors.New("it ends inside a tag, an attribute value or a quote; close it")
		}
		return nil, err
	}
	return t, nil
}

// Sink sends events as emails through one SMTP server. It is safe for
// concurrent use; messages go one at a time over one connection.
type Sink struct {
	name    string
	server  string // host:port, for errors
	timeout time.Duration
	from    *mail.Address
	to, cc  []*mail.Address
	subject *router.Template
	body    *router.Template // nil: defaultBody
	html    *htmltemplate.Template
	client  *gomail.Client // settings only; connections are ours

	tlsConf     *tls.Config
	implicitTLS bool
	// pending is the connection being set up, so that a failed or
	// cancelled set-up can close it (go-mail leaves that to the caller).
	pendingMu sync.Mutex
	pending   net.Conn

	mu       sync.Mutex
	conn     *smtp.Client // nil when not connected
	lastUsed time.Time
	idle     *time.Timer
	closed   bool
}

// Send renders e and sends it as one message.
func (s *Sink) Send(ctx context.Context, e *router.Event) error {
	m, err := s.message(e)
	if err != nil {
		return router.Permanent(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		reused := s.conn != nil
		if !reused {
			if err := s.dial(ctx); err != nil {
				return err
			}
		}
		stale, err := s.sendOn(ctx, m)
		if reused && stale && ctx.Err() == nil {
			// The server dropped the kept connection while it was idle;
			// nothing was sent on it. Once more on a new one.
			continue
		}
		return err
	}
}

// dial opens the connection: TCP, TLS, EHLO, AUTH. Every failure here is
// transient (see the package doc).
func (s *Sink) dial(ctx context.Context) error {
	if s.closed {
		return fmt.Errorf("smtp %s: the sink is closed", s.server)
	}
	// go-mail watches ctx only while connecting; cutting the connection
	// ends a TLS handshake or an AUTH waiting for its answer.
	stop := context.AfterFunc(ctx, func() { s.setPending(nil, true) })
	c, err := s.client.DialToSMTPClientWithContext(ctx)
	stop()
	raw := s.setPending(nil, false)
	if err == nil && ctx.Err() != nil {
		c.Close()
		err = ctx.Err()
	}
	if err != nil {
		if raw != nil {
			raw.Close()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("smtp %s: %w", s.server, ctx.Err())
		}
		return fmt.Errorf("smtp %s: cannot connect: %v%s", s.server, err, dialHint(err))
	}
	s.conn = c
	return nil
}

// dialConn is go-mail's dialler: TCP, and TLS at once for tls mode. It
// keeps the connection as pending.
func (s *Sink) dialConn(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	var conn net.Conn
	var err error
	if s.implicitTLS {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: s.tlsConf}).DialContext(ctx, network, addr)
	} else {
		conn, err = d.DialContext(ctx, network, addr)
	}
	if err != nil {
		return nil, err
	}
	s.setPending(conn, false)
	return conn, nil
}

// setPending swaps the pending connection for c and returns the old one,
// closing it first when abort is set.
func (s *Sink) setPending(c net.Conn, abort bool) net.Conn {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	old := s.pending
	if abort {
		if old != nil {
			old.Close()
		}
		return old
	}
	s.pending = c
	return old
}

// dialHint says what to check for the failures settings cause.
func dialHint(err error) string {
	var tpe *textproto.Error
	var certErr *tls.CertificateVerificationError
	var authErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &tpe) && (tpe.Code == 535 || tpe.Code == 534 || tpe.Code == 530):
		return " (check smtp.username and smtp.password)"
	case strings.Contains(err.Error(), "SMTP AUTH") || errors.Is(err, gomail.ErrNoSupportedAuthDiscovered):
		return " (check smtp.username and smtp.password, and that the server offers AUTH over this connection)"
	case errors.As(err, &certErr) || errors.As(err, &authErr) || errors.As(err, &hostErr):
		return " (the server's certificate is not trusted; set smtp.ca_file to the CA that signed it)"
	case strings.Contains(err.Error(), "does not support STARTTLS"):
		return " (set smtp.tls to tls for an implicit-TLS port such as 465, or none)"
	case strings.Contains(err.Error(), "first record does not look like a TLS handshake"):
		return " (the server does not speak TLS at once on this port; set smtp.tls to starttls)"
	}
	return ""
}

// sendOn sends m on the current connection and classifies the outcome;
// stale reports a connection found dead before anything was sent. It drops
// the connection after anything but a clean delivery.
func (s *Sink) sendOn(ctx context.Context, m *gomail.Msg) (stale bool, err error) {
	conn := s.conn
	// The deadline go-mail set is a timeout from the previous command; a
	// kept connection needs a fresh one before its NOOP.
	if err := conn.UpdateDeadline(s.timeout); err != nil {
		s.drop()
		return true, fmt.Errorf("smtp %s: %w", s.server, err)
	}
	// go-mail does not watch ctx once connected: cutting the connection
	// ends whatever command is waiting.
	text := conn.Text
	stop := context.AfterFunc(ctx, func() { text.Close() })
	err = s.client.SendWithSMTPClient(conn, m)
	stop()

	if err == nil {
		s.keep()
		return false, nil
	}
	s.drop()
	if ctx.Err() != nil {
		return false, fmt.Errorf("smtp %s: %w", s.server, ctx.Err())
	}
	err = fmt.Errorf("smtp %s: %w", s.server, err)
	var se *gomail.SendError
	if errors.As(err, &se) {
		switch code := se.ErrorCode(); {
		case se.Reason == gomail.ErrConnCheck:
			return true, err
		case se.Reason == gomail.ErrSMTPReset && m.IsDelivered():
			return false, nil // the server took the message; only the RSET after it failed
		case code >= 500 && code < 600:
			return false, router.Permanent(err)
		}
	}
	return false, err
}

// keep leaves the connection open for the next message, for idleTimeout.
func (s *Sink) keep() {
	s.lastUsed = time.Now()
	if s.idle == nil {
		s.idle = time.AfterFunc(idleTimeout, s.closeIdle)
	} else {
		s.idle.Reset(idleTimeout)
	}
}

func (s *Sink) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && time.Since(s.lastUsed) >= idleTimeout {
		s.quit()
	}
}

// quit ends the session politely; the caller holds mu.
func (s *Sink) quit() {
	if s.conn == nil {
		return
	}
	if s.conn.UpdateDeadline(min(s.timeout, 5*time.Second)) == nil {
		_ = s.conn.Quit()
	}
	_ = s.conn.Close()
	s.conn = nil
}

// drop abandons the connection; the caller holds mu.
func (s *Sink) drop() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// Close ends the SMTP session, if one is open.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.idle != nil {
		s.idle.Stop()
	}
	s.quit()
	return nil
}

// Preview returns the message Send would send for e, headers and body, as
// it would cross the wire (Date and multipart boundaries differ per call).
func (s *Sink) Preview(e *router.Event) ([]byte, error) {
	m, err := s.message(e)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("write the message of sink %s for event %s: %w", s.name, e.ID, err)
	}
	return buf.Bytes(), nil
}

// message renders e into an email. An error is about this event (a
// template that fails on it), so retrying cannot help.
func (s *Sink) message(e *router.Event) (*gomail.Msg, error) {
	subject, err := s.subject.Execute(e)
	if err != nil {
		return nil, fmt.Errorf("subject template of sink %s failed on event %s: %w", s.name, e.ID, err)
	}
	var body []byte
	if s.body != nil {
		if body, err = s.body.Execute(e); err != nil {
			return nil, fmt.Errorf("body template of sink %s failed on event %s: %w", s.name, e.ID, err)
		}
	} else {
		body = defaultBody(s.name, e)
	}
	var html bytes.Buffer
	if s.html != nil {
		if err := s.html.Execute(&html, router.TemplateData(e)); err != nil {
			return nil, fmt.Errorf("html template of sink %s failed on event %s: %w", s.name, e.ID, err)
		}
	}

	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(s.from)
	m.ToMailAddress(s.to...)
	if len(s.cc) > 0 {
		m.CcMailAddress(s.cc...)
	}
	// One line, whatever the template printed: a header cannot hold a
	// line break.
	m.Subject(strings.Join(strings.Fields(string(subject)), " "))
	m.SetDateWithValue(time.Now())
	// Stable across retries of the same delivery, so that a message the
	// server took before a lost answer, sent again, is one message to
	// clients that thread or deduplicate by Message-ID.
	m.SetMessageIDWithValue(messageID(s.name, e.ID, s.from.Address))
	m.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	m.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	m.SetGenHeader(gomail.Header("X-Switchboard-Sink"), s.name)
	m.SetGenHeader(gomail.Header("X-Switchboard-Event-Id"), e.ID)
	m.SetUserAgent("switchboard")
	m.SetBodyString(gomail.TypeTextPlain, string(body))
	if s.html != nil {
		m.AddAlternativeString(gomail.TypeTextHTML, html.String())
	}
	return m, nil
}

// messageID derives a Message-ID from the sink and the event.
func messageID(sink, eventID, from string) string {
	h := sha256.Sum256([]byte(sink + "\x00" + eventID))
	domain := "switchboard.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i+1 < len(from) {
		domain = from[i+1:]
	}
	return hex.EncodeToString(h[:16]) + ".switchboard@" + domain
}

// defaultBody is the text when the sink sets no body: what happened, the
// event's id and times, then the payload as indented JSON.
func defaultBody(sink string, e *router.Event) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s", e.Event)
	if e.Status != "" {
		fmt.Fprintf(&b, " %s", e.Status)
	}
	fmt.Fprintf(&b, " from %s\n\n", e.Source)
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%-12s %s\n", name+":", value)
		}
	}
	field("id", e.ID)
	if !e.Time.IsZero() {
		field("time", e.Time.UTC().Format("2006-01-02 15:04:05.000 UTC"))
	}
	if !e.ReceivedAt.IsZero() {
		field("received at", e.ReceivedAt.UTC().Format("2006-01-02 15:04:05.000 UTC"))
	}
	b.WriteString("\npayload:\n")
	b.Write(indentedPayload(e))
	fmt.Fprintf(&b, "\n\n-- \nSent by switchboard, sink %s.\n", sink)
	return b.Bytes()
}

// indentedPayload is the payload as indented JSON, in the provider's own
// key order when its bytes were kept.
func indentedPayload(e *router.Event) []byte {
	var buf bytes.Buffer
	if len(e.RawPayload) > 0 && json.Indent(&buf, e.RawPayload, "", "  ") == nil {
		return buf.Bytes()
	}
	buf.Reset()
	if e.Payload == nil {
		return []byte("{}")
	}
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(e.Payload); err != nil {
		return fmt.Appendf(nil, "(cannot be written as JSON: %v)", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

var (
	_ sinks.Builder            = (*Options)(nil)
	_ sinks.DefaultConcurrency = (*Options)(nil)
	_ router.Sink              = (*Sink)(nil)
	_ sinks.Closer             = (*Sink)(nil)
	_ sinks.Previewer          = (*Sink)(nil)
)
