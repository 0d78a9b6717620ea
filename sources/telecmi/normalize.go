package telecmi

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"switchboard/router"
	"switchboard/sources"
)

// notification is one decoded request, before it becomes an event.
type notification struct {
	payload map[string]any
	// raw is the payload as strict JSON when it came as a JSON body and
	// normalization changed nothing; nil means encode payload.
	raw []byte
	// body is what the sender sent, for sinks forwarding it unchanged; nil
	// for a GET, whose event is all in the URL (and the token with it).
	body []byte
}

// decode reads the notification from the request: the query string of a
// GET (or of a POST without a body), else the JSON or form body.
func decode(req *sources.Request, query url.Values, qerr error) (*notification, error) {
	body := bytes.TrimSpace(req.Body)
	if req.HTTP.Method == http.MethodGet || len(body) == 0 {
		if qerr != nil {
			return nil, sources.Reject(http.StatusBadRequest, "bad_query", "the query string cannot be read: %v", qerr)
		}
		p := fromValues(query)
		if len(p) == 0 {
			return nil, sources.Reject(http.StatusBadRequest, "empty",
				"the request carries no event: TeleCMI sends it as a JSON or form body (POST) or as query parameters (GET)")
		}
		normalize(p)
		return &notification{payload: p}, nil
	}
	ctype, _, _ := mime.ParseMediaType(req.HTTP.Header.Get("Content-Type"))
	form := ctype == "application/x-www-form-urlencoded" || (!strings.Contains(ctype, "json") && bytes.IndexByte(body, '=') > 0)
	if body[0] == '{' || !form {
		// JSON, strict or as documentation prints it (comments, a byte
		// order mark): the codec reads it or names the problem.
		obj, err := sources.DecodeObject(body)
		if err != nil {
			return nil, err
		}
		n := &notification{payload: obj.Payload, body: req.Body}
		if !normalize(obj.Payload) {
			n.raw = obj.Raw
		}
		return n, nil
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, sources.Reject(http.StatusBadRequest, "bad_form", "the form body cannot be read: %v", err)
	}
	p := fromValues(vals)
	if len(p) == 0 {
		return nil, sources.Reject(http.StatusBadRequest, "empty", "the form body holds no fields")
	}
	normalize(p)
	return &notification{payload: p, body: req.Body}, nil
}

// fromValues makes a payload of query or form values: the first value of
// each key, as a string. token is the shared secret, not event data.
func fromValues(v url.Values) map[string]any {
	p := make(map[string]any, len(v))
	for k, vs := range v {
		if k == "token" || len(vs) == 0 {
			continue
		}
		p[k] = vs[0]
	}
	return p
}

// Fields normalized to one type whatever the transport; see the package doc.
var (
	numberFields = []string{"time", "app_id", "appid", "answeredsec", "waitedsec"}
	boolFields   = []string{"record", "voicemail", "click_to_call"}
	jsonFields   = []string{"custom", "extra_params"}
)

// normalize makes p's types independent of how it was sent, in place, and
// reports whether it changed anything.
func normalize(p map[string]any) (changed bool) {
	for _, k := range numberFields {
		if s, ok := p[k].(string); ok {
			if n, ok := digits(s); ok {
				p[k] = n
				changed = true
			}
		}
	}
	for _, k := range boolFields {
		if s, ok := p[k].(string); ok {
			switch {
			case strings.EqualFold(s, "true"):
				p[k], changed = true, true
			case strings.EqualFold(s, "false"):
				p[k], changed = false, true
			}
		}
	}
	for _, k := range jsonFields {
		s, ok := p[k].(string)
		if !ok || !strings.HasPrefix(strings.TrimSpace(s), "{") {
			continue
		}
		obj, err := sources.DecodeObject([]byte(s))
		if err != nil {
			continue // not an object after all: keep the text
		}
		p[k] = obj.Payload
		if _, taken := p[k+"_raw"]; !taken {
			p[k+"_raw"] = s
		}
		changed = true
	}
	for _, alias := range [][2]string{{"app_id", "appid"}, {"cmiuuid", "cmiuid"}} {
		if _, ok := p[alias[0]]; ok {
			continue
		}
		if v, ok := p[alias[1]]; ok {
			p[alias[0]] = v
			changed = true
		}
	}
	return changed
}

// digits reads a whole, unsigned decimal number that fits an int.
func digits(s string) (int, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// event makes the normalized event of a notification.
func (s *Source) event(n *notification, req *sources.Request) (*router.Event, error) {
	p := n.payload
	typ, ok := p["type"]
	if !ok {
		return nil, sources.Reject(http.StatusBadRequest, "no_event",
			`no "type" field: TeleCMI marks live events with type "event" and call records with type "cdr"; check that this request comes from TeleCMI`)
	}
	ev := &router.Event{Source: s.name, ReceivedAt: req.ReceivedAt, Time: req.ReceivedAt, Payload: p, Body: n.body}
	kind := strings.ToLower(router.String(typ))
	switch kind {
	case "event":
		ev.Event = EventLive
	case "cdr":
		ev.Event = EventCDR
	default:
		return nil, sources.Reject(http.StatusBadRequest, "no_event",
			`the "type" field is %s; TeleCMI sends "event" (live events) or "cdr" (call records)`, quoteShort(router.String(typ)))
	}
	if v, ok := p["status"]; ok {
		ev.Status = router.String(v)
	}
	if v := p["time"]; v != nil && v != "" {
		if t, ok := epoch(v); ok {
			ev.Time = t
		} else {
			// The ingest pipeline logs it: the event keeps the receipt time.
			ev.TimeNote = "payload.time: " + quoteShort(router.String(v)) +
				" is not Unix milliseconds or seconds between 1970 and 5138"
		}
	}
	ev.RawPayload = n.raw
	if ev.RawPayload == nil {
		raw, err := encode(p)
		if err != nil {
			return nil, sources.Reject(http.StatusBadRequest, "bad_json", "the payload cannot be written as JSON: %v", err)
		}
		ev.RawPayload = raw
	}
	if uuid := router.String(p["cmiuuid"]); uuid != "" {
		parts := []string{uuid}
		if leg := router.String(p["leg"]); leg != "" {
			parts = append(parts, leg)
		}
		parts = append(parts, kind)
		if ev.Status != "" {
			parts = append(parts, ev.Status)
		}
		ev.ID = strings.Join(parts, ":")
	} else {
		// The sorted encoding, not the bytes received: a resend by GET or
		// with keys in another order is the same notification.
		canon, err := encode(p)
		if err != nil {
			return nil, sources.Reject(http.StatusBadRequest, "bad_json", "the payload cannot be written as JSON: %v", err)
		}
		ev.ID = router.DeriveID(s.name, canon)
	}
	return ev, nil
}

// epoch reads TeleCMI's `time`: milliseconds since the epoch (seconds when
// too small to be milliseconds of this century).
func epoch(v any) (time.Time, bool) {
	var n int64
	switch t := v.(type) {
	case int:
		n = int64(t)
	case float64:
		n = int64(t)
	default:
		return time.Time{}, false
	}
	switch {
	case n <= 0 || n > 1e14:
		return time.Time{}, false
	case n < 1e11:
		return time.Unix(n, 0).UTC(), true
	}
	return time.UnixMilli(n).UTC(), true
}

// encode writes a payload as compact JSON, leaving <, > and & readable.
func encode(p map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}
