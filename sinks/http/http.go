// Package http owns the "http" sink: it sends each event in the body of one
// request to a configured URL, as the normalized event JSON, as the body the
// provider sent, as a JSON object built from the `json` setting (each string
// a template, encoded by the sink so that event content cannot add fields),
// or as a template's output, optionally signed with Standard Webhooks
// headers. It turns the receiver's answer into success, a transient
// failure (network, 408, 429, 5xx, with Retry-After honoured) or a permanent
// one (any other status); the router owns the retry schedule.
package http

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/net/http/httpguts"

	"switchboard/config"
	"switchboard/router"
	"switchboard/sinks"
)

// Body modes.
const (
	BodyEvent    = "event"
	BodyRaw      = "raw"
	BodyJSON     = "json"
	BodyTemplate = "template"
)

// Options are the settings of an http sink.
type Options struct {
	URL    string `koanf:"url"`
	Method string `koanf:"method"`
	// Headers are added to every request. Values often hold credentials:
	// they are never logged nor put into errors.
	Headers map[string]string `koanf:"headers"`
	Body    string            `koanf:"body"`
	// JSON is the request body when Body is "json": an object whose
	// strings are templates.
	JSON any `koanf:"json"`
	// Template is the request body when Body is "template".
	Template string `koanf:"template"`
	// ContentType empty means application/json, or for body: raw the
	// Content-Type the provider sent with that body.
	ContentType   string        `koanf:"content_type"`
	Timeout       time.Duration `koanf:"timeout"`
	SigningSecret config.Secret `koanf:"signing_secret"`
}

func init() {
	sinks.Register("http", func() sinks.Builder {
		return &Options{Method: http.MethodPost, Body: BodyEvent, Timeout: 10 * time.Second}
	})
}

// DefaultConcurrency lets a few requests be in flight at once: receivers
// are usually web services that answer in parallel.
func (o *Options) DefaultConcurrency() int { return 8 }

// Build checks every setting and prepares the client; it connects nowhere.
func (o *Options) Build(info sinks.Info) (router.Sink, error) {
	var ps config.Problems
	s := &Sink{name: info.Name, body: o.Body, contentType: o.ContentType, timeout: o.Timeout}
	s.ctype = cmp.Or(o.ContentType, "application/json")
	s.ctypeValue = []string{s.ctype}

	switch u, err := url.Parse(o.URL); {
	case o.URL == "":
		ps.Add("url", "is required: the URL to POST events to")
	case err != nil:
		// The URL may carry a token, so it is not echoed.
		ps.Add("url", "is not a valid URL; write it like https://example.com/hooks")
	case u.Scheme == "":
		ps.Add("url", "has no scheme; write it like https://example.com/hooks")
	case u.Scheme != "http" && u.Scheme != "https":
		ps.Add("url", "scheme %q is not supported; write an http:// or https:// URL", u.Scheme)
	case u.Host == "":
		ps.Add("url", "has no host; write it like https://example.com/hooks")
	default:
		s.url = o.URL
		s.shownURL = shownURL(u)
	}

	s.method = strings.ToUpper(o.Method)
	switch s.method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		ps.Add("method", "%q is not supported; use POST, PUT or PATCH (the event travels in the request body)", o.Method)
	}

	s.header = o.checkHeaders(&ps)

	if o.Body != BodyTemplate && o.Template != "" {
		ps.Add("template", "is set but body is %s, so it would be ignored; set body: template to send it, or remove it", o.Body)
	}
	if o.Body != BodyJSON && o.JSON != nil {
		ps.Add("json", "is set but body is %s, so it would be ignored; set body: json to send it, or remove it", o.Body)
	}
	switch o.Body {
	case BodyEvent, BodyRaw:
	case BodyJSON:
		if _, ok := o.JSON.(map[string]any); !ok {
			ps.Add("json", `is required when body is json: the object to send, each string a template, e.g. {text: "{{ .event }} to {{ .to }}", id: "{{ .id }}"}`)
			break
		}
		s.json = compileJSONBody(info.Name, o.JSON, "json", &ps)
	case BodyTemplate:
		if o.Template == "" {
			ps.Add("template", `is required when body is template: the request body as a Go template, e.g. 'event={{ .event }}' (for JSON, use body: json, which encodes event values safely)`)
			break
		}
		t, err := router.ParseTemplate(info.Name, o.Template)
		if err != nil {
			ps.Add("template", "does not parse: %v", err)
			break
		}
		s.tmpl = t
	default:
		ps.Add("body", "%q is not a body mode; use event (the normalized event JSON), raw (the provider's body as received), json (an object built from the json setting) or template", o.Body)
	}

	if o.ContentType != "" {
		if mt, _, err := mime.ParseMediaType(o.ContentType); err != nil || !strings.Contains(mt, "/") {
			ps.Add("content_type", "%q is not a media type; write it like application/json or text/plain; charset=utf-8", o.ContentType)
		}
	}

	if o.Timeout <= 0 {
		ps.Add("timeout", "must be a positive duration, e.g. 10s")
	}

	if o.SigningSecret != "" {
		key, err := signingKey(o.SigningSecret.Reveal())
		if err != nil {
			ps.Add("signing_secret", "%v", err)
		}
		s.key = key
	}

	if len(ps) > 0 {
		return nil, ps
	}
	// Every request is a copy of this one: the URL is parsed once.
	base, err := http.NewRequest(s.method, s.url, nil)
	if err != nil {
		ps.Add("url", "is not a valid URL; write it like https://example.com/hooks")
		return nil, ps
	}
	s.base = base
	// One pool of keep-alive connections per sink, sized for its
	// concurrency.
	s.transport, s.client = sinks.NewHTTPClient(sinks.HTTPClientOptions{
		Timeout:             o.Timeout,
		MaxIdleConns:        128,
		MaxIdleConnsPerHost: 64,
		URL:                 base.URL,
	})
	return s, nil
}

