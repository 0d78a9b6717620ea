// Package router owns the event model and everything between a source and a
// sink: compiled rules and filters, the queue of deliveries, and the workers
// that deliver them with retries.
//
// Data flow: a source turns a request into *Event values and hands them to
// Router.Accept. Accept evaluates the rules of the current Table (an
// immutable, precompiled snapshot published through an atomic pointer),
// collects the set of sinks, and enqueues one Delivery per sink. Only when
// the queue says they are stored does the source answer 2xx. Per-sink
// workers take deliveries from the queue, send them, and ack, retry or
// dead-letter each one.
package router

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Event is the normalized form of one provider event: what rules see, what
// `route` prints and what the file and HTTP sinks write.
type Event struct {
	ID         string
	Source     string // configured source name
	Event      string // the provider's own event name
	Status     string // the provider's status, "" when the event has none
	Time       time.Time
	ReceivedAt time.Time
	// Payload is the provider's event object. Numbers are int, uint64,
	// float64 or json.Number, whichever keeps their exact value (see
	// NormalizeNumbers). An event read back from the queue has none until
	// asked: use Fields, which decodes it once, on first use.
	Payload map[string]any
	// RawPayload is Payload as the provider sent it, when that was strict
	// JSON; it is written verbatim instead of re-encoding Payload.
	RawPayload []byte
	// Headers holds the request's headers, lower-case name -> first value.
	Headers map[string]string
	// Body is the request body as received, for sinks configured to forward
	// it unchanged.
	Body []byte
	// TimeNote, set by a source, says why Time is the receipt time though
	// the payload names a time ("payload.updatedAt: ... is outside years
	// 0000-9999"); the ingest pipeline logs it. It is not stored.
	TimeNote string
	// Memo is the daemon's own record of the event (its history entry),
	// set before the event is queued and carried with it to the delivery
	// observers while it stays in memory, so that they need no lookup. It
	// is not stored: an event read back from the queue has none.
	Memo any

	// encoded caches MarshalJSON: one event may go to several sinks at once.
	encoded atomic.Pointer[encoded]
	// fields is Payload decoded lazily, for events restored from storage.
	fields atomic.Pointer[map[string]any]
}

// encoded is the normalized event JSON and where its payload starts in it.
type encoded struct {
	b         []byte
	payloadAt int
}

// TimeFormat is how event times are written: RFC 3339, UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON writes the normalized event:
// {"id","source","event","status","time","received_at","payload"}.
func (e *Event) MarshalJSON() ([]byte, error) {
	if p := e.encoded.Load(); p != nil {
		return p.b, nil
	}
	// Sized for all of it, so that it is one allocation: the fixed text
	// and two times are under 160 bytes.
	b := make([]byte, 0, 160+len(e.ID)+len(e.Source)+len(e.Event)+len(e.Status)+len(e.RawPayload))
	b = append(b, `{"id":`...)
	b = AppendJSONString(b, e.ID)
	b = append(b, `,"source":`...)
	b = AppendJSONString(b, e.Source)
	b = append(b, `,"event":`...)
	b = AppendJSONString(b, e.Event)
	if e.Status != "" {
		b = append(b, `,"status":`...)
		b = AppendJSONString(b, e.Status)
	}
	b = append(b, `,"time":"`...)
	b = AppendTime(b, e.Time)
	b = append(b, `","received_at":"`...)
	b = AppendTime(b, e.ReceivedAt)
	b = append(b, `","payload":`...)
	payloadAt := len(b)
	switch {
	case e.RawPayload != nil && (bytes.ContainsAny(e.RawPayload, "\r\n\t") || bytes.Contains(e.RawPayload, []byte("  "))):
		// One event per line in JSON Lines sinks, and no indentation left
		// over from a pretty-printed body (curl -d keeps it as spaces).
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.RawPayload); err != nil {
			return nil, fmt.Errorf("payload of event %s is not JSON: %w", e.ID, err)
		}
		b = append(b, buf.Bytes()...)
	case e.RawPayload != nil:
		b = append(b, e.RawPayload...)
	case e.Payload != nil:
		p, err := json.Marshal(e.Payload)
		if err != nil {
			return nil, fmt.Errorf("encode payload of event %s: %w", e.ID, err)
		}
		b = append(b, p...)
	default:
		b = append(b, "{}"...)
	}
	b = append(b, '}')
	e.encoded.Store(&encoded{b, payloadAt})
	return b, nil
}

// PayloadJSON returns the payload as it appears in the normalized event
// JSON (see MarshalJSON).
func (e *Event) PayloadJSON() ([]byte, error) {
	if _, err := e.MarshalJSON(); err != nil {
		return nil, err
	}
	p := e.encoded.Load()
	return p.b[p.payloadAt : len(p.b)-1], nil
}

