package natsqueue

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"switchboard/router"
)

// A message's data is the event as accepted, self-contained, so that a
// delivery on another replica, after a restart or from a replayed dead
// letter sends exactly what the first attempt would have sent:
//
//	version(1) | flags(1) | time | received_at |
//	uvarint len + normalized event JSON | headers | body
//
// headers are a uvarint count of (uvarint len + name, uvarint len + value),
// bytes as received (JSON would turn invalid UTF-8 into U+FFFD).
//
// Times are varint seconds and uvarint nanoseconds since 1970, exact for
// any year (the JSON carries milliseconds, and no year past 9999). flags
// bit 0 means the body equals the payload as the normalized JSON holds it
// and is not stored twice.
const (
	recordVersion     = 1
	flagBodyIsPayload = 1
)

func encodeEvent(e *router.Event) ([]byte, error) {
	ej, err := e.MarshalJSON()
	if err != nil {
		return nil, err
	}
	hlen := 0
	for k, v := range e.Headers {
		hlen += 2*binary.MaxVarintLen32 + len(k) + len(v)
	}
	var flags byte
	body := e.Body
	// The body rides as the payload only when the normalized JSON holds
	// the payload's bytes as they are (its last member): MarshalJSON
	// compacts a payload with line breaks, tabs or runs of spaces, and a
	// body must come back byte for byte, as `body: raw` forwards it.
	if body != nil && bytes.Equal(body, e.RawPayload) && bytes.HasSuffix(ej[:len(ej)-1], body) {
		flags |= flagBodyIsPayload
		body = nil
	}
	b := make([]byte, 0, 2+5*binary.MaxVarintLen64+len(ej)+hlen+len(body))
	b = append(b, recordVersion, flags)
	b = appendTime(b, e.Time)
	b = appendTime(b, e.ReceivedAt)
	b = binary.AppendUvarint(b, uint64(len(ej)))
	b = append(b, ej...)
	b = binary.AppendUvarint(b, uint64(len(e.Headers)))
	for k, v := range e.Headers {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return append(b, body...), nil
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func readTime(b []byte) (time.Time, []byte, error) {
	sec, k := binary.Varint(b)
	if k <= 0 {
		return time.Time{}, nil, errCorrupt
	}
	ns, j := binary.Uvarint(b[k:])
	if j <= 0 || ns >= 1e9 {
		return time.Time{}, nil, errCorrupt
	}
	return time.Unix(sec, int64(ns)).UTC(), b[k+j:], nil
}

var errCorrupt = errors.New("corrupt record")

// eventFields is the part of the normalized JSON not stored elsewhere;
// times are taken from the record's header, never parsed from text.
type eventFields struct {
	ID      string          `json:"id"`
	Source  string          `json:"source"`
	Event   string          `json:"event"`
	Status  string          `json:"status"`
	Payload json.RawMessage `json:"payload"`
}

func decodeEvent(b []byte) (*router.Event, error) {
	if len(b) < 2 {
		return nil, errCorrupt
	}
	if b[0] != recordVersion {
		return nil, fmt.Errorf("%w: record version %d, this build reads %d", errCorrupt, b[0], recordVersion)
	}
	flags := b[1]
	e := &router.Event{}
	var err error
	rest := b[2:]
	if e.Time, rest, err = readTime(rest); err != nil {
		return nil, err
	}
	if e.ReceivedAt, rest, err = readTime(rest); err != nil {
		return nil, err
	}
	ej, rest, err := readChunk(rest)
	if err != nil {
		return nil, err
	}
	if e.Headers, rest, err = readHeaders(rest); err != nil {
		return nil, err
	}
	body := rest
	f, payloadAt, ok := leadingFields(ej)
	if ok {
		// The payload is decoded only if a template or condition asks
		// for a field: a delivery forwarding the event parses nothing.
		e.Restore(ej, payloadAt)
		f.Payload = ej[payloadAt : len(ej)-1 : len(ej)-1]
	} else {
		if err := json.Unmarshal(ej, &f); err != nil {
			return nil, fmt.Errorf("%w: %v", errCorrupt, err)
		}
		if e.Payload, err = router.DecodeObject(f.Payload); err != nil {
			return nil, fmt.Errorf("%w: payload: %v", errCorrupt, err)
		}
	}
	e.ID, e.Source, e.Event, e.Status, e.RawPayload = f.ID, f.Source, f.Event, f.Status, []byte(f.Payload)
	if flags&flagBodyIsPayload != 0 {
		e.Body = e.RawPayload
	} else if len(body) > 0 {
		e.Body = bytes.Clone(body)
	}
	return e, nil
}

// leadingFields reads the normalized JSON's fields in one pass over its
// bytes (router.RawPaths) without decoding the payload, and where the
// payload starts. ok is false unless every field is a string and the
// payload is the last member, as Event.MarshalJSON writes them: the caller
// then decodes the JSON in full.
func leadingFields(ej []byte) (f eventFields, payloadAt int, ok bool) {
	var found [5][]byte
	router.RawPaths(ej, eventPaths, found[:])
	for i, dst := range []*string{&f.ID, &f.Source, &f.Event, &f.Status} {
		if found[i] == nil {
			continue // status is left out when empty; a missing id, source or event is ""
		}
		s, err := router.DecodeString(found[i])
		if err != nil {
			return f, 0, false
		}
		*dst = s
	}
	// The payload, a slice of ej, must end right before its closing brace.
	p := found[4]
	if len(p) == 0 || ej[len(ej)-1] != '}' {
		return f, 0, false
	}
	payloadAt = len(ej) - 1 - len(p)
	if &ej[payloadAt] != &p[0] {
		return f, 0, false
	}
	return f, payloadAt, true
}

// eventPaths are the members leadingFields reads, the payload last.
var eventPaths = [][]string{{"id"}, {"source"}, {"event"}, {"status"}, {"payload"}}

func readHeaders(b []byte) (map[string]string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, nil, errCorrupt
	}
	b = b[k:]
	if n == 0 {
		return nil, b, nil
	}
	h := make(map[string]string, n)
	for range n {
		name, rest, err := readChunk(b)
		if err != nil {
			return nil, nil, err
		}
		value, rest, err := readChunk(rest)
		if err != nil {
			return nil, nil, err
		}
		h[string(name)], b = string(value), rest
	}
	return h, b, nil
}

func readChunk(b []byte) (chunk, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, errCorrupt
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

// digest is a 128-bit hash of parts, hex: a key or message id of fixed,
// subject-safe length whatever a provider puts in its ids. 128 bits, so
// that two different ids never meet in practice.
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// Dead-letter headers. Values a provider controls (ids, names) and error
// texts are quoted: a header value must not hold a line break, and an
// event id must not be able to add headers.
const (
	hdrSink     = "Sb-Sink"
	hdrEventID  = "Sb-Event-Id"
	hdrSource   = "Sb-Source"
	hdrEvent    = "Sb-Event"
	hdrAttempts = "Sb-Attempts"
	hdrFirstTry = "Sb-First-Try"
	hdrLastTry  = "Sb-Last-Try"
	hdrDeadAt   = "Sb-Dead-At"
	hdrError    = "Sb-Error"
)

// deadHeader describes a dead letter; ev may be nil for a record that
// could not be decoded.
func deadHeader(sink string, ev *router.Event, d *router.Delivery, deadAt time.Time, lastError string) nats.Header {
	h := nats.Header{}
	h.Set(hdrSink, sink)
	if ev != nil {
		h.Set(hdrEventID, strconv.Quote(ev.ID))
		h.Set(hdrSource, strconv.Quote(ev.Source))
		h.Set(hdrEvent, strconv.Quote(ev.Event))
	}
	if d != nil {
		h.Set(hdrAttempts, strconv.Itoa(d.Attempts))
		setTime(h, hdrFirstTry, d.FirstTry)
		setTime(h, hdrLastTry, d.LastTry)
	}
	setTime(h, hdrDeadAt, deadAt)
	h.Set(hdrError, strconv.Quote(lastError))
	return h
}

func setTime(h nats.Header, key string, t time.Time) {
	if !t.IsZero() {
		h.Set(key, t.UTC().Format(time.RFC3339Nano))
	}
}

// deadLetter reads a dead letter's headers; the event is left to the
// caller.
func deadLetter(seq uint64, h nats.Header) router.DeadLetter {
	dl := router.DeadLetter{
		ID:        strconv.FormatUint(seq, 10),
		Sink:      h.Get(hdrSink),
		EventID:   unquote(h.Get(hdrEventID)),
		Source:    unquote(h.Get(hdrSource)),
		EventName: unquote(h.Get(hdrEvent)),
		LastError: unquote(h.Get(hdrError)),
	}
	dl.Attempts, _ = strconv.Atoi(h.Get(hdrAttempts))
	dl.FirstTry = headerTime(h, hdrFirstTry)
	dl.LastTry = headerTime(h, hdrLastTry)
	dl.DeadAt = headerTime(h, hdrDeadAt)
	return dl
}

func unquote(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}

func headerTime(h nats.Header, key string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, h.Get(key))
	return t
}
