package email

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// A real SMTP server (emersion/go-smtp) in the test process, with an
// in-memory backend that records every message and can refuse recipients.

type serverMode int

const (
	plainServer    serverMode = iota // no TLS at all
	startTLSServer                   // STARTTLS offered
	implicitServer                   // TLS from the first byte
)

type received struct {
	from  string
	rcpts []string
	data  []byte
	user  string // who authenticated, "" for nobody
	tls   bool   // whether the session was encrypted
}

type backend struct {
	user, pass string           // when set, AUTH PLAIN is required before MAIL
	rcptReply  map[string]error // recipient -> the reply refusing it
	dataReply  error            // reply to the end of DATA
	dataHang   chan struct{}    // when set, DATA waits for it to close
	mu         sync.Mutex
	sessions   int
	logouts    int
	conns      []*smtp.Conn
	msgs       []received
	delivered  chan received
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sessions++
	b.conns = append(b.conns, c)
	return &session{b: b, c: c}, nil
}

func (b *backend) sessionCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions
}

// dropConnections closes every connection from the server side, as a
// server does with an idle client.
func (b *backend) dropConnections() {
	b.mu.Lock()
	conns := b.conns
	b.mu.Unlock()
	for _, c := range conns {
		c.Close() // calls Logout, which locks mu
	}
}

type session struct {
	b    *backend
	c    *smtp.Conn
	user string
	cur  received
}

func (s *session) AuthMechanisms() []string {
	if s.b.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.b.user || pass != s.b.pass {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.user != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	_, isTLS := s.c.TLSConnectionState()
	s.cur = received{from: from, user: s.user, tls: isTLS}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.b.rcptReply[to]; err != nil {
		return err
	}
	s.cur.rcpts = append(s.cur.rcpts, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.b.dataHang != nil {
		<-s.b.dataHang
	}
	if s.b.dataReply != nil {
		return s.b.dataReply
	}
	s.cur.data = data
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.cur)
	s.b.mu.Unlock()
	if s.b.delivered != nil {
		s.b.delivered <- s.cur
	}
	return nil
}

func (s *session) Reset() { s.cur = received{} }
func (s *session) Logout() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.logouts++
	return nil
}

// waitLoggedOut waits until n sessions have ended, as they do when the
// client hangs up.
func (b *backend) waitLoggedOut(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b.mu.Lock()
		done := b.logouts >= n
		b.mu.Unlock()
		if done {
			return
		}
	}
	t.Errorf("%d sessions did not end: the client kept a connection open", n)
}

type testServer struct {
	host string
	port int
	be   *backend
	ca   string // path of the CA certificate PEM, for TLS servers
}

// startServer runs an SMTP server on a free local port until the test ends.
func startServer(t *testing.T, mode serverMode, be *backend) *testServer {
	t.Helper()
	if be.delivered == nil {
		be.delivered = make(chan received, 16)
	}
	srv := smtp.NewServer(be)
	srv.Domain = "mx.test"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{host: "127.0.0.1", port: ln.Addr().(*net.TCPAddr).Port, be: be}
	if mode != plainServer {
		cert, caFile := selfSigned(t)
		ts.ca = caFile
		conf := &tls.Config{Certificates: []tls.Certificate{cert}}
		if mode == startTLSServer {
			srv.TLSConfig = conf
		} else {
			ln = tls.NewListener(ln, conf)
		}
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		if be.dataHang != nil {
			select {
			case <-be.dataHang:
			default:
				close(be.dataHang)
			}
		}
		srv.Close()
	})
	return ts
}

func (ts *testServer) smtp(extra map[string]any) map[string]any {
	m := map[string]any{"host": ts.host, "port": ts.port}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func (ts *testServer) addr() string { return net.JoinHostPort(ts.host, strconv.Itoa(ts.port)) }

// next waits for the next message the server took.
func (ts *testServer) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-ts.be.delivered:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the server received no message")
		return received{}
	}
}

// selfSigned makes a CA-flagged self-signed certificate for 127.0.0.1 and
// localhost, and writes it as PEM for ca_file.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "switchboard test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, path
}

func smtpErr(code int, enhanced smtp.EnhancedCode, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: msg}
}