// checkHeaders returns the headers to send, canonicalized, reporting names
// and values that net/http would refuse at send time (a failure that would
// otherwise repeat on every event) and headers the sink sets itself.
func (o *Options) checkHeaders(ps *config.Problems) http.Header {
	names := make([]string, 0, len(o.Headers))
	for n := range o.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	h := make(http.Header, len(names))
	for _, n := range names {
		at := config.Join("headers", n)
		v := o.Headers[n]
		c := http.CanonicalHeaderKey(n)
		switch {
		case !httpguts.ValidHeaderFieldName(n):
			ps.Add(at, "is not a valid header name; use letters, digits and - (e.g. X-Api-Key)")
		case strings.ContainsAny(v, "\r\n\x00"):
			// Never quote the value: it may be a credential.
			ps.Add(at, "value contains a line break or NUL; a header value is one line")
		case c == "Content-Type":
			ps.Add(at, "set content_type instead")
		case c == "Content-Length" || c == "Transfer-Encoding":
			ps.Add(at, "is computed for each request; remove it")
		case o.SigningSecret != "" && (c == "Webhook-Id" || c == "Webhook-Timestamp" || c == "Webhook-Signature"):
			ps.Add(at, "is set by signing_secret; remove it")
		default:
			h[c] = append(h[c], v)
		}
	}
	return h
}

// signingKey derives the HMAC key as the Standard Webhooks libraries do: a
// whsec_ secret is base64 of the key, any other secret is the key itself.
func signingKey(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(rest)
	}
	if err != nil || len(key) == 0 {
		return nil, errors.New("is not valid base64 after whsec_; paste the secret exactly as the receiver shows it")
	}
	return key, nil
}

// Secrets implements config.SecretHolder, so that the redactor knows the
// credentials among plain settings: the values of headers named like
// credentials (Authorization, X-Api-Key, ...), with and without their
// scheme, and the URL's password and credential-like query values.
func (o *Options) Secrets() []string {
	var out []string
	for name, v := range o.Headers {
		if !credentialName(name) {
			continue
		}
		out = append(out, v)
		if _, cred, ok := strings.Cut(strings.TrimSpace(v), " "); ok {
			out = append(out, strings.TrimSpace(cred))
		}
	}
	if u, err := url.Parse(o.URL); err == nil {
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
		for k, vs := range u.Query() {
			if credentialName(k) {
				out = append(out, vs...)
			}
		}
	}
	return out
}

// credentialName reports whether a header or parameter name suggests a
// credential.
func credentialName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"auth", "token", "secret", "key", "pass", "signature", "session", "cookie", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// shownURL is the URL as errors show it: without password and query, which
// may carry credentials.
func shownURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = "", false, "", ""
	return c.Redacted()
}

// Sink sends events to one URL. It is safe for concurrent use.
type Sink struct {
	name        string
	url         string
	shownURL    string
	method      string
	header      http.Header
	body        string
	json        *jsonBody
	tmpl        *router.Template
	contentType string
	// ctype is the Content-Type of nearly every request, ctypeValue its
	// header value, shared by them.
	ctype      string
	ctypeValue []string
	timeout    time.Duration
	key        []byte

	// base is the request every send copies (method, URL, host); nothing
	// changes it, and the copies share its URL, which net/http only reads.
	base      *http.Request
	transport *http.Transport
	client    *retryablehttp.Client
}

// userAgent is the User-Agent header value of every request that sets none.
var userAgent = []string{"switchboard"}

// Send delivers e in one request (plus up to two quick retries when the
// connection fails) and classifies the answer.
func (s *Sink) Send(ctx context.Context, e *router.Event) error {
	_, err := s.SendStatus(ctx, e)
	return err
}

