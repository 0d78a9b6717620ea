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
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
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
	src := &Source{name: info.Name, opts: *o, dotted: []string{o.EventField, o.StatusField, o.IDField, o.TimeField}}
	for _, f := range src.dotted {
		src.paths = append(src.paths, router.PathSegments(f))
	}
	return src, nil
}

// Source parses generic JSON webhooks.
type Source struct {
	name string
	opts Options
	// dotted are the event, status, id and time fields, paths their
	// members, for reading them from a body's bytes in one pass.
	dotted []string
	paths  [][]string
}

// The fields of a body the source reads, as indexes into Source.paths.
const (
	fieldEvent = iota
	fieldStatus
	fieldID
	fieldTime
)

// Parse implements sources.HTTPSource.
func (s *Source) Parse(req *sources.Request) (*sources.Result, error) {
	if err := s.authorize(req.HTTP); err != nil {
		return nil, err
	}
	body := bytes.TrimSpace(req.Body)
	if len(body) == 0 {
		return nil, sources.Reject(http.StatusBadRequest, "empty", "empty body; send a JSON object (one event) or an array of objects (a batch)")
	}
	// A body of one strict JSON object, nearly every request, is not
	// decoded: its fields are read from its bytes, its payload decoded
	// only if a rule or a template needs it.
	var one [1]sources.Object
	objs := one[:]
	var ok bool
	if objs[0], ok = sources.ScanObject(body); !ok {
		var err error
		if objs, err = sources.DecodeBatch(body, req.MaxBatchEvents); err != nil {
			return nil, err
		}
	}
	res := sources.NewResult(len(objs))
	for i, obj := range objs {
		ev, err := s.event(obj, req.ReceivedAt)
		if len(objs) == 1 && err == nil {
			ev.Body = body // as received, relaxed or not
		}
		if err != nil {
			if len(objs) > 1 {
				re := err.(*sources.RejectError)
				re.Msg = fmt.Sprintf("batch element %d: %s", i, re.Msg)
			}
			return nil, err
		}
		res.Events = append(res.Events, ev)
	}
	return res, nil
}

func (s *Source) event(obj sources.Object, received time.Time) (*router.Event, error) {
	raw := obj.Raw
	ev := &router.Event{Source: s.name, ReceivedAt: received, Time: received, Payload: obj.Payload, RawPayload: raw, Body: raw}
	var f found
	s.fields(obj, &f)
	ev.Event = s.opts.Event
	if ev.Event == "" {
		if ev.Event, _ = f.text(fieldEvent); ev.Event == "" {
			return nil, sources.Reject(http.StatusBadRequest, "no_event",
				"no event name: the body has no %q field; point event_field at the field that names the event, or set a constant event: on the source", s.opts.EventField)
		}
	}
	if v, ok := f.text(fieldStatus); ok {
		ev.Status = v
	}
	ev.ID = s.idText(obj, &f)
	if ev.ID == "" {
		ev.ID = router.DeriveID(s.name, raw)
	}
	if v, ok := f.value(fieldTime); ok {
		t, err := ParseTime(v)
		if err != nil {
			ev.TimeNote = fmt.Sprintf("time_field %s: %v", s.opts.TimeField, err)
		} else {
			ev.Time = t
		}
	}
	return ev, nil
}

// idText is the id as sent: a string's value, or a number's JSON text
// verbatim, so that ids that differ in any digit (1 and 1.0, 0.1 and
// 0.10, 12345678901234567891 and ...892) are different events; "" when
// the body has none.
func (s *Source) idText(obj sources.Object, f *found) string {
	t := f.raw[fieldID]
	if t == nil && f.ok[fieldID] {
		// Read from a decoded payload: a number's text is in the bytes.
		switch f.val[fieldID].(type) {
		case int, uint64, float64, json.Number:
			var raw [1][]byte
			router.RawPaths(obj.Raw, s.paths[fieldID:fieldID+1], raw[:])
			t = raw[0]
		}
	}
	if len(t) > 0 && (t[0] == '-' || t[0] >= '0' && t[0] <= '9') {
		return string(t)
	}
	id, _ := f.text(fieldID)
	return id
}

// found holds the source's fields of one object: each one's JSON when read
// from the object's bytes, or its value when read from a decoded payload.
type found struct {
	raw [fieldTime + 1][]byte
	val [fieldTime + 1]any
	ok  [fieldTime + 1]bool
}

// text is field i as router.String shows it; a string is read from its
// JSON without boxing it in an interface.
func (f *found) text(i int) (string, bool) {
	if s, err := router.DecodeString(f.raw[i]); err == nil {
		return s, true
	}
	v, ok := f.value(i)
	return router.String(v), ok
}

// value is field i decoded.
func (f *found) value(i int) (any, bool) {
	if r := f.raw[i]; r != nil {
		v, err := router.DecodeValue(r)
		return v, err == nil
	}
	return f.val[i], f.ok[i]
}

// fields reads the source's fields of obj: from its decoded payload, or
// from its bytes, all found in one pass.
func (s *Source) fields(obj sources.Object, f *found) {
	if obj.Payload != nil {
		for i, path := range s.dotted {
			if path != "" {
				f.val[i], f.ok[i] = router.LookupPath(obj.Payload, path)
			}
		}
		return
	}
	router.RawPaths(obj.Raw, s.paths, f.raw[:])
}

// ParseTime reads a provider timestamp: an RFC 3339 string, a
// "2006-01-02 15:04:05" UTC string, or Unix seconds or milliseconds as a
// number or a numeric string (past 1e11, the value is milliseconds: as
// seconds it would be past the year 5000). A time outside years 0000-9999
// is refused (router.ErrTimeRange): it could not be stored.
func ParseTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case string:
		ts, err := router.ParseRFC3339(t)
		if err == nil || errors.Is(err, router.ErrTimeRange) {
			return ts, err
		}
		if ts, err := time.ParseInLocation(time.DateTime, t, time.UTC); err == nil {
			return ts, nil // years 0000-9999 by its layout
		}
		if n, err := strconv.ParseInt(t, 10, 64); err == nil {
			return ParseTime(int(n))
		}
		if len(t) > 40 {
			t = t[:40] + "..."
		}
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time, a \"2006-01-02 15:04:05\" UTC time or Unix seconds or milliseconds", t)
	case int:
		if t > 1e11 || t < -1e11 {
			return router.UnixMillis(int64(t))
		}
		return router.UnixSeconds(int64(t))
	case float64:
		if t != math.Trunc(t) || math.Abs(t) > 1e18 {
			return time.Time{}, fmt.Errorf("%v is not a whole number of Unix seconds or milliseconds in years 0000-9999", t)
		}
		return ParseTime(int(t))
	case uint64, json.Number:
		return time.Time{}, fmt.Errorf("%s is %w as Unix seconds or milliseconds", router.String(t), router.ErrTimeRange)
	}
	return time.Time{}, fmt.Errorf("a %s is not a time; send an RFC 3339 string or Unix seconds or milliseconds", kindOf(v))
}

func kindOf(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "value"
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
