package cisco

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"switchboard/sources/cisco/internal/pb"
)

func TestSubscribeRequestCarriesTheSettings(t *testing.T) {
	e := newEnv(t)
	o := e.options()
	o.QueueName = "switchboard"
	o.DurableName = "switchboard-eu"
	o.MaxInFlight = 50
	o.ManualAck.Timeout = 45 * time.Second
	o.Start = "oldest"
	e.start(o, "VOICE_EVENT", "ROAMING_EVENT", "SMS_DELIVERY_EVENT", "VOICE_EVENT")
	waitFor(t, "a subscription", func() bool { return len(e.srv.requests()) > 0 })

	req := e.srv.requests()[0]
	wantTypes := []pb.EventType{pb.EventType_VOICE_EVENT, pb.EventType_COUNTRY_CHANGE_EVENT, pb.EventType_SMS_DELIVERY_REPORT_EVENT}
	if !slices.Equal(req.GetType(), wantTypes) {
		t.Errorf("types = %v, want %v (aliases mapped, duplicates dropped, one Subscribe for all)", req.GetType(), wantTypes)
	}
	if req.GetClientId() != testClientID {
		t.Errorf("client_id = %q, want oauth.client_id %q", req.GetClientId(), testClientID)
	}
	if req.GetQueueName() != "switchboard" || req.GetDurableName() != "switchboard-eu" || req.GetMaxInFlight() != 50 {
		t.Errorf("queue_name, durable_name, max_in_flight = %q, %q, %d", req.GetQueueName(), req.GetDurableName(), req.GetMaxInFlight())
	}
	if ma := req.GetManualAck(); !ma.GetEnable() || ma.GetTimeout().AsDuration() != 45*time.Second {
		t.Errorf("manual_ack = %v, want enable and 45s", ma)
	}
	if req.GetStartAtOldestPossible() == nil {
		t.Errorf("start position = %v, want start_at_oldest_possible", req.GetStartPosition())
	}
	wantScopes := []string{"events.roaming.subscribe", "events.sms_delivery_report.subscribe", "events.voice.subscribe"}
	if got := e.tokens.requestedScopes(); !slices.Equal(got, wantScopes) {
		t.Errorf("token requested for scopes %v, want what the events need: %v", got, wantScopes)
	}
	waitFor(t, "Connected", e.src.Connected)
}

func TestSubscribeRequestClientIDAndManualAckOff(t *testing.T) {
	e := newEnv(t)
	o := e.options()
	o.ClientID = "my-subscriber"
	o.ManualAck.Enabled = false
	o.OAuth.Scopes = []string{"events.voice.subscribe", "extra.scope"}
	e.start(o, "VOICE_EVENT")
	e.srv.publish(voiceEvents(2)...)
	waitFor(t, "two events", func() bool { return len(e.acc.events()) == 2 })

	req := e.srv.requests()[0]
	if req.GetClientId() != "my-subscriber" {
		t.Errorf("client_id = %q, want the configured my-subscriber", req.GetClientId())
	}
	if req.GetManualAck() != nil {
		t.Errorf("manual_ack = %v, want none when disabled", req.GetManualAck())
	}
	if req.GetStartPosition() != nil {
		t.Errorf("start position = %v, want none for start: new", req.GetStartPosition())
	}
	if got := e.tokens.requestedScopes(); !slices.Equal(got, o.OAuth.Scopes) {
		t.Errorf("scopes = %v, want the configured %v", got, o.OAuth.Scopes)
	}
	time.Sleep(50 * time.Millisecond)
	if n := e.trace.count("ack:call-1") + e.trace.count("ack:call-2"); n != 0 {
		t.Errorf("%d acks sent without manual ack", n)
	}
}

func TestStartPositionOnTheWire(t *testing.T) {
	at := time.Date(2026, 11, 23, 6, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		start string
		check func(*pb.SubscribeEventsRequest) bool
	}{
		{"new", func(r *pb.SubscribeEventsRequest) bool { return r.GetStartPosition() == nil }},
		{"oldest", func(r *pb.SubscribeEventsRequest) bool { return r.GetStartAtOldestPossible() != nil }},
		{"last_received", func(r *pb.SubscribeEventsRequest) bool { return r.GetStartWithLastReceived() != nil }},
		{"sequence:42", func(r *pb.SubscribeEventsRequest) bool {
			_, ok := r.GetStartPosition().(*pb.SubscribeEventsRequest_StartAtSequence)
			return ok && r.GetStartAtSequence() == 42
		}},
		{"sequence:0", func(r *pb.SubscribeEventsRequest) bool {
			_, ok := r.GetStartPosition().(*pb.SubscribeEventsRequest_StartAtSequence)
			return ok && r.GetStartAtSequence() == 0
		}},
		{"time:2026-11-23T06:30:00Z", func(r *pb.SubscribeEventsRequest) bool {
			return r.GetStartAtTimestamp() != nil && r.GetStartAtTimestamp().AsTime().Equal(at)
		}},
	} {
		t.Run(tc.start, func(t *testing.T) {
			e := newEnv(t)
			o := e.options()
			o.Start = tc.start
			e.start(o, "SMS_EVENT")
			waitFor(t, "a subscription", func() bool { return len(e.srv.requests()) > 0 })
			if req := e.srv.requests()[0]; !tc.check(req) {
				t.Errorf("start %s sent start position %v", tc.start, req.GetStartPosition())
			}
		})
	}
}