// SendStatus is Send that also returns the receiver's status code (0 when
// no answer came), for the delivery history.
func (s *Sink) SendStatus(ctx context.Context, e *router.Event) (int, error) {
	body, ctype, err := s.render(e)
	if err != nil {
		return 0, router.Permanent(err)
	}
	hreq := s.base.WithContext(ctx)
	hreq.Header = make(http.Header, len(s.header)+2)
	req := &retryablehttp.Request{Request: hreq}
	if err := req.SetBody(body); err != nil {
		return 0, router.Permanent(fmt.Errorf("%s %s: %w", s.method, s.shownURL, err))
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	if h := s.header.Get("Host"); h != "" {
		req.Host = h // net/http sends req.Host, not a Host header
	}
	// Values shared by every request, never changed by net/http: setting
	// them costs no allocation.
	if ctype == s.ctype {
		req.Header["Content-Type"] = s.ctypeValue
	} else {
		req.Header.Set("Content-Type", ctype)
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = userAgent
	}
	if s.key != nil {
		ts := time.Now().Unix()
		id := WebhookID(e.ID)
		req.Header.Set("Webhook-Id", id)
		req.Header.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("Webhook-Signature", Sign(s.key, id, ts, body))
	}
	// A header value net/http refuses would fail every attempt alike.
	for name, vs := range req.Header {
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return 0, router.Permanent(fmt.Errorf("%s %s: header %s of event %s holds a line break or control character; no request can carry it",
					s.method, s.shownURL, name, e.ID))
			}
		}
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return 0, s.requestError(ctx, err)
	}
	return resp.StatusCode, s.classify(resp)
}

// Preview returns the body Send would send for e.
func (s *Sink) Preview(e *router.Event) ([]byte, error) {
	b, _, err := s.render(e)
	return b, err
}

// Close releases idle connections.
func (s *Sink) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// render returns the request body and its content type. An error is
// about this event (a template that fails on it), so retrying cannot help.
func (s *Sink) render(e *router.Event) ([]byte, string, error) {
	ctype := s.contentType
	if ctype == "" {
		ctype = "application/json"
	}
	switch s.body {
	case BodyRaw:
		if e.Body != nil {
			if ct := e.Headers["content-type"]; s.contentType == "" && ct != "" {
				ctype = ct
			}
			return e.Body, ctype, nil
		}
		if e.RawPayload != nil {
			return e.RawPayload, ctype, nil
		}
		if e.Payload == nil {
			return []byte("{}"), ctype, nil
		}
		b, err := json.Marshal(e.Payload)
		if err != nil {
			return nil, "", fmt.Errorf("encode payload of event %s: %w", e.ID, err)
		}
		return b, ctype, nil
	case BodyJSON:
		b, err := s.json.render(make([]byte, 0, 256), e)
		if err != nil {
			return nil, "", fmt.Errorf("json template of sink %s failed on event %s: %w", s.name, e.ID, err)
		}
		return b, ctype, nil
	case BodyTemplate:
		b, err := s.tmpl.Execute(e)
		if err != nil {
			return nil, "", fmt.Errorf("template of sink %s failed on event %s: %w", s.name, e.ID, err)
		}
		return b, ctype, nil
	}
	b, err := e.MarshalJSON()
	return b, ctype, err
}

// requestError describes a request that got no answer. Every such failure
// is transient: the receiver may be back on the next attempt.
func (s *Sink) requestError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", s.method, s.shownURL, ctx.Err())
	}
	// url.Error repeats the full URL, query included; keep only the cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if sinks.IsTimeout(err) {
		return fmt.Errorf("%s %s: no answer within timeout %s; raise timeout if the receiver is slow: %w",
			s.method, s.shownURL, s.timeout, err)
	}
	return fmt.Errorf("%s %s: %w", s.method, s.shownURL, err)
}

// classify reads what is needed of resp, releases it and returns the
// outcome: nil, a transient error (possibly with a Retry-After) or a
// permanent one.
func (s *Sink) classify(resp *http.Response) error {
	status, head := sinks.ReadAnswer(resp)
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	msg := s.method + " " + s.shownURL + ": " + status
	if b := sinks.Snippet(head); b != "" {
		msg += ": " + b
	}
	if code >= 300 && code < 400 {
		msg += " (the receiver redirects; set url to the address it redirects to)"
	}
	err := errors.New(msg)

	switch {
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		if d, ok := sinks.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return router.RetryAfter(err, d)
		}
		return err
	default:
		return router.Permanent(err)
	}
}

// WebhookID is the webhook-id header value of an event id: the id itself
// when it is 1 to 128 visible ASCII characters, else "sha256_" and the
// base64url SHA-256 of the id (as is an id that itself starts with
// "sha256_", so that no two ids share a header value). A raw id with a
// line break cannot be sent at all, and one with non-ASCII characters
// reaches Node's Standard Webhooks library re-decoded as Latin-1, so its
// signature fails there. The digest is stable: a retry carries the same
// webhook-id, as the specification asks.
func WebhookID(id string) string {
	if safeWebhookID(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return digestPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

const digestPrefix = "sha256_"

func safeWebhookID(id string) bool {
	if id == "" || len(id) > 128 || strings.HasPrefix(id, digestPrefix) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// Sign returns the Standard Webhooks signature header value for a message:
// "v1," + base64(HMAC-SHA256(key, id.timestamp.body)).
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

var (
	_ sinks.Builder            = (*Options)(nil)
	_ sinks.DefaultConcurrency = (*Options)(nil)
	_ router.Sink              = (*Sink)(nil)
	_ router.StatusSink        = (*Sink)(nil)
	_ sinks.Closer             = (*Sink)(nil)
	_ sinks.Previewer          = (*Sink)(nil)
	_ config.SecretHolder      = (*Options)(nil)
)
