// Package mobtexting is the source type for MOBtexting CPaaS event webhooks
// (also sold white-label as BICS CPaaS): the fifteen events of its events
// page, for SMS, WhatsApp, RCS, Voice, Viber, VMN (Interact) and Contacts.
// It owns telling which event a request is, the verification handshake,
// the optional bearer secret, and reading JSON, form and query bodies.
//
// A request is handled in this order:
//  1. a path segment below the source's path (/hooks/mob/sms:message:status)
//     must name a known event, else 400 unknown_event;
//  2. a verification request, one carrying `challenge` in its query or at
//     the top of its body, is answered 200 {"challenge": <same value>} and
//     routes nothing; when verify_token is set, only if the `token` query
//     parameter matches it (else 401 verify_token). The bearer secret is
//     not asked of it: the platform verifies a URL when the webhook is
//     created, and verify_token is what guards that step;
//  3. with `secret` set, `Authorization: Bearer <secret>` is required
//     (401 auth, with WWW-Authenticate: Bearer), before any complaint
//     about the body is made. It cannot be required before the body is
//     read: a verification request may carry its challenge in the body,
//     and needs no secret;
//  4. the body is read: JSON (the platform's own webhooks); a form,
//     x-www-form-urlencoded or multipart/form-data, or, when the body is
//     empty, the query string (both "compose webhook" options).
//
// Normalization:
//   - event: the body's own `event` field (the {event, payload} envelope of
//     whatsapp:*, rcs:*, viber:* and vmn:message:in, or an `event` key of a
//     composed body), else the path segment, else the source's `event`
//     setting, else the payload's shape where that is unambiguous (see
//     detect). An unsubscription's body is the same for every product, so
//     it is refused with 400 ambiguous_event naming the fix; a body
//     matching no shape gets 400 no_event.
//   - payload: the envelope's inner object (RawPayload its bytes as sent);
//     else the whole body; for forms and query strings the flat key/values
//     as strings (a repeated key keeps its first value). Numbers stay
//     numbers and strings stay strings: phone numbers arrive either way.
//   - status: the payload's `status`, verbatim ("read", "DELIVRD",
//     "Unsubscriber created successfully"); omitted when absent (incoming
//     messages have none).
//   - id, stable across the platform's retries and distinct per event:
//     "<id>:<status>" for *:message:status and sms:message:status (one
//     message reports several statuses); "<event>:<id>" for
//     *:unsubscription (products number their records separately: WhatsApp
//     436 and RCS 436 are different opt-outs); "<mid>:<status>" for
//     voice:message:out; "<id>:<updated_at>" for
//     contacts:subscriber:subscription (one contact is updated many times);
//     "<id>" otherwise. Numbers are written without exponent. Without those
//     fields the id is a digest of the source name and the payload.
//   - time: the first of these payload fields that parses: read_at (status
//     read) or delivered_at (status delivered), timestamp, processed_at,
//     delivered_at, deliv_time, deliv_at, sent_time, sent_at, submit_time,
//     submit_at, updated_at, created_at, end_at, start_at; else the
//     receipt time. RFC 3339, "2006-01-02 15:04:05" taken as UTC, or Unix
//     seconds or milliseconds (number or digits).
package mobtexting

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"switchboard/config"
	"switchboard/router"
	"switchboard/sources"
)

func init() {
	declare()
	sources.Register("mobtexting", func() sources.Builder { return &Options{} })
}

// Options are the mobtexting source's settings.
type Options struct {
	// Secret is the webhook's secret: deliveries then carry
	// Authorization: Bearer <secret>.
	Secret config.Secret `koanf:"secret"`
	// VerifyToken is the webhook's validation token: the verification
	// request carries it as the `token` query parameter.
	VerifyToken config.Secret `koanf:"verify_token"`
	// Event names the event of bodies that do not name their own and come
	// without a path segment: for a source that takes one unwrapped event.
	Event string `koanf:"event"`
}