// An event is acked only after Accept returned nil for it, and each once.
func TestAcksOnlyAfterAccept(t *testing.T) {
	e := newEnv(t)
	o := e.options()
	o.MaxInFlight = 4
	e.start(o, "VOICE_EVENT")
	e.srv.publish(voiceEvents(20)...)
	waitFor(t, "20 acks", func() bool { return e.srv.ackedCount() == 20 })

	lines := e.trace.snapshot()
	for i := 1; i <= 20; i++ {
		l := fmt.Sprintf("call-%d", i)
		acc, ack := slices.Index(lines, "accept:"+l), slices.Index(lines, "ack:"+l)
		if acc < 0 || ack < 0 || ack < acc {
			t.Errorf("%s: accept at %d, ack at %d in %v; want the ack after the accept", l, acc, ack, lines)
		}
		if n := e.trace.count("ack:" + l); n != 1 {
			t.Errorf("%s acked %d times", l, n)
		}
	}
	if n := len(e.acc.events()); n != 20 {
		t.Errorf("accepted %d events, want 20", n)
	}
}

// An event the daemon cannot queue is not acked; the server sends it again
// after the ack timeout and it is then accepted and acked, once.
func TestNotQueuedMeansNotAcked(t *testing.T) {
	e := newEnv(t)
	e.acc.fail = 2
	e.start(e.options(), "VOICE_EVENT")
	e.srv.publish(voiceEvents(1)...)
	waitFor(t, "the ack", func() bool { return e.srv.ackedCount() == 1 })

	// A slow machine may see one more redelivery (a duplicate) before the
	// ack lands; the order is what matters.
	lines := e.trace.snapshot()
	want := []string{"fail:call-1", "fail:call-1", "accept:call-1", "ack:call-1"}
	if !slices.Equal(lines[:min(4, len(lines))], want) || e.trace.count("accept:call-1") != 1 || e.trace.count("ack:call-1") != 1 {
		t.Errorf("trace = %v, want %v", lines, want)
	}
	warns := e.logs.find("WARN", "could not queue an event; not acked")
	if len(warns) != 2 || warns[0]["event_id"] == nil || warns[0]["event_id"] == "" {
		t.Errorf("want two warnings naming the event id, got %v", warns)
	}
	e.srv.mu.Lock()
	sends := e.srv.sends[1]
	e.srv.mu.Unlock()
	if sends < 3 {
		t.Errorf("server sent the event %d times, want 3 (two redeliveries after the ack timeout)", sends)
	}
}

// A redelivery of an accepted event (the ack was lost) carries the same id:
// the queue says duplicate, Accept returns nil, and the redelivery is acked.
func TestRedeliveryIsADuplicateAndAcked(t *testing.T) {
	e := newEnv(t)
	e.srv.loseAcks[1] = 1
	e.start(e.options(), "VOICE_EVENT")
	e.srv.publish(voiceEvents(1)...)
	waitFor(t, "the ack", func() bool { return e.srv.ackedCount() == 1 })

	want := []string{"accept:call-1", "lost-ack:call-1", "dup:call-1", "ack:call-1"}
	if lines := e.trace.snapshot(); !slices.Equal(lines[:min(4, len(lines))], want) || e.trace.count("ack:call-1") != 1 {
		t.Errorf("trace = %v, want %v", lines, want)
	}
	if n := len(e.acc.events()); n != 1 {
		t.Errorf("accepted %d events, want 1", n)
	}
}

