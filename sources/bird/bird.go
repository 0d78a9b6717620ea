// Package bird is the source type for Bird (bird.com, formerly MessageBird)
// voice webhooks: the call life-cycle events `voice.inbound` and
// `voice.outbound` of a Bird webhook subscription.
//
// It owns the envelope, the signature and the event catalog; everything
// common to webhook sources (method check, body limit, the source's own
// `events` and `filters`, routing, queueing, answers) is the daemon's.
//
// # Normalization
//
// Bird POSTs {"service":"channels","event":"voice.inbound","payload":{...}}
// where payload is the Call object (id, channelId, from, to, direction,
// status, createdAt, updatedAt, ...). Every Call field is optional.
//
//   - event: the envelope's `event` (voice.inbound, voice.outbound); a body
//     without one is refused 400 no_event.
//   - payload: the inner Call object, its bytes kept verbatim; a body whose
//     `payload` is missing or not an object is refused 400 no_payload.
//   - status: payload.status, omitted when absent.
//   - id: payload.id + ":" + status (just payload.id when there is no
//     status): Bird's retries of one status change carry the same id and each
//     status change of a call gets its own. Without payload.id, a digest of
//     the source name and the body (router.DeriveID).
//   - time: payload.updatedAt when it is RFC 3339, else payload.createdAt,
//     else the receipt time. A time beyond the year 9999 (in UTC) is not
//     used, and the daemon logs that it was not.
//
// The legacy shape {"type":"outgoing_call_completed","callId":...,
// "callCommand":{...}} (a body with no `event`, a string `type`, and a
// `callId` or `callCommand`) is tolerated: event is `type`, id is callId +
// ":" + type (derived when callId is absent), status is omitted, time is the
// receipt time and payload is the whole body.
//
// Bodies are read by sources.DecodeObject, in one pass, which also reads
// the relaxed forms of provider documentation.
//
// # Signature
//
// With signing_key set, every request must carry messagebird-signature
// (base64 of the raw HMAC) and messagebird-request-timestamp (Unix seconds),
// where the HMAC is HMAC-SHA256(signing_key, timestamp + "\n" + URL + "\n" +
// SHA-256(body)), the body hash as 32 raw bytes, and URL the full URL Bird
// called: public_url when set, else rebuilt from the request
// (X-Forwarded-Proto, X-Forwarded-Host, Host, path and query). The HMAC is
// checked before the timestamp, so that an `expired` answer only ever
// concerns a genuine request. A timestamp older than max_age (default 24h:
// Bird's retries keep the first attempt's timestamp for hours) or more than
// five minutes ahead of this host's clock is refused 401 expired.
package bird

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"switchboard/config"
	"switchboard/router"
	"switchboard/sources"
)

// Event names, and the call statuses Bird documents for each.
const (
	EventInbound  = "voice.inbound"
	EventOutbound = "voice.outbound"
)

var (
	inboundStatuses  = []string{"starting", "ringing", "ongoing", "completed", "no-answer", "busy", "failed"}
	outboundStatuses = []string{"accepted", "starting", "ringing", "ongoing", "completed", "no-answer", "busy", "failed", "cancelled"}
)

// DefaultMaxAge is how old a signed request's timestamp may be. Bird retries
// for hours (8 h documented, about 24 h seen) and every retry keeps the
// original timestamp, so a minutes-long window would refuse genuine retries.
const DefaultMaxAge = 24 * time.Hour

func init() {
	router.DeclareEvent(EventInbound, inboundStatuses...)
	router.DeclareEvent(EventOutbound, outboundStatuses...)
	sources.Register("bird", func() sources.Builder {
		return &Options{MaxAge: DefaultMaxAge}
	})
}

// Options are the bird source's settings.
type Options struct {
	// SigningKey is the subscription's signingKey. Empty accepts unsigned
	// requests.
	SigningKey config.Secret `koanf:"signing_key"`
	// PublicURL is the URL Bird calls (the subscription's url), which the
	// signature covers. Empty rebuilds it from each request.
	PublicURL string `koanf:"public_url"`
	// MaxAge is how old a signed request's timestamp may be.
	MaxAge time.Duration `koanf:"max_age"`
}

// Events implements sources.Catalog: a bird source emits Bird's voice
// events, so status filters on it are checked against their statuses.
func (o *Options) Events() []string { return []string{EventInbound, EventOutbound} }

// KeepHeaders implements sources.HeaderDefaults: Bird's request id (the
// same in its delivery logs) and when Bird sent the request.
func (o *Options) KeepHeaders() []string {
	return []string{"messagebird-request-id", HeaderTimestamp}
}

