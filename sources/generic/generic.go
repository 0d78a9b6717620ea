// Package generic is the source type for any JSON webhook.
//
// Normalization: the body is a JSON object (one event) or an array of
// objects (a batch). `event` is the value at event_field (default "event")
// or the source's constant `event`; `status` is the value at status_field
// (default "status"), omitted when absent; `id` is the value at id_field
// (default "id") as a string, verbatim, or, when absent, a digest of the
// source name and the event's bytes (stable across the sender's retries);
// `time` is the value at time_field when set (RFC 3339, or Unix seconds or
// milliseconds), else the receipt time; `payload` is the whole object, not
// unwrapped. All fields are dotted paths from the object's root.
//
// Bodies that are not strict JSON but what documentation pages print
// (trailing commas, single quotes, unquoted keys) are accepted too.
//
// Authentication is optional: a bearer token (the scheme name in any
// case) or HTTP basic credentials, compared in constant time, checked
// before the body is read. A 401 carries the matching WWW-Authenticate
// challenge.
package generic

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"switchboard/config"
	"switchboard/router"
	"switchboard/sources"
)

func init() {
	sources.Register("generic", func() sources.Builder {
		return &Options{EventField: "event", StatusField: "status", IDField: "id"}
	})
}

// Options are the generic source's settings.
type Options struct {
	EventField  string `koanf:"event_field"`
	StatusField string `koanf:"status_field"`
	IDField     string `koanf:"id_field"`
	TimeField   string `koanf:"time_field"`
	Event       string `koanf:"event"`
	Auth        Auth   `koanf:"auth"`
}

// Auth is an optional bearer token or basic credentials pair.
type Auth struct {
	BearerToken config.Secret `koanf:"bearer_token"`
	Username    string        `koanf:"username"`
	Password    config.Secret `koanf:"password"`
}

// KeepHeaders implements sources.HeaderDefaults: the message id and time
// of senders that follow Standard Webhooks.
func (o *Options) KeepHeaders() []string { return []string{"webhook-id", "webhook-timestamp"} }

