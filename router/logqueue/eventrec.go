package logqueue

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"switchboard/router"
)

// The event itself, at the end of an event record: everything a delivery
// needs without parsing JSON.
//
//	flags u8 | id | source | event | status | time | received_at |
//	payload offset uvarint | normalized event JSON |
//	[raw payload] | [headers: count, name, value...] | [body: the rest]
//
// Strings and byte fields are uvarint length + bytes; times are seconds
// since year 1 and nanoseconds. The raw payload is stored only when it
// differs from the payload inside the JSON (a pretty-printed body), and the
// body only when it differs from the raw payload: most events store their
// payload once.
const (
	evRawSame  = 1 << iota // the raw payload is the JSON's payload
	evRawOwn               // the raw payload follows the JSON
	evHeaders              // headers follow
	evBodySame             // the body is the raw payload
	evBodyOwn              // the body is the rest of the record
	evFlags    = evRawSame | evRawOwn | evHeaders | evBodySame | evBodyOwn
)

// appendEvent encodes e as stored. It fails only when the event cannot be
// written as JSON (MarshalJSON's error).
func appendEvent(b []byte, e *router.Event) ([]byte, error) {
	ej, err := e.MarshalJSON()
	if err != nil {
		return nil, err
	}
	pj, _ := e.PayloadJSON()
	payloadAt := len(ej) - 1 - len(pj)
	var flags byte
	switch {
	case e.RawPayload == nil:
	case bytes.Equal(e.RawPayload, pj):
		flags |= evRawSame
	default:
		flags |= evRawOwn
	}
	if e.Headers != nil {
		flags |= evHeaders
	}
	switch {
	case e.Body == nil:
	case e.RawPayload != nil && bytes.Equal(e.Body, e.RawPayload):
		flags |= evBodySame
	default:
		flags |= evBodyOwn
	}
	b = append(b, flags)
	b = appendString(b, e.ID)
	b = appendString(b, e.Source)
	b = appendString(b, e.Event)
	b = appendString(b, e.Status)
	b = appendTime(b, e.Time)
	b = appendTime(b, e.ReceivedAt)
	b = binary.AppendUvarint(b, uint64(payloadAt))
	b = appendBytes(b, ej)
	if flags&evRawOwn != 0 {
		b = appendBytes(b, e.RawPayload)
	}
	if flags&evHeaders != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Headers)))
		// In name order: the same event always stores the same bytes.
		var inline [16]string // kept headers are few: no allocation
		keys := inline[:0]
		for k := range e.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendString(b, k)
			b = appendString(b, e.Headers[k])
		}
	}
	if flags&evBodyOwn != 0 {
		b = append(b, e.Body...)
	}
	return b, nil
}

// eventSize estimates appendEvent's length, to size buffers once.
func eventSize(e *router.Event) int {
	n := 64 + len(e.ID) + len(e.Source) + len(e.Event) + len(e.Status) + 2*(len(e.RawPayload)+160)
	for k, v := range e.Headers {
		n += len(k) + len(v) + 4
	}
	return n + len(e.Body)
}

// decodeEvent reads an event as stored; the event keeps slices of b, which
// the caller must not reuse.
func decodeEvent(b []byte) (*router.Event, error) {
	e := &router.Event{}
	if err := parseEvent(b, e); err != nil {
		return nil, err
	}
	return e, nil
}

// validateEvent checks that b decodes, without allocating: what the start
// does for every stored event.
func validateEvent(b []byte) error { return parseEvent(b, nil) }

// parseEvent decodes b into e, or only checks it when e is nil.
func parseEvent(b []byte, e *router.Event) error {
	r := reader{b: b}
	flags := r.byte()
	if flags&^evFlags != 0 || flags&(evRawSame|evRawOwn) == evRawSame|evRawOwn || flags&(evBodySame|evBodyOwn) == evBodySame|evBodyOwn {
		return fmt.Errorf("event record has unknown flags %#x", flags)
	}
	id, source, event, status := r.bytes(), r.bytes(), r.bytes(), r.bytes()
	tm, received := r.time(), r.time()
	payloadAt := r.uvarint()
	ej := r.bytes()
	if r.err == nil && (payloadAt >= uint64(len(ej)) || ej[len(ej)-1] != '}') {
		return fmt.Errorf("event record's payload offset %d does not fit its JSON (%d bytes)", payloadAt, len(ej))
	}
	var raw []byte
	switch {
	case flags&evRawOwn != 0:
		raw = r.bytes()
	case r.err == nil:
		// Stored once, or built from Payload: the JSON's payload is the
		// raw payload (as sinks forwarding it raw need one).
		raw = ej[payloadAt : len(ej)-1 : len(ej)-1]
	}
	var headers map[string]string
	if flags&evHeaders != 0 {
		n := r.count(2)
		if e != nil {
			headers = make(map[string]string, n)
		}
		for range n {
			k, v := r.bytes(), r.bytes()
			if e != nil {
				headers[string(k)] = string(v)
			}
		}
	}
	var body []byte
	switch {
	case flags&evBodyOwn != 0:
		body = r.rest()
		if body == nil {
			body = []byte{}
		}
	case flags&evBodySame != 0:
		body = raw
	}
	if r.err != nil {
		return fmt.Errorf("event record: %w", r.err)
	}
	if len(r.b) > 0 {
		return fmt.Errorf("event record has %d bytes after its last field", len(r.b))
	}
	if e == nil {
		return nil
	}
	e.ID, e.Source, e.Event, e.Status = string(id), string(source), string(event), string(status)
	e.Time, e.ReceivedAt = tm, received
	e.RawPayload, e.Headers, e.Body = raw, headers, body
	e.Restore(ej, int(payloadAt))
	return nil
}
