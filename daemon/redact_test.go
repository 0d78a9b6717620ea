package daemon_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"switchboard/daemon/daemontest"
)

const (
	crmToken  = "crm-bearer-t0ken-4242"
	crmKey    = "crm-api-key-9191"
	crmQuery  = "crm-query-secret-7777"
	smtpUser  = "alerts@example.com"
	smtpPass  = "smtp-pa55word-1234"
	slackPath = "/services/T000/B000/slackSecretXYZ"
)

// echoServer answers 400 with everything it was sent: the headers, the
// URL. Receivers and proxies that echo a bad request do this.
func echoServer(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		fmt.Fprintf(&b, "bad request %s %s\n", r.Method, r.URL.RequestURI())
		r.Header.Write(&b)
		http.Error(w, b.String(), http.StatusBadRequest)
	}))
	t.Cleanup(s.Close)
	return s
}

// echoAuth is an SMTP server that refuses every AUTH, quoting the line it
// got (for PLAIN: the user name and password, in base64).
type echoAuth struct{}

func (echoAuth) NewSession(*smtp.Conn) (smtp.Session, error) { return &echoSession{}, nil }

type echoSession struct{}

func (*echoSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (*echoSession) Auth(string) (sasl.Server, error) {
	return echoSASL{}, nil
}
func (*echoSession) Mail(string, *smtp.MailOptions) error { return smtp.ErrAuthRequired }
func (*echoSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*echoSession) Data(io.Reader) error                 { return nil }
func (*echoSession) Reset()                               {}
func (*echoSession) Logout() error                        { return nil }

type echoSASL struct{}

func (echoSASL) Next(resp []byte) ([]byte, bool, error) {
	return nil, false, &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
		Message: "authentication failed: AUTH PLAIN " + base64.StdEncoding.EncodeToString(resp)}
}