// Build implements sources.Builder.
func (o *Options) Build(info sources.Info) (any, error) {
	var ps config.Problems
	if o.EventField == "" && o.Event == "" {
		ps.Add("event_field", "is empty and no constant event is set; name the field that holds the event name (default \"event\") or set event:")
	}
	if o.Auth.BearerToken != "" && (o.Auth.Username != "" || o.Auth.Password != "") {
		ps.Add("auth", "set either bearer_token or username/password, not both")
	}
	if (o.Auth.Username == "") != (o.Auth.Password == "") {
		ps.Add("auth", "basic auth needs both username and password")
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return &Source{name: info.Name, opts: *o}, nil
}

// Source parses generic JSON webhooks.
type Source struct {
	name string
	opts Options
}

// Parse implements sources.HTTPSource.
func (s *Source) Parse(req *sources.Request) (*sources.Result, error) {
	if err := s.authorize(req.HTTP); err != nil {
		return nil, err
	}
	body := bytes.TrimSpace(req.Body)
	if len(body) == 0 {
		return nil, sources.Reject(http.StatusBadRequest, "empty", "empty body; send a JSON object (one event) or an array of objects (a batch)")
	}
	if body[0] != '[' {
		ev, err := s.event(body, req.ReceivedAt)
		if err != nil {
			return nil, err
		}
		return &sources.Result{Events: []*router.Event{ev}}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, sources.Reject(http.StatusBadRequest, "bad_json", "body is not valid JSON: %v", err)
	}
	if len(items) == 0 {
		return nil, sources.Reject(http.StatusBadRequest, "empty", "empty batch: the array holds no events")
	}
	res := &sources.Result{Events: make([]*router.Event, 0, len(items))}
	for i, raw := range items {
		ev, err := s.event(raw, req.ReceivedAt)
		if err != nil {
			re := err.(*sources.RejectError)
			re.Msg = fmt.Sprintf("batch element %d: %s", i, re.Msg)
			return nil, re
		}
		res.Events = append(res.Events, ev)
	}
	return res, nil
}

func (s *Source) event(raw []byte, received time.Time) (*router.Event, error) {
	payload, strict, err := sources.DecodeObject(raw)
	if err != nil {
		return nil, err
	}
	ev := &router.Event{Source: s.name, ReceivedAt: received, Time: received, Payload: payload, RawPayload: strict, Body: raw}
	ev.Event = s.opts.Event
	if ev.Event == "" {
		v, _ := router.LookupPath(payload, s.opts.EventField)
		if ev.Event = router.String(v); ev.Event == "" {
			return nil, sources.Reject(http.StatusBadRequest, "no_event",
				"no event name: the body has no %q field; point event_field at the field that names the event, or set a constant event: on the source", s.opts.EventField)
		}
	}
	if s.opts.StatusField != "" {
		if v, ok := router.LookupPath(payload, s.opts.StatusField); ok {
			ev.Status = router.String(v)
		}
	}
	if s.opts.IDField != "" {
		v, _ := router.LookupPath(payload, s.opts.IDField)
		ev.ID = router.String(v)
	}
	if ev.ID == "" {
		ev.ID = router.DeriveID(s.name, raw)
	}
	if s.opts.TimeField != "" {
		if v, ok := router.LookupPath(payload, s.opts.TimeField); ok {
			if t, ok := ParseTime(v); ok {
				ev.Time = t
			}
		}
	}
	return ev, nil
}

// ParseTime reads a provider timestamp: an RFC 3339 string, a
// "2006-01-02 15:04:05" UTC string, or Unix seconds or milliseconds as a
// number or a numeric string.
func ParseTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case string:
		if ts, err := time.Parse(time.RFC3339Nano, t); err == nil {
			return ts, true
		}
		if ts, err := time.ParseInLocation(time.DateTime, t, time.UTC); err == nil {
			return ts, true
		}
		var n int
		if _, err := fmt.Sscanf(t, "%d", &n); err != nil || fmt.Sprint(n) != t {
			return time.Time{}, false
		}
		return ParseTime(n)
	case int:
		if t > 1e11 { // milliseconds: as seconds it would be past the year 5000
			return time.UnixMilli(int64(t)).UTC(), true
		}
		return time.Unix(int64(t), 0).UTC(), true
	case float64:
		return ParseTime(int(t))
	}
	return time.Time{}, false
}

// Precheck implements sources.Prechecker: the credentials are headers.
func (s *Source) Precheck(req *sources.Request) error { return s.authorize(req.HTTP) }

func (s *Source) authorize(r *http.Request) error {
	a := s.opts.Auth
	switch {
	case a.BearerToken != "":
		got, ok := sources.BearerToken(r.Header.Get("Authorization"))
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.BearerToken.Reveal())) != 1 {
			return sources.WithChallenge(sources.Reject(http.StatusUnauthorized, "auth",
				"missing or wrong bearer token: send Authorization: Bearer <the source's bearer_token>"), sources.BearerChallenge)
		}
	case a.Username != "":
		u, p, ok := r.BasicAuth()
		userOK := subtle.ConstantTimeCompare([]byte(u), []byte(a.Username)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(p), []byte(a.Password.Reveal())) == 1
		if !ok || !userOK || !passOK {
			return sources.WithChallenge(sources.Reject(http.StatusUnauthorized, "auth",
				"missing or wrong basic auth credentials"), sources.BasicChallenge(s.name))
		}
	}
	return nil
}

var (
	_ sources.Builder        = (*Options)(nil)
	_ sources.HeaderDefaults = (*Options)(nil)
	_ sources.HTTPSource     = (*Source)(nil)
	_ sources.Prechecker     = (*Source)(nil)
)
