package sinks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/net/http/httpproxy"

	"switchboard/redact"
)

func TestSnippet(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", ""},
		{"spaces trimmed", " \n ok \r\n", "ok"},
		{"control characters become spaces", "a\tb\x00c\x7fd", "a b c d"},
		{"invalid UTF-8 dropped", "a\xffb", "ab"},
		{"exactly SnippetLen is kept whole", x(SnippetLen), x(SnippetLen)},
		{"longer is cut and marked", x(300), x(SnippetLen) + "…"},
		{"a rune split by the cut is dropped", x(SnippetLen-1) + "é" + x(10), x(SnippetLen-1) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Snippet([]byte(tt.in)); got != tt.want {
				t.Errorf("Snippet(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// A receiver that echoes a credential where the cut falls inside it: the
// credential is redacted before the cut, so no part of it remains.
func TestSnippetRedactsBeforeItCuts(t *testing.T) {
	const secret = "xapikey-secret-def0123456789"
	defer redact.Set(redact.Current())
	redact.Set(redact.New(secret))
	for _, at := range []int{0, SnippetLen - 20, SnippetLen - len(secret)/2, SnippetLen - 1} {
		in := strings.Repeat("x", at) + secret + strings.Repeat("y", 100)
		got := Snippet([]byte(in))
		for n := 4; n <= len(secret); n++ {
			if strings.Contains(got, secret[:n]) {
				t.Errorf("secret at %d: %d bytes of it left in %q", at, n, got)
				break
			}
		}
	}
}

// The cases of the http and slack sinks' former tests, merged: slack's
// were a subset of http's.
func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"Mon, 23 Nov 2026 07:01:00 GMT", time.Minute, true},
		{"Mon, 23 Nov 2026 06:00:00 GMT", 0, true}, // in the past: no wait
		{"99999999999999999999", 0, false},         // overflows uint64
		{"9999999999999", maxRetryAfter, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		d, ok := ParseRetryAfter(tt.in, now)
		if d != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, d, ok, tt.want, tt.ok)
		}
	}
}

func TestFailureClassification(t *testing.T) {
	tests := []struct {
		name                string
		err                 error
		connection, timeout bool
	}{
		{"dial failure", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no route to host")}, true, false},
		{"refused", fmt.Errorf("post: %w", syscall.ECONNREFUSED), true, false},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true, false},
		{"closed before answering", io.EOF, true, false},
		{"closed mid-answer", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true, false},
		{"deadline", fmt.Errorf("post: %w", context.DeadlineExceeded), false, true},
		{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, false, true},
		{"read timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, false, true},
		{"other read failure", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("broken")}, false, false},
		{"cancelled", context.Canceled, false, false},
		{"anything else", errors.New("tls: bad certificate"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsConnectionError(tt.err); got != tt.connection {
				t.Errorf("IsConnectionError(%v) = %v, want %v", tt.err, got, tt.connection)
			}
			if got := IsTimeout(tt.err); got != tt.timeout {
				t.Errorf("IsTimeout(%v) = %v, want %v", tt.err, got, tt.timeout)
			}
		})
	}
}

func TestNewHTTPClient(t *testing.T) {
	tests := []struct {
		name                      string
		opts                      HTTPClientOptions
		wantIdle, wantIdlePerHost int
		wantTLSMax                time.Duration
	}{
		{"pool for concurrent sends", HTTPClientOptions{Timeout: 10 * time.Second, MaxIdleConns: 128, MaxIdleConnsPerHost: 64}, 128, 64, 10 * time.Second},
		{"small pool, net/http's per-host default", HTTPClientOptions{Timeout: 3 * time.Second, MaxIdleConns: 4}, 4, 0, 3 * time.Second},
		{"long timeout, capped handshake", HTTPClientOptions{Timeout: time.Minute}, 0, 0, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, c := NewHTTPClient(tt.opts)
			defer tr.CloseIdleConnections()
			if tr.MaxIdleConns != tt.wantIdle || tr.MaxIdleConnsPerHost != tt.wantIdlePerHost {
				t.Errorf("MaxIdleConns, MaxIdleConnsPerHost = %d, %d; want %d, %d",
					tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tt.wantIdle, tt.wantIdlePerHost)
			}
			if tr.TLSHandshakeTimeout != tt.wantTLSMax {
				t.Errorf("TLSHandshakeTimeout = %s, want %s", tr.TLSHandshakeTimeout, tt.wantTLSMax)
			}
			if c.HTTPClient.Timeout != tt.opts.Timeout || c.HTTPClient.Transport != tr {
				t.Errorf("client timeout %s, transport %p; want %s, %p", c.HTTPClient.Timeout, c.HTTPClient.Transport, tt.opts.Timeout, tr)
			}
			if c.RetryMax != 2 || c.Logger != nil {
				t.Errorf("RetryMax = %d, Logger = %v; want 2 and none", c.RetryMax, c.Logger)
			}
		})
	}
}