// Restore gives an event read back from storage the normalized JSON it
// was accepted with, so that MarshalJSON returns exactly those bytes, and
// leaves Payload to be decoded by Fields when something needs it. payloadAt
// is where the payload starts in encoded; it must be a value PayloadJSON
// reported for the same bytes.
func (e *Event) Restore(encodedJSON []byte, payloadAt int) {
	e.encoded.Store(&encoded{encodedJSON, payloadAt})
	e.fields.Store(nil)
}

// Fields returns the payload's fields: Payload when the event has it, else
// the payload decoded once from RawPayload (or the normalized JSON), as for
// an event read back from the queue. Safe for concurrent use; a payload
// that does not decode gives an empty map.
func (e *Event) Fields() map[string]any {
	if e.Payload != nil {
		return e.Payload
	}
	if p := e.fields.Load(); p != nil {
		return *p
	}
	src := e.RawPayload
	if src == nil {
		src, _ = e.PayloadJSON()
	}
	m, err := DecodeObject(src)
	if err != nil || m == nil {
		m = map[string]any{}
	}
	e.fields.CompareAndSwap(nil, &m)
	return *e.fields.Load()
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w struct {
		ID         string          `json:"id"`
		Source     string          `json:"source"`
		Event      string          `json:"event"`
		Status     string          `json:"status"`
		Time       time.Time       `json:"time"`
		ReceivedAt time.Time       `json:"received_at"`
		Payload    json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	p, err := DecodeObject(w.Payload)
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	e.ID, e.Source, e.Event, e.Status, e.Time, e.ReceivedAt = w.ID, w.Source, w.Event, w.Status, w.Time, w.ReceivedAt
	e.Payload, e.RawPayload = p, []byte(w.Payload)
	e.encoded.Store(nil)
	e.fields.Store(nil)
	return nil
}

// AppendJSONString appends s quoted as JSON; strconv.AppendQuote is not JSON for
// non-ASCII control characters, so fall back to encoding/json when needed.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// DecodeObject parses a JSON object with numbers normalized (see
// Event.Payload).
func DecodeObject(b []byte) (map[string]any, error) {
	v, err := DecodeJSON(b)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected a JSON object, got %s", jsonKind(v))
	}
	return m, nil
}

// DecodeJSON parses one JSON value with numbers normalized.
func DecodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	// Not d.More(): it reports false for a stray `}` or `]`.
	if rest := bytes.TrimLeft(b[d.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, fmt.Errorf("unexpected data after the JSON value at offset %d", len(b)-len(rest))
	}
	return NormalizeNumbers(v), nil
}

// NormalizeNumbers replaces json.Number values, in place, by the type
// that keeps their exact value: int, uint64, float64 or, when none does,
// the json.Number itself (see number).
func NormalizeNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			t[k] = NormalizeNumbers(c)
		}
	case []any:
		for i, c := range t {
			t[i] = NormalizeNumbers(c)
		}
	case json.Number:
		return number(string(t))
	}
	return v
}

// Number decodes the text of one JSON number (already checked against the
// JSON grammar) as NormalizeNumbers does.
func Number(s string) any { return number(s) }

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	}
	return "a number"
}

// DeriveID makes an id for a provider event that carries none: a digest of
// the source name and the payload bytes, so the provider's retry of the same
// body gets the same id and any other body a different one.
func DeriveID(source string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write(body)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// Lookup returns the value of key on the event: a normalized field (id,
// source, event, status) or a dotted path into the payload
// ("recipient.from"). ok is false when the event lacks it.
func (e *Event) Lookup(key string) (any, bool) {
	switch key {
	case "id":
		return e.ID, true
	case "source":
		return e.Source, true
	case "event":
		return e.Event, true
	case "status":
		return e.Status, e.Status != ""
	}
	if e.undecoded() {
		return RawLookup(e.RawPayload, key)
	}
	return LookupPath(e.Fields(), key)
}

// undecoded reports whether the payload is still only its bytes: a field
// is then read from them, not by decoding the whole payload.
func (e *Event) undecoded() bool {
	return e.Payload == nil && e.RawPayload != nil && e.fields.Load() == nil
}

// LookupPath follows a dotted path through nested objects.
func LookupPath(m map[string]any, path string) (any, bool) {
	var cur any = m
	for path != "" {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		var key string
		if i := strings.IndexByte(path, '.'); i >= 0 {
			key, path = path[:i], path[i+1:]
		} else {
			key, path = path, ""
		}
		if cur, ok = obj[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// String renders a scalar payload value as text, the way filters and ids
// compare it: strings verbatim, numbers with their exact value and without
// exponent (a json.Number as its text), booleans as true/false. Objects
// and arrays render as JSON.
func String(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case int:
		return strconv.Itoa(t)
	case uint64:
		return strconv.FormatUint(t, 10)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(t)
	case nil:
		return ""
	case json.Number:
		return string(t)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