// Build implements sources.Builder.
func (o *Options) Build(info sources.Info) (any, error) {
	var ps config.Problems
	if o.Event != "" && !knownEvent(o.Event) {
		ps.Add("event", "%q is not a MOBtexting event; use one of: %s", o.Event, strings.Join(eventNames, ", "))
	}
	if strings.TrimSpace(o.Secret.Reveal()) != o.Secret.Reveal() {
		ps.Add("secret", "has leading or trailing spaces, which the platform would not send; remove them")
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return &Source{name: info.Name, opts: *o}, nil
}

// Events implements sources.Catalog: every event this type emits.
func (o *Options) Events() []string { return append([]string(nil), eventNames...) }

// Source parses MOBtexting webhooks.
type Source struct {
	name string
	opts Options
}

// Methods implements sources.Methods: composed webhooks may use any of these.
func (s *Source) Methods() []string { return []string{http.MethodGet, http.MethodPost, http.MethodPut} }

// TakesSubpath implements sources.Subpaths: /hooks/<name>/<event>.
func (s *Source) TakesSubpath() bool { return true }

// Parse implements sources.HTTPSource.
func (s *Source) Parse(req *sources.Request) (*sources.Result, error) {
	if req.Subpath != "" && !knownEvent(req.Subpath) {
		return nil, sources.Reject(http.StatusBadRequest, "unknown_event",
			"unknown event %q in the path %s; the last path segment must be one of: %s",
			req.Subpath, req.HTTP.URL.Path, strings.Join(eventNames, ", "))
	}
	query := req.HTTP.URL.Query()
	if query.Has("challenge") {
		return s.handshake(req, query.Get("challenge"))
	}
	b, decodeErr := s.decode(req)
	if decodeErr == nil {
		if c, ok := b.obj["challenge"]; ok && !isEnvelope(b) {
			return s.handshake(req, c)
		}
	}
	if err := s.authorize(req.HTTP); err != nil {
		return nil, err
	}
	if decodeErr != nil {
		return nil, decodeErr
	}
	ev, err := s.event(req, b)
	if err != nil {
		return nil, err
	}
	return sources.OneEvent(ev), nil
}

// handshake answers the verification request by echoing its challenge.
func (s *Source) handshake(req *sources.Request, challenge any) (*sources.Result, error) {
	if want := s.opts.VerifyToken.Reveal(); want != "" {
		got := req.HTTP.URL.Query().Get("token")
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return nil, sources.WithChallenge(sources.Reject(http.StatusUnauthorized, "verify_token",
				"verification request refused: its token query parameter is missing or does not match verify_token; give the webhook the same validation token as the source's verify_token"),
				sources.SchemeChallenge("Token", s.name))
		}
	}
	switch challenge.(type) {
	case string, int, uint64, float64, json.Number:
	default:
		return nil, sources.Reject(http.StatusBadRequest, "bad_challenge",
			"verification request with a challenge that is not a string or a number; nothing to echo")
	}
	reply, err := json.Marshal(map[string]any{"challenge": challenge})
	if err != nil {
		return nil, err
	}
	return &sources.Result{Reply: reply}, nil
}

func (s *Source) authorize(r *http.Request) error {
	want := s.opts.Secret.Reveal()
	if want == "" {
		return nil
	}
	got, ok := sources.BearerToken(r.Header.Get("Authorization"))
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return sources.WithChallenge(sources.Reject(http.StatusUnauthorized, "auth",
			"missing or wrong bearer token: this source has a secret, so requests must carry Authorization: Bearer <the webhook's secret>"),
			sources.BearerChallenge)
	}
	return nil
}

// isEnvelope reports whether b is an {event, payload} envelope.
func isEnvelope(b *body) bool {
	if b.flat {
		return false
	}
	name, _ := b.obj["event"].(string)
	_, inner := b.obj["payload"].(map[string]any)
	return name != "" && inner
}

// event normalizes one decoded body (see the package doc).
func (s *Source) event(req *sources.Request, b *body) (*router.Event, error) {
	ev := &router.Event{Source: s.name, ReceivedAt: req.ReceivedAt, Time: req.ReceivedAt, Body: req.Body,
		Payload: b.obj, RawPayload: b.raw}
	ev.Event, _ = b.obj["event"].(string)
	if isEnvelope(b) {
		ev.Payload = b.obj["payload"].(map[string]any)
		ev.RawPayload = member(b.raw, "payload")
	}
	if ev.Event == "" {
		ev.Event = req.Subpath
	}
	if ev.Event == "" {
		ev.Event = s.opts.Event
	}
	if ev.Event == "" {
		name, err := s.detectEvent(req, ev.Payload)
		if err != nil {
			return nil, err
		}
		ev.Event = name
	}
	ev.Status = scalar(ev.Payload["status"])
	ev.ID = s.id(ev)
	if t, ok, note := eventTime(ev.Payload, ev.Status); ok {
		ev.Time = t
	} else {
		ev.TimeNote = note
	}
	return ev, nil
}