// The environment's proxy settings, as net/http reads them, decide the
// proxy of a client with one URL once; what they decide is what every
// request then gets.
func TestProxyForOneURL(t *testing.T) {
	env := httpproxy.Config{
		HTTPProxy:  "http://proxy.internal:3128",
		HTTPSProxy: "http://tls-proxy.internal:3128",
		NoProxy:    "direct.example.com",
	}
	tests := []struct {
		name, url string
		want      string // the proxy a request gets; "" for none
	}{
		{"https through its proxy", "https://hooks.example.com/in", "http://tls-proxy.internal:3128"},
		{"http through its proxy", "http://hooks.example.com/in", "http://proxy.internal:3128"},
		{"host in NO_PROXY goes direct", "https://direct.example.com/in", ""},
		{"loopback goes direct", "http://127.0.0.1:9100/in", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lookups int
			lookup := func(r *http.Request) (*url.URL, error) {
				lookups++
				return env.ProxyFunc()(r.URL)
			}
			u, _ := url.Parse(tt.url)
			proxy := proxyFor(u, lookup)
			for range 3 {
				var got *url.URL
				if proxy != nil {
					var err error
					if got, err = proxy(&http.Request{URL: u}); err != nil {
						t.Fatal(err)
					}
				}
				if fmt.Sprint(got) != cmp.Or(tt.want, "<nil>") {
					t.Errorf("proxy = %v, want %q", got, tt.want)
				}
			}
			if lookups != 1 {
				t.Errorf("the environment was consulted %d times for 3 requests, want once", lookups)
			}
		})
	}

	t.Run("a failed lookup fails each request as before", func(t *testing.T) {
		refused := errors.New("proxy setting refused")
		lookup := func(*http.Request) (*url.URL, error) { return nil, refused }
		u, _ := url.Parse("https://hooks.example.com/in")
		proxy := proxyFor(u, lookup)
		if proxy == nil {
			t.Fatal("no proxy func: the lookup's error would go unreported")
		}
		if _, err := proxy(&http.Request{URL: u}); !errors.Is(err, refused) {
			t.Errorf("err = %v, want the lookup's", err)
		}
	})
	t.Run("no URL: looked up per request", func(t *testing.T) {
		var lookups int
		lookup := func(r *http.Request) (*url.URL, error) { lookups++; return nil, nil }
		proxy := proxyFor(nil, lookup)
		proxy(&http.Request{URL: &url.URL{Scheme: "https", Host: "a.example"}})
		proxy(&http.Request{URL: &url.URL{Scheme: "https", Host: "b.example"}})
		if lookups != 2 {
			t.Errorf("lookups = %d for 2 requests, want 2", lookups)
		}
	})
}

