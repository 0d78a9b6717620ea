// Package slack owns the "slack" sink: it posts each event to a Slack
// incoming webhook as one message, its text (and optionally its Block Kit
// blocks) rendered from templates over the event.
//
// Data flow: Send renders the message (a template that fails is a permanent
// failure), waits for the webhook's pace (a token bucket shared by every
// sink posting to the same webhook with the same settings, paused while
// Slack has answered 429), posts it and classifies Slack's answer: 2xx
// delivered; 429 (with Retry-After honoured) and 5xx transient; any other
// status permanent, with Slack's answer (invalid_payload,
// channel_not_found, ...) in the error. The router owns the retry schedule.
//
// The webhook URL is a credential: it is never logged nor put into errors,
// which say "slack webhook" instead.
package slack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/time/rate"

	"switchboard/config"
	"switchboard/router"
	"switchboard/sinks"
)

// DefaultText is the message text when the sink sets none: what happened,
// where, between whom and when. The parties are the provider's own fields:
// from (or MOBtexting's recipient.from, or TeleCMI's user, the agent) and
// to (or MOBtexting's mobile and receiver, or TeleCMI's virtual_number).
// The time is a Slack date token, shown in each reader's time zone, with
// UTC as the fallback text.
const DefaultText = `:rotating_light: *{{ .event }}*{{ with .status }} {{ . }}{{ end }}` +
	`{{ with default .hangup_reason .reason }} ({{ . }}){{ end }} via {{ .source }}
{{- $from := .from }}{{ if not $from }}{{ with .recipient }}{{ $from = .from }}{{ end }}{{ end }}{{ $from = default .user $from }}
{{- $to := default (default (default .virtual_number .receiver) .mobile) .to }}
{{- if or $from $to }}
{{ with $from }}from {{ . }}{{ end }}{{ if and $from $to }} {{ end }}{{ with $to }}to {{ . }}{{ end }}
{{- end }}
<!date^{{ time "Unix" .time }}^{date_short_pretty} {time_secs}|{{ time "DateTime" .time }} UTC> · id {{ .id }}`

// fallbackText is sent instead of DefaultText for an event whose payload
// has a shape DefaultText cannot read (a recipient that is not an object):
// a default must never turn an event into a dead letter.
const fallbackText = `:rotating_light: *{{ .event }}*{{ with .status }} {{ . }}{{ end }} via {{ .source }} · id {{ .id }}`

// maxHold caps how long a 429 pauses the webhook for every sink using it;
// the delivery that got the 429 waits the whole Retry-After in the queue
// regardless.
const maxHold = time.Minute

// Options are the settings of a slack sink.
type Options struct {
	// WebhookURL is the incoming webhook, a credential.
	WebhookURL config.Secret `koanf:"webhook_url"`
	Text       string        `koanf:"text"`
	Channel    string        `koanf:"channel"`
	Username   string        `koanf:"username"`
	IconEmoji  string        `koanf:"icon_emoji"`
	// Blocks is a template producing a JSON array of Block Kit blocks.
	Blocks  string        `koanf:"blocks"`
	Timeout time.Duration `koanf:"timeout"`
	// RateLimit is messages per second per webhook; Burst how many may go
	// at once after a quiet spell.
	RateLimit float64 `koanf:"rate_limit"`
	Burst     int     `koanf:"burst"`
}

func init() {
	sinks.Register("slack", func() sinks.Builder {
		return &Options{Timeout: 10 * time.Second, RateLimit: 1, Burst: 5}
	})
}

// DefaultConcurrency is one: Slack paces each webhook to about one message
// a second, and one sender keeps messages in delivery order.
func (o *Options) DefaultConcurrency() int { return 1 }

