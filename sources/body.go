package sources

import (
	"net/http"

	"switchboard/router"
)

// DecodeObject parses a request body (or part of one) holding one JSON
// object, the fast strict way. It returns the payload and the bytes to keep
// as the event's RawPayload. A body that is not an object is refused with a
// 400 naming the problem.
func DecodeObject(b []byte) (map[string]any, []byte, error) {
	m, err := router.DecodeObject(b)
	if err != nil {
		return nil, nil, Reject(http.StatusBadRequest, "bad_json", "body is not a JSON object: %v", err)
	}
	return m, b, nil
}
