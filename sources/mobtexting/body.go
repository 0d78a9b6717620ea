package mobtexting

import (
	"bytes"
	"encoding/json"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"

	"switchboard/sources"
)

// body is a request's content as one object, whatever way it came.
type body struct {
	obj map[string]any
	raw []byte // obj as strict JSON, for Event.RawPayload
	// flat is set for form and query bodies: every value is a string and
	// there is no {event, payload} envelope.
	flat bool
}

// decode reads the request's object: a JSON body (the platform's own
// webhooks), a form body (x-www-form-urlencoded or multipart/form-data,
// "compose webhook" with FormData), or, when the body is empty, the query
// string (a composed GET). A body that starts with "{" is JSON whatever
// its Content-Type, because `curl -d @event.json` labels JSON as a form.
func (s *Source) decode(req *sources.Request) (*body, error) {
	b := bytes.TrimSpace(req.Body)
	if len(b) == 0 {
		return s.decodeQuery(req.HTTP.URL.RawQuery)
	}
	if b[0] == '{' {
		obj, err := sources.DecodeObject(b)
		if err != nil {
			return nil, err
		}
		return &body{obj: obj.Payload, raw: obj.Raw}, nil
	}
	mt, params, _ := mime.ParseMediaType(req.HTTP.Header.Get("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(b))
		if err != nil {
			return nil, sources.Reject(http.StatusBadRequest, "bad_form", "form body is not valid x-www-form-urlencoded: %v", err)
		}
		return flatBody(vals)
	case "multipart/form-data":
		return decodeMultipart(b, params["boundary"])
	}
	// Neither JSON nor a form: let the JSON decoder name the problem.
	obj, err := sources.DecodeObject(b)
	if err != nil {
		return nil, err
	}
	return &body{obj: obj.Payload, raw: obj.Raw}, nil
}

func (s *Source) decodeQuery(rawQuery string) (*body, error) {
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, sources.Reject(http.StatusBadRequest, "bad_query", "query string is not valid: %v", err)
	}
	if s.opts.VerifyToken != "" {
		// The verification secret is not event data: keep it out of sinks.
		vals.Del("token")
	}
	if len(vals) == 0 {
		return nil, sources.Reject(http.StatusBadRequest, "empty",
			"empty request: no body and no query string; MOBtexting sends a JSON body, or for a composed webhook a form body or query parameters")
	}
	return flatBody(vals)
}

func decodeMultipart(b []byte, boundary string) (*body, error) {
	if boundary == "" {
		return nil, sources.Reject(http.StatusBadRequest, "bad_form", "multipart/form-data body without a boundary in its Content-Type")
	}
	// The whole body is in memory already (within max_body_bytes), so the
	// form never spills to temporary files.
	form, err := multipart.NewReader(bytes.NewReader(b), boundary).ReadForm(int64(len(b)) + 1)
	if err != nil {
		return nil, sources.Reject(http.StatusBadRequest, "bad_form", "multipart/form-data body is not valid: %v", err)
	}
	defer form.RemoveAll()
	if len(form.Value) == 0 {
		return nil, sources.Reject(http.StatusBadRequest, "bad_form", "multipart/form-data body has no fields (file parts are ignored)")
	}
	return flatBody(url.Values(form.Value))
}

// flatBody makes the payload of a form or query: each key's first value,
// as a string.
func flatBody(vals url.Values) (*body, error) {
	obj := make(map[string]any, len(vals))
	for k, v := range vals {
		if len(v) > 0 {
			obj[k] = v[0]
		}
	}
	raw, err := json.Marshal(obj)
	if err != nil { // cannot happen: strings only
		return nil, err
	}
	return &body{obj: obj, raw: raw, flat: true}, nil
}

// member returns the raw JSON of obj's key, for the inner payload of an
// {event, payload} envelope.
func member(raw []byte, key string) []byte {
	return sources.Object{Raw: raw}.Member(key)
}
