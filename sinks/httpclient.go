package sinks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-retryablehttp"

	"switchboard/redact"
)

// This file holds what the sinks that deliver over HTTP (http, slack)
// share: their client, and how they turn a failure or an answer into an
// error that fits one log line. Each sink keeps its own error wording.

// SnippetLen bounds how much of a failed answer goes into an error, which
// ends up in logs and dead letters.
const SnippetLen = 200

// HeadLen is how much of an answer ReadAnswer keeps for Snippet: enough
// past SnippetLen that a credential the receiver echoes within the first
// SnippetLen bytes is read whole, in any of the forms the redactor knows
// (base64, JSON escapes), and so redacted before the cut rather than cut
// into a part the redactor cannot recognise.
const HeadLen = 4 << 10

// Snippet makes the start of an answer fit for one log line: configured
// credentials redacted (redact.Current), spaces trimmed, control
// characters turned into spaces, invalid UTF-8 dropped, and past
// SnippetLen bytes cut and marked with "…". It exists so that a receiver's
// error page, whatever it holds, never breaks a log line, floods a dead
// letter or leaves part of a secret in either.
func Snippet(b []byte) string {
	b = redact.Current().Bytes(b)
	cut := len(b) > SnippetLen
	if cut {
		b = b[:SnippetLen]
	}
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(bytes.TrimSpace(b)), ""))
	if cut {
		// Drop a rune split by the cut rather than print a replacement.
		for len(s) > 0 {
			r, size := utf8.DecodeLastRuneInString(s)
			if r != utf8.RuneError || size > 1 {
				break
			}
			s = s[:len(s)-size]
		}
		s += "…"
	}
	return s
}

// drainLimit is how much of an answer ReadAnswer reads, past the head,
// before closing it: net/http reuses a keep-alive connection only once
// the body has been read to its end, and past this much, a new connection
// costs less than reading on.
const drainLimit = 64 << 10

// ReadAnswer reads what a sink needs of resp and releases it: the status
// line (resp.Status, or the code and its text when the response has none)
// and the head of the body, at most HeadLen bytes, for Snippet. It
// then discards up to drainLimit more bytes and closes the body. It exists
// so that every HTTP sink reads an answer alike: bounded, whatever the
// receiver sends, and leaving the connection reusable when the answer is
// small. A body that fails to read yields the head read until then; the
// status decides the outcome anyway.
func ReadAnswer(resp *http.Response) (status string, head []byte) {
	// A pooled buffer: one passed to the body's Read escapes, and 4 KiB
	// per delivery was a quarter of the daemon's allocation under load.
	// Only what was read is kept.
	buf := answerBufs.Get().(*[HeadLen]byte)
	n, _ := io.ReadFull(resp.Body, buf[:])
	if n > 0 {
		head = bytes.Clone(buf[:n])
	}
	if n == HeadLen {
		// Drain what is left, bounded, so that a small answer leaves the
		// connection reusable.
		for left := drainLimit; left > 0; {
			m, err := resp.Body.Read(buf[:min(left, HeadLen)])
			left -= m
			if err != nil || m == 0 {
				break
			}
		}
	}
	answerBufs.Put(buf)
	resp.Body.Close()
	status = resp.Status
	if status == "" {
		status = strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
	}
	return status, head
}

var answerBufs = sync.Pool{New: func() any { return new([HeadLen]byte) }}

// maxRetryAfter keeps a huge Retry-After from overflowing time.Duration;
// the router dead-letters anything past the sink's max_age anyway.
const maxRetryAfter = 365 * 24 * time.Hour

