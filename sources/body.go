package sources

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"switchboard/router"
	"switchboard/sources/relaxed"
)

// DecodeObject parses a request body (or part of one) holding one JSON
// object. It returns the payload and the bytes to keep as the event's
// RawPayload, which are always strict JSON.
//
// One pass of the relaxed parser (see package relaxed) reads every body and
// says whether it was strict JSON: then the raw bytes are the body
// unchanged; a relaxed body (trailing commas, single quotes, unquoted keys,
// bare digits with X placeholders) is re-encoded as strict JSON. The parser
// agrees with encoding/json on every strict input (its fuzz target checks
// this) and costs about half as much. A body that is not an object is
// refused with a 400 giving encoding/json's complaint and where relaxed
// parsing stopped.
func DecodeObject(b []byte) (map[string]any, []byte, error) {
	v, strict, rerr := relaxed.ParseStrict(b)
	if obj, ok := v.(map[string]any); ok && strict {
		return obj, b, nil
	}
	// The rare path: relaxed, not an object, or nested deeper than the
	// relaxed parser goes.
	m, err := router.DecodeObject(b)
	if err == nil {
		return m, b, nil
	}
	if rerr == nil {
		if obj, ok := v.(map[string]any); ok {
			raw, merr := encodeStrict(obj)
			if merr == nil {
				return obj, raw, nil
			}
			rerr = merr
		}
	}
	var se *relaxed.SyntaxError
	switch {
	case rerr == nil && json.Valid(b):
		// Strict JSON, just not an object: the strict message says so.
		return nil, nil, Reject(http.StatusBadRequest, "bad_json", "body is not a JSON object: %v", err)
	case rerr == nil:
		return nil, nil, Reject(http.StatusBadRequest, "bad_json",
			"body is not a JSON object: %v (relaxed parsing read %s, not an object)", err, kind(v))
	case errors.As(rerr, &se):
		return nil, nil, Reject(http.StatusBadRequest, "bad_json",
			"body is not a JSON object: %v (relaxed parsing also failed at %v)", err, rerr)
	default:
		return nil, nil, Reject(http.StatusBadRequest, "bad_json",
			"body is not a JSON object: %v (relaxed parsing read it, but it cannot be written as strict JSON: %v)", err, rerr)
	}
}

// encodeStrict writes a relaxed payload as compact strict JSON, without
// escaping <, > and & (URLs stay readable in sinks).
func encodeStrict(v map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func kind(v any) string {
	switch v.(type) {
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