// Build checks every setting and parses the templates; it connects nowhere.
func (o *Options) Build(info sinks.Info) (router.Sink, error) {
	var ps config.Problems
	s := &Sink{name: info.Name, channel: o.Channel, username: o.Username, iconEmoji: o.IconEmoji, timeout: o.Timeout}

	raw := strings.TrimSpace(o.WebhookURL.Reveal())
	// The URL is never echoed: its path is the credential.
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		ps.Add("webhook_url", "is required: the incoming webhook URL Slack shows when you add the app to a channel, e.g. ${SLACK_WEBHOOK_URL}")
	case err != nil:
		ps.Add("webhook_url", "is not a valid URL; paste it exactly as Slack shows it (https://hooks.slack.com/services/...)")
	case u.Scheme != "https" && u.Scheme != "http":
		ps.Add("webhook_url", "is not an https:// URL; paste it exactly as Slack shows it (https://hooks.slack.com/services/...)")
	case u.Host == "":
		ps.Add("webhook_url", "has no host; paste it exactly as Slack shows it (https://hooks.slack.com/services/...)")
	default:
		s.url = raw
	}

	text := o.Text
	if strings.TrimSpace(text) == "" {
		text = DefaultText
		s.fallback = mustParse(info.Name, fallbackText)
	}
	if t, err := router.ParseTemplateFor(info.Name, text, router.EscapeSlack); err != nil {
		ps.Add("text", "does not parse: %v", err)
	} else {
		s.text = t
	}
	if strings.TrimSpace(o.Blocks) != "" {
		if t, err := router.ParseTemplateFor(info.Name+".blocks", o.Blocks, router.EscapeSlackJSON); err != nil {
			ps.Add("blocks", "does not parse: %v", err)
		} else {
			s.blocks = t
		}
	}

	if o.Channel != "" && (strings.IndexFunc(o.Channel, unicode.IsSpace) >= 0 || o.Channel == "#" || o.Channel == "@") {
		ps.Add("channel", "%q is not a channel; write it like #oncall, @username or a channel ID like C0123456789", o.Channel)
	}
	if o.IconEmoji != "" && !validEmoji(o.IconEmoji) {
		ps.Add("icon_emoji", "%q is not an emoji name; write it like :rotating_light:", o.IconEmoji)
	}
	if o.Timeout <= 0 {
		ps.Add("timeout", "must be a positive duration, e.g. 10s")
	}
	if !(o.RateLimit > 0) || o.RateLimit > 1000 {
		ps.Add("rate_limit", "must be a number of messages per second above 0 and at most 1000, e.g. 1 (Slack allows about one a second per webhook) or 0.5 (one every two seconds)")
	}
	if o.Burst < 1 {
		ps.Add("burst", "must be at least 1: how many messages may go at once after a quiet spell")
	}

	if len(ps) > 0 {
		return nil, ps
	}
	s.pace = pacerFor(s.url, o.RateLimit, o.Burst)
	// A small pool: one sender (DefaultConcurrency) to one host. Slack does
	// not redirect webhooks; a 3xx is reported, not followed.
	s.transport, s.client = sinks.NewHTTPClient(sinks.HTTPClientOptions{
		Timeout:      o.Timeout,
		MaxIdleConns: 4,
		// MaxIdleConnsPerHost unset: net/http's default, 2.
		URL: u,
	})
	return s, nil
}

func mustParse(name, text string) *router.Template {
	t, err := router.ParseTemplateFor(name, text, router.EscapeSlack)
	if err != nil {
		panic(err)
	}
	return t
}

// validEmoji reports whether s looks like :name: (Slack's names are
// lower-case letters, digits and - _ + ').
func validEmoji(s string) bool {
	name, ok := strings.CutPrefix(s, ":")
	if !ok {
		return false
	}
	name, ok = strings.CutSuffix(name, ":")
	if !ok || name == "" {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-_+'", r)) {
			return false
		}
	}
	return true
}

// Sink posts events to one Slack incoming webhook. It is safe for
// concurrent use.
type Sink struct {
	name      string
	url       string
	text      *router.Template
	fallback  *router.Template // set when text is DefaultText
	blocks    *router.Template
	channel   string
	username  string
	iconEmoji string
	timeout   time.Duration
	pace      *pacer

	transport *http.Transport
	client    *retryablehttp.Client
}

// message is Slack's incoming webhook payload.
type message struct {
	Text      string          `json:"text"`
	Channel   string          `json:"channel,omitempty"`
	Username  string          `json:"username,omitempty"`
	IconEmoji string          `json:"icon_emoji,omitempty"`
	Blocks    json.RawMessage `json:"blocks,omitempty"`
}

// Send renders e, waits for the webhook's pace and posts the message.
func (s *Sink) Send(ctx context.Context, e *router.Event) error {
	_, err := s.SendStatus(ctx, e)
	return err
}

// SendStatus is Send that also returns Slack's status code (0 when no
// answer came), for the delivery history.
func (s *Sink) SendStatus(ctx context.Context, e *router.Event) (int, error) {
	body, err := s.render(e)
	if err != nil {
		return 0, router.Permanent(err)
	}
	if err := s.pace.wait(ctx); err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("slack webhook: waiting for the webhook's pace: %w", ctx.Err())
		}
		return 0, fmt.Errorf("slack webhook: the webhook's pace (rate_limit) leaves no room before the delivery's deadline")
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, s.url, body)
	if err != nil {
		return 0, router.Permanent(errors.New("slack webhook: cannot make the request: " + s.scrub(err.Error())))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "switchboard")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, s.requestError(ctx, err)
	}
	return resp.StatusCode, s.classify(resp)
}

// Preview returns the JSON payload Send would post for e.
func (s *Sink) Preview(e *router.Event) ([]byte, error) {
	return s.render(e)
}

