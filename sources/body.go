package sources

import (
	"errors"
	"net/http"

	"switchboard/router"
	"switchboard/sources/relaxed"
)

// The body codec: every source reads JSON bodies through DecodeObject (one
// object) or DecodeBatch (an object or an array of them), so that every
// source and the batch path accept the same forms, in the same single
// pass.
//
// relaxed.Decode reads every body once and says whether it was strict
// JSON (what encoding/json accepts): then the raw bytes are the body
// unchanged; a relaxed body (trailing commas, single quotes, unquoted
// keys, bare digits with X placeholders, comments) is written again as
// strict JSON, in its key order and with its numbers' text as sent.

// Object is one JSON object of a request body.
type Object struct {
	// Payload is the object decoded; nil for an object read by
	// ScanObject, whose members are read from Raw as they are needed.
	Payload map[string]any
	// Raw is the object as strict JSON, for Event.RawPayload: the bytes
	// received when they were strict.
	Raw []byte
}

// ScanObject reads a body holding one object of strict JSON without
// decoding it: most webhook bodies are, and a source that needs a few of
// their fields (the generic source's event, status, id and time) reads
// those with Lookup, leaving the rest to be decoded only if a rule or a
// template asks for the payload (router.Event.Fields). ok is false for
// anything else (relaxed JSON, an array, not JSON): DecodeObject or
// DecodeBatch read those, and say what is wrong.
func ScanObject(b []byte) (Object, bool) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	if i == len(b) || b[i] != '{' || !relaxed.Strict(b) {
		return Object{}, false
	}
	return Object{Raw: b}, true
}

// Lookup returns the value at a dotted path from the object's root
// ("payload.status"), as router.LookupPath finds it in Payload.
func (o Object) Lookup(path string) (any, bool) {
	if o.Payload != nil {
		return router.LookupPath(o.Payload, path)
	}
	return router.RawLookup(o.Raw, path)
}

// DecodeObject reads a body (or part of one) holding one JSON object.
func DecodeObject(b []byte) (Object, error) {
	d, err := relaxed.Decode(b, relaxed.Options{})
	if err != nil {
		return Object{}, badJSON(err)
	}
	m, ok := d.Value.(map[string]any)
	if !ok {
		return Object{}, Reject(http.StatusBadRequest, "bad_json", "body is not a JSON object: it is %s", kind(d.Value))
	}
	return Object{Payload: m, Raw: d.JSON}, nil
}

// DecodeBatch reads a body holding one JSON object (one event) or an array
// of objects (a batch of events). A batch of more than maxEvents objects
// is refused with 413 as soon as the parser reaches the element past the
// bound, before anything more is decoded; maxEvents <= 0 means no bound.
func DecodeBatch(b []byte, maxEvents int) ([]Object, error) {
	d, err := relaxed.Decode(b, relaxed.Options{MaxElements: maxEvents})
	if errors.Is(err, relaxed.ErrTooMany) {
		return nil, Reject(http.StatusRequestEntityTooLarge, "too_many_events",
			"the batch holds more than %d events, the limit set by server.max_batch_events; send smaller batches or raise the setting", maxEvents)
	}
	if err != nil {
		return nil, badJSON(err)
	}
	switch v := d.Value.(type) {
	case map[string]any:
		return []Object{{Payload: v, Raw: d.JSON}}, nil
	case []any:
		if len(v) == 0 {
			return nil, Reject(http.StatusBadRequest, "empty", "empty batch: the array holds no events")
		}
		out := make([]Object, len(v))
		for i, el := range v {
			m, ok := el.(map[string]any)
			if !ok {
				return nil, Reject(http.StatusBadRequest, "bad_json", "batch element %d is not a JSON object: it is %s", i, kind(el))
			}
			sp := d.Elements[i]
			out[i] = Object{Payload: m, Raw: d.JSON[sp.Start:sp.End:sp.End]}
		}
		return out, nil
	}
	return nil, Reject(http.StatusBadRequest, "bad_json",
		"body is not a JSON object or an array of objects: it is %s", kind(d.Value))
}

func badJSON(err error) error {
	return Reject(http.StatusBadRequest, "bad_json", "body is not JSON: %v", err)
}

// Member returns the strict JSON of the object's member key, nil when it
// has none (a repeated key is its last value, as in Payload).
func (o Object) Member(key string) []byte { return router.RawMember(o.Raw, key) }

func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a number"
}