func (s *Source) detectEvent(req *sources.Request, p map[string]any) (string, error) {
	sh := detect(p)
	fix := fmt.Sprintf("give each webhook its own URL with the event in the path (e.g. %s/sms:message:status) or set event: on the source",
		strings.TrimSuffix(req.HTTP.URL.Path, "/"))
	switch {
	case sh.event != "":
		return sh.event, nil
	case sh.unsub && len(sh.also) == 1:
		return "", sources.Reject(http.StatusBadRequest, "ambiguous_event",
			"ambiguous event: the body is an unsubscription, but every product (sms, whatsapp, rcs, voice, viber) sends the same one and nothing in it says which; give each product's webhook its own URL with the event in the path (e.g. %s/whatsapp:unsubscription) or set event: on the source",
			strings.TrimSuffix(req.HTTP.URL.Path, "/"))
	case len(sh.also) > 1:
		return "", sources.Reject(http.StatusBadRequest, "ambiguous_event",
			"ambiguous event: the body looks like %s at once; %s", strings.Join(sh.also, " and "), fix)
	}
	return "", sources.Reject(http.StatusBadRequest, "no_event",
		"no event name: the body is not an {event, payload} envelope and its fields match no MOBtexting event; %s. Events: %s",
		fix, strings.Join(eventNames, ", "))
}

// id makes the event's id (see the package doc).
func (s *Source) id(ev *router.Event) string {
	p := ev.Payload
	id := scalar(p["id"])
	var out string
	switch kindOf(ev.Event) {
	case kindStatus:
		out = join(id, ev.Status)
	case kindUnsub:
		if id != "" {
			out = ev.Event + ":" + id
		}
	case kindVoice:
		out = join(scalar(p["mid"]), ev.Status)
	case kindContacts:
		if up := scalar(p["updated_at"]); up != "" {
			out = join(id, up)
		} else {
			out = join(id, ev.Status)
		}
	default:
		out = id
	}
	if out == "" {
		out = router.DeriveID(s.name, ev.RawPayload)
		if ev.RawPayload == nil {
			b, _ := json.Marshal(p)
			out = router.DeriveID(s.name, b)
		}
	}
	return out
}

// join makes "<id>:<suffix>", or "" without an id.
func join(id, suffix string) string {
	switch {
	case id == "":
		return ""
	case suffix == "":
		return id
	}
	return id + ":" + suffix
}

// scalar renders a string or number as text (numbers without exponent),
// and anything else, null included, as "".
func scalar(v any) string {
	switch v.(type) {
	case string, int, uint64, float64, json.Number:
		return router.String(v)
	}
	return ""
}

// timeFields are the payload's time fields, most specific first.
var timeFields = []string{
	"timestamp", "processed_at", "delivered_at",
	"deliv_time", "deliv_at", "sent_time", "sent_at", "submit_time", "submit_at",
	"updated_at", "created_at",
	"end_at", "start_at",
}

// eventTime finds when the event happened (see the package doc). note
// says which field held a time beyond the year 9999, when one did.
func eventTime(p map[string]any, status string) (t time.Time, ok bool, note string) {
	try := func(k string) bool {
		var err error
		t, ok, err = parseTime(p[k])
		if err != nil && note == "" {
			note = "payload." + k + ": " + err.Error()
		}
		return ok
	}
	switch status {
	case "read", "delivered":
		if try(status + "_at") {
			return t, true, ""
		}
	}
	for _, k := range timeFields {
		if try(k) {
			return t, true, ""
		}
	}
	return time.Time{}, false, note
}

// maxUnix is 9999-12-31T23:59:59Z: larger numbers are milliseconds.
const maxUnix = 253402300799

// parseTime reads RFC 3339, "2006-01-02 15:04:05" (UTC), or Unix seconds
// or milliseconds as a number or a string of digits, from 1970 to 9999.
// An RFC 3339 time past 9999 in UTC is an error (router.ErrTimeRange); any
// other value that is not a time is simply not one (ok false).
func parseTime(v any) (time.Time, bool, error) {
	switch t := v.(type) {
	case string:
		t = strings.TrimSpace(t)
		ts, err := router.ParseRFC3339(t)
		if errors.Is(err, router.ErrTimeRange) {
			return time.Time{}, false, err
		}
		if err != nil {
			ts, err = time.ParseInLocation(time.DateTime, t, time.UTC)
		}
		if err == nil {
			// A zero or pre-1970 date is a placeholder, not the event's time.
			return ts.UTC(), ts.Unix() > 0, nil
		}
		if t == "" || len(t) > 16 || strings.Trim(t, "0123456789") != "" {
			return time.Time{}, false, nil
		}
		var n int
		fmt.Sscan(t, &n)
		return parseTime(n)
	case int:
		switch {
		case t <= 0:
		case t <= maxUnix:
			return time.Unix(int64(t), 0).UTC(), true, nil
		case t <= maxUnix*1000+999:
			return time.UnixMilli(int64(t)).UTC(), true, nil
		}
	case float64:
		if t > 0 && t < maxUnix*1000 {
			return parseTime(int(t))
		}
	}
	return time.Time{}, false, nil
}

var (
	_ sources.Builder    = (*Options)(nil)
	_ sources.Catalog    = (*Options)(nil)
	_ sources.HTTPSource = (*Source)(nil)
	_ sources.Methods    = (*Source)(nil)
	_ sources.Subpaths   = (*Source)(nil)
)
