package bird

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"

	"switchboard/sources"
	"switchboard/sources/sourcetest"
)

// maxFuzzBody bounds inputs: the daemon never hands a source more than
// server.max_body_bytes, and bigger inputs only slow the fuzzer down.
const maxFuzzBody = 64 << 10

func addSeeds(f *testing.F, add func(body []byte)) {
	files, _ := filepath.Glob("testdata/*.json")
	subs, _ := filepath.Glob("testdata/subscription/*.json")
	for _, file := range append(files, subs...) {
		add(sourcetest.ReadFile(f, file))
	}
	for _, s := range []string{"", "{}", "null", "[]", `{"event":"voice.inbound"}`, `{"event":"voice.inbound","payload":{}}`,
		`{"event":"x","payload":{"id":{"a":1},"status":[1]}}`, `{"type":"t","callId":7}`, `{"event":1e400}`, `{"a":1,}`} {
		add([]byte(s))
	}
}

// checkResult holds for every answer Parse gives: a 400 or 401 rejection,
// or one event with an event name and an id that encodes to valid JSON.
func checkResult(t *testing.T, res *sources.Result, err error, allowed ...int) {
	if err != nil {
		re := sourcetest.Rejection(t, err)
		ok := false
		for _, st := range allowed {
			ok = ok || re.Status == st
		}
		if !ok || re.Reason == "" || re.Msg == "" {
			t.Fatalf("rejection %+v, want status in %v with a reason and a message", re, allowed)
		}
		return
	}
	if len(res.Events) != 1 {
		t.Fatalf("got %d events, want 1", len(res.Events))
	}
	ev := res.Events[0]
	if ev.Event == "" || ev.ID == "" || ev.Payload == nil {
		t.Fatalf("event without name, id or payload: %+v", ev)
	}
	b, err := ev.MarshalJSON()
	if err != nil || !json.Valid(b) {
		t.Fatalf("normalized event is not JSON (%v): %s", err, b)
	}
}

func fuzzRequest(body []byte, query, proto, host string, header ...string) *sources.Request {
	r := &http.Request{
		Method: http.MethodPost,
		URL:    &url.URL{Path: "/hooks/bird", RawQuery: query},
		Host:   host,
		Header: http.Header{},
	}
	if proto != "" {
		r.Header.Set("X-Forwarded-Proto", proto)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return &sources.Request{HTTP: r, Body: body, ReceivedAt: received, Source: "bird"}
}

func FuzzParse(f *testing.F) {
	addSeeds(f, func(b []byte) { f.Add(b) })
	s := build(f, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxFuzzBody {
			t.Skip()
		}
		res, err := s.Parse(fuzzRequest(body, "", "", "localhost"))
		checkResult(t, res, err, http.StatusBadRequest)
	})
}

// FuzzParseSigned fuzzes the signature headers and the URL parts the
// signature covers, and checks that a request signed right is never
// refused for its signature.
func FuzzParseSigned(f *testing.F) {
	now := strconv.FormatInt(received.Unix(), 10)
	addSeeds(f, func(b []byte) {
		f.Add(b, Sign(testKey, now, publicURL, b), now, "", "https", "switchboard.example.com")
	})
	f.Add([]byte(vectorBody), vectorSignature, vectorTimestamp, "a=1", "http", "h")
	f.Add([]byte(vectorBody), "!!", "-1", "", "", "")
	f.Add([]byte(vectorBody), "", "99999999999999999999", "", "", "")
	withPublic := build(f, map[string]any{"signing_key": testKey, "public_url": publicURL})
	rebuilt := build(f, map[string]any{"signing_key": testKey})
	f.Fuzz(func(t *testing.T, body []byte, sig, ts, query, proto, host string) {
		if len(body) > maxFuzzBody || len(sig)+len(ts)+len(query)+len(proto)+len(host) > 4096 {
			t.Skip()
		}
		for _, s := range []*Source{withPublic, rebuilt} {
			res, err := s.Parse(fuzzRequest(body, query, proto, host, HeaderSignature, sig, HeaderTimestamp, ts))
			checkResult(t, res, err, http.StatusBadRequest, http.StatusUnauthorized)

			// The same request signed right over the URL the source checks.
			good := fuzzRequest(body, query, proto, host, HeaderTimestamp, now)
			good.HTTP.Header.Set(HeaderSignature, Sign(testKey, now, s.requestURL(good.HTTP), body))
			res, err = s.Parse(good)
			checkResult(t, res, err, http.StatusBadRequest)
		}
	})
}