// Close releases idle connections.
func (s *Sink) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// render builds the JSON payload. An error is about this event (a template
// that fails on it), so retrying cannot help.
func (s *Sink) render(e *router.Event) ([]byte, error) {
	text, err := s.text.Execute(e)
	if err != nil && s.fallback != nil {
		text, err = s.fallback.Execute(e)
	}
	if err != nil {
		return nil, fmt.Errorf("text template of sink %s failed on event %s: %w", s.name, e.ID, err)
	}
	m := message{Text: string(text), Channel: s.channel, Username: s.username, IconEmoji: s.iconEmoji}
	if s.blocks != nil {
		b, err := s.blocks.Execute(e)
		if err != nil {
			return nil, fmt.Errorf("blocks template of sink %s failed on event %s: %w", s.name, e.ID, err)
		}
		// A blocks template may render nothing (a conditional): then the
		// message is its text alone.
		if b = bytes.TrimSpace(b); len(b) > 0 {
			if err := checkBlocks(b); err != nil {
				return nil, fmt.Errorf("blocks template of sink %s rendered %v for event %s; it must produce a JSON array of blocks, with values quoted by json (\"text\": {{ json .reason }})",
					s.name, err, e.ID)
			}
			m.Blocks = b
		}
	}
	if strings.TrimSpace(m.Text) == "" && m.Blocks == nil {
		return nil, fmt.Errorf("text template of sink %s rendered an empty message for event %s, which Slack refuses; use default for fields the event may lack", s.name, e.ID)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // Slack's <!date…> and <url|label> stay readable
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode the message of sink %s for event %s: %w", s.name, e.ID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// checkBlocks says what is wrong with a rendered blocks value, if anything.
func checkBlocks(b []byte) error {
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		return fmt.Errorf("invalid JSON (%v)", err)
	}
	if b[0] != '[' {
		return errors.New("JSON that is not an array")
	}
	return nil
}

// requestError describes a post that got no answer: transient, since
// Slack may answer the next attempt. The URL never appears in it.
func (s *Sink) requestError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("slack webhook: %w", ctx.Err())
	}
	// url.Error repeats the whole URL, credential included; keep the cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if sinks.IsTimeout(err) {
		return fmt.Errorf("slack webhook: no answer within timeout %s", s.timeout)
	}
	return errors.New("slack webhook: " + s.scrub(err.Error()))
}

// Secrets implements config.SecretHolder: the webhook's path is the
// credential, and a proxy or a library may quote it without the host.
func (o *Options) Secrets() []string {
	if u, err := url.Parse(strings.TrimSpace(o.WebhookURL.Reveal())); err == nil && len(u.Path) > 1 {
		return []string{u.Path}
	}
	return nil
}

// scrub removes the webhook URL and its path from a message, should a
// library ever put it there.
func (s *Sink) scrub(msg string) string {
	if s.url == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, s.url, "<webhook_url>")
	if u, err := url.Parse(s.url); err == nil && len(u.Path) > 1 {
		msg = strings.ReplaceAll(msg, u.Path, "/<webhook path>")
	}
	return msg
}

// classify reads Slack's answer, releases it and returns the outcome.
func (s *Sink) classify(resp *http.Response) error {
	status, head := sinks.ReadAnswer(resp)
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	msg := "slack webhook: " + status
	if b := sinks.Snippet(head); b != "" {
		msg += ": " + s.scrub(b)
	}
	switch {
	case code >= 300 && code < 400:
		msg += " (Slack redirects; check webhook_url)"
	case code == http.StatusForbidden || code == http.StatusNotFound || code == http.StatusGone:
		msg += " (the webhook or its channel is gone or closed to it; check webhook_url and channel)"
	}
	err := errors.New(msg)
	switch {
	case code == http.StatusTooManyRequests:
		if d, ok := sinks.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			s.pace.hold(d)
			return router.RetryAfter(err, d)
		}
		s.pace.hold(time.Second)
		return err
	case code >= 500:
		if d, ok := sinks.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return router.RetryAfter(err, d)
		}
		return err
	}
	return router.Permanent(err)
}

// pacer spaces the messages to one webhook: a token bucket, and a pause
// while Slack has asked (429 + Retry-After) for one.
type pacer struct {
	limiter *rate.Limiter

	mu    sync.Mutex
	until time.Time
}

// pacers holds one pacer per webhook and settings, so that sinks sharing a
// webhook share its pace, and a reload that keeps a sink keeps its bucket
// instead of granting a fresh burst.
var pacers = struct {
	sync.Mutex
	m map[pacerKey]*pacer
}{m: map[pacerKey]*pacer{}}

type pacerKey struct {
	webhook [sha256.Size]byte // not the URL itself: it is a credential
	rate    float64
	burst   int
}

func pacerFor(webhook string, perSecond float64, burst int) *pacer {
	k := pacerKey{sha256.Sum256([]byte(webhook)), perSecond, burst}
	pacers.Lock()
	defer pacers.Unlock()
	p := pacers.m[k]
	if p == nil {
		p = &pacer{limiter: rate.NewLimiter(rate.Limit(perSecond), burst)}
		pacers.m[k] = p
	}
	return p
}

// wait returns when a message may go, or with ctx's error.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	d := time.Until(p.until)
	p.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return p.limiter.Wait(ctx)
}

// hold pauses the webhook for d (at most maxHold) after a 429.
func (p *pacer) hold(d time.Duration) {
	until := time.Now().Add(min(d, maxHold))
	p.mu.Lock()
	if until.After(p.until) {
		p.until = until
	}
	p.mu.Unlock()
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