// The stream is cut mid-flight: the source reconnects after the backoff and
// the durable subscription goes on where it was; nothing is lost, nothing
// accepted twice.
func TestStreamCutReconnectsAndResumes(t *testing.T) {
	e := newEnv(t)
	o := e.options()
	o.DurableName = "switchboard"
	o.MaxInFlight = 1
	e.srv.cutAfter = 3
	e.start(o, "VOICE_EVENT")
	e.srv.publish(voiceEvents(6)...)
	waitFor(t, "6 acks", func() bool { return e.srv.ackedCount() == 6 })
	waitFor(t, "Connected again", e.src.Connected)

	subs := e.srv.subscribeTimes()
	if len(subs) != 2 {
		t.Fatalf("%d subscriptions, want 2", len(subs))
	}
	if gap := subs[1].Sub(subs[0]); gap < backoffUnit {
		t.Errorf("reconnected after %v, want at least the backoff %v", gap, backoffUnit)
	}
	reqs := e.srv.requests()
	if !proto.Equal(reqs[0], reqs[1]) {
		t.Errorf("a durable subscription must resubscribe as it was: %v then %v", reqs[0], reqs[1])
	}
	if n := len(e.acc.events()); n != 6 {
		t.Errorf("accepted %d events, want 6", n)
	}
	if len(e.logs.find("WARN", "event stream failed; reconnecting")) != 1 {
		t.Errorf("want one warning about the cut stream; logs: %v", e.logs.records())
	}
}

// A regular subscription's position lives only as long as its stream: the
// next one starts a little before where the broken one was, so that
// nothing published in between is skipped.
func TestRegularSubscriptionResumesByTime(t *testing.T) {
	e := newEnv(t)
	e.srv.cutAfter = 1
	e.start(e.options(), "VOICE_EVENT")
	e.srv.publish(voiceEvents(1)...)
	waitFor(t, "a second subscription", func() bool { return len(e.srv.requests()) == 2 })

	req := e.srv.requests()[1]
	ts := req.GetStartAtTimestamp()
	if ts == nil {
		t.Fatalf("start position after a reconnect = %v, want start_at_timestamp", req.GetStartPosition())
	}
	ago := time.Since(ts.AsTime())
	if lo, hi := resumeMargin+300*time.Millisecond, resumeMargin+5*time.Second; ago < lo || ago > hi {
		t.Errorf("resumes %v ago, want about manual_ack.timeout + %v", ago, resumeMargin)
	}
}

// The server's periodic disconnects after a healthy stream reset the
// backoff, so they never add up to the cap.
func TestBackoffResetsAfterAHealthyStream(t *testing.T) {
	e := newEnv(t)
	e.start(e.options(), "VOICE_EVENT")
	for i := range 3 {
		waitFor(t, "a subscription", func() bool { return len(e.srv.requests()) == i+1 })
		time.Sleep(healthyAfter + 50*time.Millisecond)
		e.srv.set(func(f *fakeServer) { f.cutAfter = 1 })
		e.srv.publish(voiceEvent(fmt.Sprintf("call-%d", i), pb.VoiceEvent_CALL_ENDED))
	}
	waitFor(t, "a fourth subscription", func() bool { return len(e.srv.requests()) == 4 })
	for _, r := range e.logs.find("WARN", "event stream failed") {
		if r["attempt"] != float64(1) {
			t.Errorf("attempt %v after a healthy stream, want 1", r["attempt"])
		}
	}
}

// A token endpoint refusing the credentials: a clear error at each attempt,
// and attempts spaced by the growing backoff, not a hot loop.
func TestTokenRefusedIsReportedWithoutHotLoop(t *testing.T) {
	e := newEnv(t)
	e.tokens.refuse = true
	e.start(e.options(), "VOICE_EVENT", "SMS_EVENT")
	time.Sleep(1200 * time.Millisecond)
	e.stop()

	hits := e.tokens.hitTimes()
	// 50ms × 1, 2, 3 ... capped at 400ms: 6 or 7 attempts in 1.2 s.
	if len(hits) < 3 || len(hits) > 8 {
		t.Errorf("%d token requests in 1.2s; want 3 to 8 (backoff, no hot loop)", len(hits))
	}
	for i := 2; i < len(hits); i++ {
		if gap := hits[i].Sub(hits[i-1]); gap < backoffUnit*time.Duration(i)-10*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous one, want at least %v", i+1, gap, backoffUnit*time.Duration(i))
		}
	}
	if n := len(e.srv.subscribeTimes()); n != 0 {
		t.Errorf("the server saw %d subscriptions without a token", n)
	}
	errs := e.logs.find("ERROR", "check oauth.client_id/client_secret and the scopes: VOICE_EVENT needs events.voice.subscribe, SMS_EVENT needs events.sms.subscribe")
	if len(errs) != len(hits) {
		t.Fatalf("%d error logs for %d attempts; logs: %v", len(errs), len(hits), e.logs.records())
	}
	if errs[0]["code"] != "Unauthenticated" || !strings.Contains(fmt.Sprint(errs[0]["err"]), "refused the client credentials: 401 invalid_client") {
		t.Errorf("error log = %v", errs[0])
	}
	if e.src.Connected() {
		t.Error("Connected() is true without a stream")
	}
}

