package daemon_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchboard/daemon"
	"switchboard/daemon/daemontest"
)

const (
	genericToken = "gen-bearer-token-0123"
	basicPass    = "basic-pass-0123"
	mobSecret    = "mob-secret-0123456"
	birdKey      = "bird-key-0123456"
	tcmiToken    = "tcmi-token-0123456789abcdef"
)

func sendersConfig(dir string) string {
	return `
server: { listen: "127.0.0.1:0", max_body_bytes: 1KiB }
admin: { listen: "127.0.0.1:0" }
queue: { dir: ` + filepath.Join(dir, "q") + ` }
sources:
  bearer: { type: generic, auth: { bearer_token: ` + genericToken + ` } }
  basic:  { type: generic, auth: { username: u, password: ` + basicPass + ` } }
  mob:    { type: mobtexting, secret: ` + mobSecret + ` }
  bird:   { type: bird, signing_key: ` + birdKey + ` }
  tcmi:   { type: telecmi, token: ` + tcmiToken + ` }
  open:   { type: generic }
sinks:
  archive: { type: file, path: ` + filepath.Join(dir, "events.jsonl") + ` }
rules:
  - { name: all, to: [archive] }
`
}

// 401 answers tell the sender how to authenticate.
func TestUnauthorizedAnswersCarryTheSourcesChallenge(t *testing.T) {
	d := daemontest.Start(t, sendersConfig(t.TempDir()))
	base := "http://" + d.WebhookAddr()
	for _, tc := range []struct {
		name, method, path, body string
		header                   []string
		challenge                string
	}{
		{"bearer", "POST", "/hooks/bearer", `{"event":"a"}`, nil, "Bearer"},
		{"bearer, wrong token", "POST", "/hooks/bearer", `{"event":"a"}`, []string{"Authorization", "Bearer nope"}, "Bearer"},
		{"basic", "POST", "/hooks/basic", `{"event":"a"}`, nil, `Basic realm="basic", charset="UTF-8"`},
		{"mobtexting secret", "POST", "/hooks/mob/sms:message:status", `{"id":1,"status":"DELIVRD"}`, nil, "Bearer"},
		{"bird signature", "POST", "/hooks/bird", `{"event":"voice.inbound","payload":{}}`, nil, `MessageBird-Signature realm="bird"`},
		{"telecmi token", "GET", "/hooks/tcmi?type=cdr", "", nil, `Token realm="tcmi"`},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		for i := 0; i+1 < len(tc.header); i += 2 {
			req.Header.Set(tc.header[i], tc.header[i+1])
		}
		resp, body := do(t, req)
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("%s: %d, WWW-Authenticate %q; want 401 %q (%s)", tc.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.challenge, body)
		}
	}
}

// RFC 9110: the scheme name is case-insensitive, for every source that
// takes a bearer token.
func TestBearerSchemeInAnyCase(t *testing.T) {
	d := daemontest.Start(t, sendersConfig(t.TempDir()))
	base := "http://" + d.WebhookAddr()
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		code, ans := daemontest.Post(t, base+"/hooks/bearer", `{"event":"a","id":"`+scheme+`"}`, "Authorization", scheme+" "+genericToken)
		if code != 200 {
			t.Errorf("generic, %s: %d %v", scheme, code, ans)
		}
		code, ans = daemontest.Post(t, base+"/hooks/mob/sms:message:status", `{"id":"`+scheme+`","status":"DELIVRD"}`, "Authorization", scheme+" "+mobSecret)
		if code != 200 {
			t.Errorf("mobtexting, %s: %d %v", scheme, code, ans)
		}
	}
}

func TestHeadWhereverGet(t *testing.T) {
	d := daemontest.Start(t, sendersConfig(t.TempDir()))
	base := "http://" + d.WebhookAddr()
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/hooks/tcmi/" + tcmiToken + "?type=cdr&cmiuuid=h1&status=missed", 200},
		{"/hooks/tcmi?type=cdr", 401},
		{"/hooks/mob/sms:message:status?id=h2&status=DELIVRD", 401},
		{"/hooks/open", 405}, // POST only
	} {
		req, _ := http.NewRequest("HEAD", base+tc.path, nil)
		resp, body := do(t, req)
		if resp.StatusCode != tc.want || body != "" {
			t.Errorf("HEAD %s: %d %q; want %d without a body", tc.path, resp.StatusCode, body, tc.want)
		}
		if tc.want == 405 && !strings.Contains(resp.Header.Get("Allow"), "POST") {
			t.Errorf("HEAD %s: Allow %q", tc.path, resp.Header.Get("Allow"))
		}
	}
	req, _ := http.NewRequest("POST", base+"/hooks/tcmi", nil)
	if resp, _ := do(t, req); resp.Header.Get("Allow") != "" {
		t.Errorf("unexpected Allow on a 401: %q", resp.Header.Get("Allow"))
	}
	req, _ = http.NewRequest("DELETE", base+"/hooks/tcmi/"+tcmiToken, nil)
	if resp, _ := do(t, req); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("DELETE: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// expectContinue sends a request's head with Expect: 100-continue and
// returns the first status line the server answers; when it is 100
// Continue, it sends the body and returns the next status line too.
func expectContinue(t *testing.T, d *daemon.Daemon, method, target string, header []string, body string) []string {
	t.Helper()
	conn, err := net.Dial("tcp", d.WebhookAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: %d\r\n",
		method, target, d.WebhookAddr(), len(body))
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(conn, "%s: %s\r\n", header[i], header[i+1])
	}
	fmt.Fprint(conn, "\r\n")
	rd := bufio.NewReader(conn)
	first := readHead(t, rd)
	if !strings.HasPrefix(first, "HTTP/1.1 100") {
		return []string{first}
	}
	io.WriteString(conn, body)
	return []string{first, readHead(t, rd)}
}