// ParseRetryAfter reads a Retry-After value, delay seconds or an HTTP
// date (relative to now, never negative), capped at a year. It exists so
// that a sink can hand the receiver's own wait to router.RetryAfter; ok is
// false when v is empty or neither form.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		if n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// IsConnectionError reports a failure to reach the receiver or a
// connection it dropped before answering. It exists to pick the failures
// worth an immediate retry (a dropped keep-alive connection should not
// cost a whole retry interval). A timeout is not one: that attempt already
// used the whole timeout, and the receiver may be working on the request
// or have taken it already.
func IsConnectionError(err error) bool {
	if IsTimeout(err) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// IsTimeout reports a request that ran out of time, whether the context's
// deadline or a client or network timeout. It exists so that a sink can
// say "no answer within timeout" (and suggest raising it) rather than
// show a bare network error, and so that IsConnectionError leaves
// timeouts alone.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// HTTPClientOptions are what differs between the clients of HTTP sinks.
// MaxIdleConns and MaxIdleConnsPerHost are passed to http.Transport as
// they are, so zero means its defaults: no overall limit, and 2 per host.
type HTTPClientOptions struct {
	// Timeout bounds each attempt (retryablehttp calls Do once per try),
	// and caps the dial (at 30s) and TLS handshake (at 10s) timeouts.
	Timeout time.Duration
	// MaxIdleConns and MaxIdleConnsPerHost size the keep-alive pool for
	// the sink's concurrency.
	MaxIdleConns        int
	MaxIdleConnsPerHost int
	// URL is the one address the client sends to, when it has one: its
	// proxy is then looked up once, not on every request.
	URL *url.URL
}

// NewHTTPClient builds a sink's own client, with its own pool of
// keep-alive connections; the transport is returned so that the sink's
// Close can release idle connections. It exists so that every HTTP sink
// retries, redirects and logs alike:
//
//   - A connection that fails before any answer (IsConnectionError) is
//     retried twice at once, within 50-500ms; every answer, whatever its
//     status, reaches the sink, and the router's queue owns the long
//     retry schedule.
//   - Redirects are never followed: following one would resend the
//     headers, credentials included, to wherever the receiver points. The
//     sink gets the 3xx and reports it so that the operator fixes the URL.
//   - Nothing is logged: the URL may be a credential, and errors come back
//     to the router, which logs them once.
func NewHTTPClient(o HTTPClientOptions) (*http.Transport, *retryablehttp.Client) {
	tr := &http.Transport{
		Proxy:                 proxyFor(o.URL, http.ProxyFromEnvironment),
		DialContext:           (&net.Dialer{Timeout: min(o.Timeout, 30*time.Second), KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          o.MaxIdleConns,
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   min(o.Timeout, 10*time.Second),
		ExpectContinueTimeout: time.Second,
		// Answers are read only for a short error text: asking for gzip
		// would cost a header per request and a decompressor per answer.
		DisableCompression: true,
	}
	hc := &http.Client{
		Transport:     tr,
		Timeout:       o.Timeout, // per attempt: retryablehttp calls Do once per try
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return tr, &retryablehttp.Client{
		HTTPClient:   hc,
		Logger:       nil,
		RetryMax:     2,
		RetryWaitMin: 50 * time.Millisecond,
		RetryWaitMax: 500 * time.Millisecond,
		CheckRetry:   retryConnectionErrors,
		Backoff:      retryablehttp.DefaultBackoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

// proxyFor is the transport's Proxy for a client that only sends to u: the
// environment's answer for u (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), looked up
// once. net/http reads the environment once per process too, so the answer
// cannot change; looking it up per request parsed the address and walked
// NO_PROXY for every delivery. A setting the lookup refuses, or no u, keeps
// the lookup per request, so that its error is each request's error as
// before.
func proxyFor(u *url.URL, lookup func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	if u == nil {
		return lookup
	}
	proxy, err := lookup(&http.Request{URL: u})
	switch {
	case err != nil:
		return lookup
	case proxy == nil:
		return nil
	}
	return http.ProxyURL(proxy)
}

// retryConnectionErrors is the clients' CheckRetry: retry connection
// failures only, and stop once ctx is done.
func retryConnectionErrors(ctx context.Context, _ *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return err != nil && IsConnectionError(err), nil
}