// The server refusing the subscription (wrong token, missing scope).
func TestServerRefusalIsReportedWithoutHotLoop(t *testing.T) {
	for _, code := range []codes.Code{codes.Unauthenticated, codes.PermissionDenied} {
		t.Run(code.String(), func(t *testing.T) {
			e := newEnv(t)
			if code == codes.Unauthenticated {
				e.srv.token = "another-token"
			} else {
				e.srv.refuse = code
			}
			e.start(e.options(), "VOICEMAIL_EVENT")
			time.Sleep(700 * time.Millisecond)
			e.stop()
			n := len(e.srv.subscribeTimes())
			if n < 2 || n > 6 {
				t.Errorf("%d subscriptions in 0.7s; want 2 to 6", n)
			}
			errs := e.logs.find("ERROR", "the event API refused the subscription; check oauth.client_id/client_secret and the scopes: VOICEMAIL_EVENT needs events.voicemail.subscribe")
			if len(errs) != n || errs[0]["code"] != code.String() {
				t.Errorf("%d subscriptions, error logs %v", n, errs)
			}
			if e.src.Connected() {
				t.Error("Connected() is true without a stream")
			}
		})
	}
}

func TestConnectedFollowsTheStream(t *testing.T) {
	e := newEnv(t)
	e.start(e.options(), "VOICE_EVENT")
	waitFor(t, "Connected", e.src.Connected)
	e.srv.set(func(f *fakeServer) { f.refuse = codes.Unavailable; f.cutAfter = 1 })
	e.srv.publish(voiceEvents(1)...)
	waitFor(t, "not Connected", func() bool { return !e.src.Connected() })
	time.Sleep(3 * settle)
	if e.src.Connected() {
		t.Error("Connected() while every subscription is refused")
	}
}

func TestRunStopsPromptlyWhileProcessing(t *testing.T) {
	e := newEnv(t)
	e.acc.fail = 1 << 30 // the queue is down: workers are backing off
	o := e.options()
	o.MaxInFlight = 8
	e.start(o, "VOICE_EVENT")
	e.srv.publish(voiceEvents(8)...)
	waitFor(t, "failures", func() bool { return len(e.trace.snapshot()) > 8 })
	e.stop() // checks Run returns nil within 3s
	if e.srv.ackedCount() != 0 {
		t.Error("events acked although none could be queued")
	}
}

// TLS with a private CA given as ca_file; the same server is refused with
// the system roots.
func TestTLSWithCAFile(t *testing.T) {
	caPEM, serverCert := testPKI(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tr := &trace{}
	e := &env{t: t, trace: tr, srv: newFakeServer(tr), tokens: newTokenEndpoint(t),
		acc: &fakeAcceptor{trace: tr, seen: map[string]bool{}}, logs: &logBuf{}}
	e.addr = serve(t, e.srv, credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{serverCert}}))

	t.Run("ca_file", func(t *testing.T) {
		o := e.options()
		o.Plaintext = false
		o.CAFile = caFile
		e.t = t
		e.start(o, "VOICE_EVENT")
		e.srv.publish(voiceEvents(2)...)
		waitFor(t, "2 acks over TLS", func() bool { return e.srv.ackedCount() == 2 })
		e.stop()
	})
	t.Run("system roots", func(t *testing.T) {
		e.logs = &logBuf{}
		o := e.options()
		o.Plaintext = false
		e.t = t
		e.start(o, "VOICE_EVENT")
		waitFor(t, "a refused handshake", func() bool { return len(e.logs.find("WARN", "event stream failed")) > 0 })
		e.stop()
		r := e.logs.find("WARN", "event stream failed")[0]
		if r["code"] != "Unavailable" || !strings.Contains(fmt.Sprint(r["err"]), "certificate") {
			t.Errorf("log = %v, want an Unavailable naming the certificate", r)
		}
	})
}

// testPKI makes a CA and a server certificate for 127.0.0.1 signed by it.
func testPKI(t *testing.T) (caPEM []byte, server tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchboard test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// A token the server stops taking before it expires (revoked): the next
// attempt fetches a new one instead of sending the cached one again.
func TestRevokedTokenIsReplaced(t *testing.T) {
	e := newEnv(t)
	e.srv.token = testToken + "-1"
	e.start(e.options(), "VOICE_EVENT")
	waitFor(t, "Connected", e.src.Connected)
	e.srv.set(func(f *fakeServer) { f.token = testToken + "-2"; f.cutAfter = 1 })
	e.srv.publish(voiceEvents(1)...)
	waitFor(t, "a stream with the new token", func() bool { return len(e.srv.requests()) == 2 })
	if n := len(e.tokens.hitTimes()); n != 2 {
		t.Errorf("%d tokens fetched, want 2", n)
	}
	waitFor(t, "the event acked", func() bool { return e.srv.ackedCount() == 1 })
}