func TestNewHTTPClientDoesNotFollowRedirects(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	tr, c := NewHTTPClient(HTTPClientOptions{Timeout: 5 * time.Second})
	defer tr.CloseIdleConnections()
	req, err := retryablehttp.NewRequest(http.MethodPost, srv.URL+"/hooks", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || hits.Load() != 1 {
		t.Errorf("status %d after %d requests; want the 302 itself after 1", resp.StatusCode, hits.Load())
	}
}

func TestNewHTTPClientRetriesConnectionErrorsOnly(t *testing.T) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		err     error
		retry   bool
		wantErr error
	}{
		{"dropped connection", ctx, io.EOF, true, nil},
		{"timeout", ctx, context.DeadlineExceeded, false, nil},
		{"an answer", ctx, nil, false, nil},
		{"done context", cancelled, io.EOF, false, context.Canceled},
	}
	_, c := NewHTTPClient(HTTPClientOptions{Timeout: time.Second})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retry, err := c.CheckRetry(tt.ctx, nil, tt.err)
			if retry != tt.retry || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("CheckRetry = %v, %v; want %v, %v", retry, err, tt.retry, tt.wantErr)
			}
		})
	}
}

// answerBody is a response body that counts the bytes read from it and
// records its closing.
type answerBody struct {
	r      io.Reader
	read   int
	closed bool
}

func (b *answerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *answerBody) Close() error {
	b.closed = true
	return nil
}

func TestReadAnswer(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name       string
		code       int
		status     string
		body       io.Reader
		wantStatus string
		wantHead   string
		wantRead   int
	}{
		{"empty body", 204, "204 No Content", strings.NewReader(""), "204 No Content", "", 0},
		{"short answer is the head", 500, "500 Internal Server Error", strings.NewReader("oops\n"),
			"500 Internal Server Error", "oops\n", 5},
		{"the receiver's own status text is kept", 400, "400 Nope", strings.NewReader(""), "400 Nope", "", 0},
		{"no status line: the code and its text", 503, "", strings.NewReader(""), "503 Service Unavailable", "", 0},
		{"head is HeadLen bytes, the rest drained", 502, "502 Bad Gateway", strings.NewReader(x(HeadLen + 1000)),
			"502 Bad Gateway", x(HeadLen), HeadLen + 1000},
		{"drain stops at drainLimit", 500, "500 Internal Server Error", strings.NewReader(x(HeadLen + drainLimit + 1000)),
			"500 Internal Server Error", x(HeadLen), HeadLen + drainLimit},
		{"a failed read keeps what arrived", 500, "500 Internal Server Error",
			io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(syscall.ECONNRESET)),
			"500 Internal Server Error", "partial", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &answerBody{r: tt.body}
			status, head := ReadAnswer(&http.Response{StatusCode: tt.code, Status: tt.status, Body: body})
			if status != tt.wantStatus || string(head) != tt.wantHead {
				t.Errorf("ReadAnswer = %q, %q; want %q, %q", status, head, tt.wantStatus, tt.wantHead)
			}
			if body.read != tt.wantRead || !body.closed {
				t.Errorf("read %d bytes, closed %v; want %d, closed", body.read, body.closed, tt.wantRead)
			}
		})
	}
}

// The reason ReadAnswer drains: an answer read to its end leaves its
// connection to the next request, a longer one is cut by closing it.
func TestReadAnswerLeavesConnectionReusable(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		reused bool
	}{
		{"answer within drainLimit", 10 << 10, true},
		{"answer past drainLimit", HeadLen + drainLimit + 1<<20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusInternalServerError)
				w.Write([]byte(strings.Repeat("x", tt.size)))
			}))
			defer srv.Close()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			get := func() (reused bool) {
				t.Helper()
				trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
				req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, srv.URL, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				ReadAnswer(resp)
				return reused
			}
			get()
			if got := get(); got != tt.reused {
				t.Errorf("second request reused the connection: %v, want %v", got, tt.reused)
			}
		})
	}
}

// The answer buffer is pooled: reading a short answer allocates only the
// head it returns (a 4 KiB buffer per delivery was a quarter of the
// daemon's allocation under load).
func TestReadAnswerAllocatesOnlyTheHead(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled buffers at random")
	}
	body := &answerBody{}
	resp := &http.Response{StatusCode: 200, Status: "200 OK", Body: body}
	r := strings.NewReader("ok")
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset("ok")
		body.r = r
		ReadAnswer(resp)
	})
	if allocs > 1 {
		t.Errorf("ReadAnswer allocates %.0f times per answer, want at most 1 (the head)", allocs)
	}
}
