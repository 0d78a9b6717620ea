package bird

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"switchboard/sources"
)

// The headers of a signed Bird request. Bird also sends
// messagebird-request-id, which its subscription logs show; it is kept in
// the event's headers like every other header.
const (
	HeaderSignature = "messagebird-signature"
	HeaderTimestamp = "messagebird-request-timestamp"
)

// maxFuture is how far ahead of this host's clock a timestamp may be: clock
// skew, not a retry window.
const maxFuture = 5 * time.Minute

// Sign returns the messagebird-signature value Bird sends for a request to
// url with this timestamp (Unix seconds, as sent in the header) and body.
func Sign(key, timestamp, url string, body []byte) string {
	return base64.StdEncoding.EncodeToString(mac([]byte(key), timestamp, url, body))
}

// mac is HMAC-SHA256(key, timestamp + "\n" + url + "\n" + SHA-256(body)),
// the body hash as 32 raw bytes.
func mac(key []byte, timestamp, url string, body []byte) []byte {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte{'\n'})
	m.Write([]byte(url))
	m.Write([]byte{'\n'})
	m.Write(sum[:])
	return m.Sum(nil)
}

// challenge is the WWW-Authenticate of the source's 401s: what Bird must
// send.
func (s *Source) challenge() string { return sources.SchemeChallenge("MessageBird-Signature", s.name) }

// signatureHeaders reads the signature headers, which need no body to be
// found wanting: the signature, and the timestamp as sent and as a time.
func signatureHeaders(h http.Header) (want []byte, ts string, sec int64, err error) {
	sig := h.Get(HeaderSignature)
	ts = h.Get(HeaderTimestamp)
	if sig == "" {
		return nil, "", 0, sources.Reject(http.StatusUnauthorized, "signature",
			"missing messagebird-signature header; set the signing key on the Bird webhook subscription, or remove signing_key")
	}
	if ts == "" {
		return nil, "", 0, sources.Reject(http.StatusUnauthorized, "signature",
			"missing messagebird-request-timestamp header; Bird sends it with messagebird-signature on every signed request")
	}
	sec, err = strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, "", 0, sources.Reject(http.StatusUnauthorized, "signature",
			"messagebird-request-timestamp is not a Unix time in seconds")
	}
	want, err = base64.StdEncoding.DecodeString(sig)
	if err != nil {
		want, err = base64.RawStdEncoding.DecodeString(sig)
	}
	if err != nil {
		return nil, "", 0, sources.Reject(http.StatusUnauthorized, "signature",
			"messagebird-signature is not base64; Bird sends the HMAC-SHA256 in standard base64")
	}
	if len(want) != sha256.Size {
		return nil, "", 0, sources.Reject(http.StatusUnauthorized, "signature",
			"messagebird-signature decodes to %d bytes; an HMAC-SHA256 has %d", len(want), sha256.Size)
	}
	return want, ts, sec, nil
}

// Precheck implements sources.Prechecker: a request without well-formed
// signature headers is refused before its body is read.
func (s *Source) Precheck(req *sources.Request) error {
	if len(s.key) == 0 {
		return nil
	}
	_, _, _, err := signatureHeaders(req.HTTP.Header)
	return sources.WithChallenge(err, s.challenge())
}

// verify checks the signature, then the timestamp's age: only a genuine
// request is told that it is too old.
func (s *Source) verify(req *sources.Request) error {
	return sources.WithChallenge(s.check(req), s.challenge())
}

func (s *Source) check(req *sources.Request) error {
	want, ts, sec, err := signatureHeaders(req.HTTP.Header)
	if err != nil {
		return err
	}
	url := s.requestURL(req.HTTP)
	if !hmac.Equal(mac(s.key, ts, url, req.Body), want) {
		if s.publicURL != "" {
			return sources.Reject(http.StatusUnauthorized, "signature",
				"signature does not match; check that signing_key is the subscription's signing key and that public_url is exactly the subscription's url (the URL checked was %s)", withoutQuery(url))
		}
		return sources.Reject(http.StatusUnauthorized, "signature",
			"signature does not match; check that signing_key is the subscription's signing key, and set public_url to the subscription's url if a proxy changes it (the URL checked was %s)", withoutQuery(url))
	}
	now := req.ReceivedAt
	if now.IsZero() {
		now = time.Now()
	}
	age := now.Sub(time.Unix(sec, 0))
	switch {
	case age > s.maxAge:
		return sources.Reject(http.StatusUnauthorized, "expired",
			"messagebird-request-timestamp is %s old, past max_age (%s); if late Bird retries are expected, raise max_age on this source",
			age.Round(time.Second), s.maxAge)
	case age < -maxFuture:
		return sources.Reject(http.StatusUnauthorized, "expired",
			"messagebird-request-timestamp is %s in the future, more than the %s allowed; check this host's clock",
			(-age).Round(time.Second), maxFuture)
	}
	return nil
}

// requestURL is the URL Bird called, which it signed: public_url (plus the
// request's query when public_url has none), else the URL rebuilt from the
// request and the proxy's X-Forwarded-Proto and X-Forwarded-Host.
func (s *Source) requestURL(r *http.Request) string {
	if s.publicURL != "" {
		if !s.publicHasQuery && r.URL.RawQuery != "" {
			return s.publicURL + "?" + r.URL.RawQuery
		}
		return s.publicURL
	}
	scheme := firstValue(r.Header.Get("X-Forwarded-Proto"))
	if scheme == "" {
		scheme = "http"
		if r.TLS != nil {
			scheme = "https"
		}
	}
	host := firstValue(r.Header.Get("X-Forwarded-Host"))
	if host == "" {
		host = r.Host
	}
	return scheme + "://" + host + r.URL.RequestURI()
}

// firstValue is the first of a proxy header's comma-separated values: the
// one the outermost proxy, which Bird called, set.
func firstValue(v string) string {
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

// withoutQuery drops the query from a URL for messages: it may hold a token.
func withoutQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?..."
	}
	return u
}