func startEchoSMTP(t *testing.T) string {
	t.Helper()
	srv := smtp.NewServer(echoAuth{})
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{selfSignedCert(t)}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func selfSignedCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Receivers that echo what they were sent put credentials into errors:
// none reaches a dead letter, the dead-letter API or the log.
func TestEchoedCredentialsAreRedactedEverywhere(t *testing.T) {
	dir := t.TempDir()
	echo := echoServer(t)
	smtpAddr := startEchoSMTP(t)
	host, port, _ := net.SplitHostPort(smtpAddr)
	cfg := `
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: ` + filepath.Join(dir, "q") + ` }
sources:
  app: { type: generic }
sinks:
  crm:
    type: http
    url: "` + echo.URL + `/in?api_key=` + crmQuery + `"
    headers: { Authorization: "Bearer ` + crmToken + `", X-Api-Key: ` + crmKey + ` }
  chat:
    type: slack
    webhook_url: "` + echo.URL + slackPath + `"
  mail:
    type: email
    smtp: { host: ` + host + `, port: ` + port + `, username: ` + smtpUser + `, password: ` + smtpPass + `, insecure_skip_verify: true }
    from: ` + smtpUser + `
    to: [oncall@example.com]
    retry: { max_attempts: 1 }
rules:
  - { name: all, to: [crm, chat, mail] }
`
	d, logs := daemontest.StartLogged(t, cfg)
	if code, ans := daemontest.Post(t, "http://"+d.WebhookAddr()+"/hooks/app", `{"event":"e","id":"leak-1"}`); code != 200 {
		t.Fatalf("post: %d %v", code, ans)
	}
	var list string
	daemontest.Eventually(t, "three dead letters", func() bool {
		_, list = daemontest.Admin(t, d, "GET", "/api/dlq", "", "")
		return strings.Count(list, `"event_id":"leak-1"`) == 3
	})
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + smtpUser + "\x00" + smtpPass))
	leaks := []string{crmToken, crmKey, crmQuery, smtpPass, plain, slackPath, url.QueryEscape(crmQuery)}
	var page struct {
		Items []struct {
			Sink      string `json:"sink"`
			LastError string `json:"last_error"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(list), &page); err != nil {
		t.Fatal(err)
	}
	for _, dl := range page.Items {
		// Each still says what went wrong.
		if !strings.Contains(dl.LastError, "<secret>") && dl.Sink != "chat" || !strings.Contains(dl.LastError, "400 Bad Request") && !strings.Contains(dl.LastError, "535") {
			t.Errorf("%s: last_error %q", dl.Sink, dl.LastError)
		}
	}
	_, one := daemontest.Admin(t, d, "GET", "/api/dlq/"+firstID(list), "", "")
	for _, leak := range leaks {
		for where, text := range map[string]string{"dead letters": list, "one dead letter": one, "log": logs.String()} {
			if strings.Contains(text, leak) {
				t.Errorf("%q in the %s:\n%s", leak, where, text)
			}
		}
	}
	if !strings.Contains(logs.String(), "535") {
		t.Errorf("the SMTP refusal is not logged:\n%s", logs.String())
	}
}

func firstID(list string) string {
	_, rest, _ := strings.Cut(list, `"id":"`)
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

// A ${SECRET} pasted into the wrong setting is named, never printed, by
// the reload answer and the log.
func TestReloadNeverPrintsAnEnvironmentValue(t *testing.T) {
	const hook = "https://hooks.slack.com/services/T0/B0/envS3cretValue"
	t.Setenv("SLACK_WEBHOOK_URL", hook)
	dir := t.TempDir()
	path := filepath.Join(dir, "switchboard.yaml")
	good := adminConfig(dir, "")
	os.WriteFile(path, []byte(good), 0o600)
	d, logs := daemontest.StartFileLogged(t, path)
	bad := strings.Replace(good, "sinks:\n", "sinks:\n  chat: { type: slack, webhook_url: x, timeout: \"${SLACK_WEBHOOK_URL}\" }\n  crm: { type: http, url: \"${SLACK_WEBHOOK_URL}x:bad\" }\n", 1)
	os.WriteFile(path, []byte(bad), 0o600)
	st, body := daemontest.Admin(t, d, "POST", "/-/reload", "", "{}")
	if st != 400 || !strings.Contains(body, `the value of ${SLACK_WEBHOOK_URL} is not a duration`) {
		t.Errorf("reload: %d %s", st, body)
	}
	for where, text := range map[string]string{"answer": body, "log": logs.String()} {
		if strings.Contains(text, "envS3cretValue") {
			t.Errorf("the variable's value in the %s:\n%s", where, text)
		}
	}
}

// A receiver whose answer holds a credential where the dead letter's
// excerpt of the answer is cut: no part of it reaches the dead letter or
// the log.
func TestCredentialCutByTheAnswerExcerptIsRedacted(t *testing.T) {
	const key = "x-api-key-value-0123456789abcdef"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// 190 bytes, then the key across byte 200, where excerpts are cut.
		http.Error(w, strings.Repeat("-", 190)+r.Header.Get("X-Api-Key")+" was refused", http.StatusBadRequest)
	}))
	t.Cleanup(echo.Close)
	cfg := `
server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
queue: { dir: ` + filepath.Join(t.TempDir(), "q") + ` }
sources:
  app: { type: generic }
sinks:
  crm:
    type: http
    url: "` + echo.URL + `/in"
    headers: { X-Api-Key: ` + key + ` }
rules:
  - { name: all, to: [crm] }
`
	d, logs := daemontest.StartLogged(t, cfg)
	if code, ans := daemontest.Post(t, "http://"+d.WebhookAddr()+"/hooks/app", `{"event":"e","id":"cut-1"}`); code != 200 {
		t.Fatalf("post: %d %v", code, ans)
	}
	var list string
	daemontest.Eventually(t, "a dead letter", func() bool {
		_, list = daemontest.Admin(t, d, "GET", "/api/dlq", "", "")
		return strings.Contains(list, `"event_id":"cut-1"`)
	})
	if !strings.Contains(list, "400 Bad Request") {
		t.Errorf("the dead letter does not say what went wrong: %s", list)
	}
	for where, text := range map[string]string{"dead letters": list, "log": logs.String()} {
		if strings.Contains(text, key[:6]) {
			t.Errorf("the start of the key (%q) is in the %s:\n%s", key[:6], where, text)
		}
	}
}