// Build implements sources.Builder.
func (o *Options) Build(info sources.Info) (any, error) {
	var ps config.Problems
	s := &Source{name: info.Name, key: []byte(o.SigningKey.Reveal()), maxAge: o.MaxAge}
	if o.PublicURL != "" {
		u, err := url.Parse(o.PublicURL)
		switch {
		case err != nil:
			ps.Add("public_url", "is not a valid URL; write the URL Bird calls, like https://switchboard.example.com/hooks/%s", info.Name)
		case u.Scheme != "http" && u.Scheme != "https":
			ps.Add("public_url", "must be an absolute http:// or https:// URL, the URL Bird calls, like https://switchboard.example.com/hooks/%s", info.Name)
		case u.Host == "":
			ps.Add("public_url", "has no host; write the URL Bird calls, like https://switchboard.example.com/hooks/%s", info.Name)
		case u.Fragment != "" || u.User != nil:
			ps.Add("public_url", "must not hold a #fragment or user:password@; write the URL exactly as set on the Bird webhook subscription")
		default:
			s.publicURL = o.PublicURL
			s.publicHasQuery = u.RawQuery != "" || u.ForceQuery
		}
	}
	if o.MaxAge <= 0 {
		ps.Add("max_age", "must be a positive duration; Bird retries for hours with the original timestamp, so keep it at least 8h (default 24h)")
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return s, nil
}

// Source parses Bird voice webhooks.
type Source struct {
	name           string
	key            []byte // empty: unsigned requests are accepted
	publicURL      string
	publicHasQuery bool
	maxAge         time.Duration
}

// ReplayWindow implements sources.ReplayWindow: a signed request is valid
// for max_age, so its event is remembered at least that long. Unsigned
// requests prove nothing, and have no window.
func (s *Source) ReplayWindow() time.Duration {
	if len(s.key) == 0 {
		return 0
	}
	return s.maxAge
}

// Methods implements sources.Methods: Bird only POSTs.
func (s *Source) Methods() []string { return []string{http.MethodPost} }

// Parse implements sources.HTTPSource.
func (s *Source) Parse(req *sources.Request) (*sources.Result, error) {
	if len(s.key) > 0 {
		if err := s.verify(req); err != nil {
			return nil, err
		}
	}
	body := bytes.TrimSpace(req.Body)
	if len(body) == 0 {
		return nil, sources.Reject(http.StatusBadRequest, "empty",
			`empty body; Bird sends {"service":"channels","event":"voice.inbound","payload":{...call...}}`)
	}
	obj, err := sources.DecodeObject(body)
	if err != nil {
		return nil, err
	}
	ev, err := s.event(obj, body, req.ReceivedAt)
	if err != nil {
		return nil, err
	}
	ev.Body = req.Body
	return sources.OneEvent(ev), nil
}

func (s *Source) event(obj sources.Object, body []byte, received time.Time) (*router.Event, error) {
	ev := &router.Event{Source: s.name, ReceivedAt: received, Time: received}
	top := obj.Payload
	name, _ := top["event"].(string)
	if _, present := top["event"]; !present {
		_, hasCall := top["callId"]
		_, hasCommand := top["callCommand"]
		if typ, ok := top["type"].(string); ok && typ != "" && (hasCall || hasCommand) {
			return s.legacy(ev, typ, obj, body)
		}
	}
	if name == "" {
		return nil, sources.Reject(http.StatusBadRequest, "no_event",
			`no event name: the body has no "event" string; Bird sends {"service":"channels","event":"voice.inbound"|"voice.outbound","payload":{...call...}}`)
	}
	ev.Event = name
	payload, ok := top["payload"].(map[string]any)
	if !ok {
		_, key := top["signingKey"]
		_, filters := top["eventFilters"]
		_, url := top["url"]
		if key || filters || url {
			return nil, sources.Reject(http.StatusBadRequest, "no_payload",
				"this is a webhook-subscription request (it has url, signingKey or eventFilters), not a delivery: send it to Bird's Notifications API; Bird then POSTs events here as {\"service\",\"event\",\"payload\"}")
		}
		return nil, sources.Reject(http.StatusBadRequest, "no_payload",
			`event %q has no "payload" object; Bird sends the call as {"service":"channels","event":%q,"payload":{"id":...,"status":...}}`, name, name)
	}
	ev.Payload, ev.RawPayload = payload, obj.Member("payload")
	ev.Status = scalar(payload["status"])
	switch callID := scalar(payload["id"]); {
	case callID == "":
		ev.ID = router.DeriveID(s.name, body)
	case ev.Status == "":
		ev.ID = callID
	default:
		ev.ID = callID + ":" + ev.Status
	}
	for _, field := range []string{"updatedAt", "createdAt"} {
		v := payload[field]
		t, err := rfc3339(v)
		if err == nil {
			ev.Time, ev.TimeNote = t, ""
			break
		}
		// A time sent but unusable is said (the ingest pipeline logs it at
		// warn), unless the next field gives one.
		switch {
		case ev.TimeNote != "" || v == nil || v == "":
		case errors.Is(err, router.ErrTimeRange):
			ev.TimeNote = "payload." + field + ": " + err.Error()
		default:
			b, _ := json.Marshal(v)
			ev.TimeNote = fmt.Sprintf("payload.%s: %.64s is not an RFC 3339 time", field, b)
		}
	}
	return ev, nil
}

// legacy normalizes {"type":..., "callId":..., "callCommand":{...}}.
func (s *Source) legacy(ev *router.Event, typ string, obj sources.Object, body []byte) (*router.Event, error) {
	ev.Event, ev.Payload, ev.RawPayload = typ, obj.Payload, obj.Raw
	if callID := scalar(obj.Payload["callId"]); callID != "" {
		ev.ID = callID + ":" + typ
	} else {
		ev.ID = router.DeriveID(s.name, body)
	}
	return ev, nil
}

// scalar renders a string or number as text; anything else is "".
func scalar(v any) string {
	switch v.(type) {
	case string, int, uint64, float64, json.Number:
		return router.String(v)
	}
	return ""
}

// rfc3339 reads a time field of the call; one that is absent or not a
// string is not an error worth a note, one beyond the year 9999 is.
func rfc3339(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, errors.New("not a string")
	}
	return router.ParseRFC3339(s)
}

var (
	_ sources.Builder        = (*Options)(nil)
	_ sources.Catalog        = (*Options)(nil)
	_ sources.HeaderDefaults = (*Options)(nil)
	_ sources.HTTPSource     = (*Source)(nil)
	_ sources.Methods        = (*Source)(nil)
	_ sources.Prechecker     = (*Source)(nil)
	_ sources.ReplayWindow   = (*Source)(nil)
)