// readHead reads a response's status line and headers, returning the
// status line.
func readHead(t *testing.T, rd *bufio.Reader) string {
	t.Helper()
	status, err := rd.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	for {
		l, err := rd.ReadString('\n')
		if err != nil || l == "\r\n" {
			break
		}
	}
	return strings.TrimSpace(status)
}

func TestRequestsCondemnedByTheirHeadersAreRefusedBefore100Continue(t *testing.T) {
	d := daemontest.Start(t, sendersConfig(t.TempDir()))
	event := `{"event":"a","id":"c1"}`
	big := `{"event":"a","pad":"` + strings.Repeat("x", 2000) + `"}`
	for _, tc := range []struct {
		name, target string
		header       []string
		body         string
		want         []string
	}{
		{"too large for max_body_bytes", "/hooks/open", nil, big, []string{"HTTP/1.1 413 Request Entity Too Large"}},
		{"no bearer token", "/hooks/bearer", nil, event, []string{"HTTP/1.1 401 Unauthorized"}},
		{"wrong bearer token", "/hooks/bearer", []string{"Authorization", "Bearer wrong"}, event, []string{"HTTP/1.1 401 Unauthorized"}},
		{"no basic credentials", "/hooks/basic", nil, event, []string{"HTTP/1.1 401 Unauthorized"}},
		{"no bird signature", "/hooks/bird", nil, event, []string{"HTTP/1.1 401 Unauthorized"}},
		{"no telecmi token", "/hooks/tcmi", nil, `{"type":"cdr"}`, []string{"HTTP/1.1 401 Unauthorized"}},
		{"wrong telecmi token", "/hooks/tcmi/wrong-token-0123456789", nil, `{"type":"cdr"}`, []string{"HTTP/1.1 401 Unauthorized"}},
		{"too large and no token", "/hooks/bearer", nil, big, []string{"HTTP/1.1 401 Unauthorized"}},
		{"unknown path", "/hooks/nope", nil, event, []string{"HTTP/1.1 404 Not Found"}},
		{"good", "/hooks/bearer", []string{"Authorization", "Bearer " + genericToken}, event, []string{"HTTP/1.1 100 Continue", "HTTP/1.1 200 OK"}},
		{"good telecmi", "/hooks/tcmi/" + tcmiToken, nil, `{"type":"cdr","cmiuuid":"c2"}`, []string{"HTTP/1.1 100 Continue", "HTTP/1.1 200 OK"}},
		// A signature needs the body: only its headers are judged first.
		{"bird with signature headers", "/hooks/bird", []string{"MessageBird-Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "MessageBird-Request-Timestamp", "1"},
			`{"event":"voice.inbound","payload":{}}`, []string{"HTTP/1.1 100 Continue", "HTTP/1.1 401 Unauthorized"}},
	} {
		got := expectContinue(t, d, "POST", tc.target, tc.header, tc.body)
		if strings.Join(got, " | ") != strings.Join(tc.want, " | ") {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A TeleCMI token is a path segment: a URL with a trailing slash still
// works, and no answer or log line ever repeats the token.
func TestTeleCMITokenNeverEchoed(t *testing.T) {
	d, log := daemontest.StartLogged(t, sendersConfig(t.TempDir()))
	base := "http://" + d.WebhookAddr()
	code, ans := daemontest.Post(t, base+"/hooks/tcmi/"+tcmiToken+"/", `{"type":"cdr","cmiuuid":"slash"}`)
	if code != 200 {
		t.Errorf("trailing slash: %d %v", code, ans)
	}
	for _, path := range []string{
		"/hooks/tcmi/" + tcmiToken + "/x",
		"/hooks/tcmi/" + tcmiToken + "//",
		"/hooks/tcmi/" + tcmiToken + "/x/y?token=" + tcmiToken,
		"/hooks/open/" + tcmiToken,
		"/hooks/tcmi/" + tcmiToken + "x",
	} {
		for _, m := range []string{"GET", "POST"} {
			req, _ := http.NewRequest(m, base+path, strings.NewReader(`{"type":"cdr"}`))
			resp, body := do(t, req)
			if resp.StatusCode < 400 || strings.Contains(body, tcmiToken) {
				t.Errorf("%s %s: %d %s", m, path, resp.StatusCode, body)
			}
		}
	}
	daemontest.Eventually(t, "the rejections logged", func() bool { return strings.Count(log.String(), "request rejected") >= 10 })
	if strings.Contains(log.String(), tcmiToken) {
		t.Errorf("token in the log:\n%s", log.String())
	}
}

// A long path cut for the answer never leaves part of a token behind.
func TestLongPathAroundATokenIsRedactedBeforeItIsCut(t *testing.T) {
	d := daemontest.Start(t, sendersConfig(t.TempDir()))
	path := "/hooks/nope/" + strings.Repeat("a", 180) + tcmiToken
	req, _ := http.NewRequest("POST", "http://"+d.WebhookAddr()+path, strings.NewReader("{}"))
	resp, body := do(t, req)
	if resp.StatusCode != 404 || strings.Contains(body, tcmiToken[:6]) {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}
