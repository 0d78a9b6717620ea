package cisco

// The peers of the tests: a real gRPC server implementing EventsService on
// a loopback listener, a real OAuth2 token endpoint, and an Acceptor that
// records what it is given. The server behaves like the provider's: it
// sends every published event not yet acked, sends an unacked one again
// (is_redelivered) after the subscription's ack timeout and on every new
// subscription, and can be told to cut a stream, refuse a subscription or
// lose acks.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"switchboard/router"
	"switchboard/sources"
	"switchboard/sources/cisco/internal/pb"
)

func TestMain(m *testing.M) {
	// Production waits seconds; the tests wait milliseconds, in the same
	// proportions.
	backoffUnit = 50 * time.Millisecond
	backoffCap = 400 * time.Millisecond
	healthyAfter = 300 * time.Millisecond
	settle = 100 * time.Millisecond
	acceptBackoff = 20 * time.Millisecond
	ackCallTimeout = 2 * time.Second
	tokenTimeout = 2 * time.Second
	os.Exit(m.Run())
}

const (
	testClientID = "switchboard-test"
	testSecret   = "s3cr3t"
	testToken    = "token-for-switchboard-test"
	testInbox    = "_INBOX.switchboard-test"
)

// trace is the order of what happened across the acceptor and the server:
// "accept:<label>", "fail:<label>", "dup:<label>", "ack:<label>".
type trace struct {
	mu    sync.Mutex
	lines []string
}

func (t *trace) add(format string, args ...any) {
	t.mu.Lock()
	t.lines = append(t.lines, fmt.Sprintf(format, args...))
	t.mu.Unlock()
}

func (t *trace) snapshot() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.lines)
}

func (t *trace) count(line string) int {
	n := 0
	for _, l := range t.snapshot() {
		if l == line {
			n++
		}
	}
	return n
}

// label names a test event in traces: its call id, voicemail id or SMS
// uuid.
func label(ev *pb.Event) string {
	switch {
	case ev.GetVoiceEvent() != nil:
		return ev.GetVoiceEvent().GetCallId()
	case ev.GetVoicemailEvent() != nil:
		return ev.GetVoicemailEvent().GetVoicemailId()
	case ev.GetSmsEvent() != nil:
		return ev.GetSmsEvent().GetUuid()
	case ev.GetSmsDeliveryReportEvent() != nil:
		return ev.GetSmsDeliveryReportEvent().GetId()
	}
	return "?"
}

func payloadLabel(ev *router.Event) string {
	for _, k := range []string{"callId", "voicemailId", "uuid", "id"} {
		if v, ok := ev.Payload[k]; ok {
			return router.String(v)
		}
	}
	return "?"
}

// fakeServer is the provider's EventsService.
type fakeServer struct {
	pb.UnimplementedEventsServiceServer
	trace *trace

	mu         sync.Mutex
	token      string // the bearer token it takes; "" any the token endpoint issued
	reqs       []*pb.SubscribeEventsRequest
	subscribes []time.Time
	events     []*pb.Event // published; sequence = index + 1
	acked      map[uint64]bool
	lastSent   map[uint64]time.Time
	sends      map[uint64]int
	refuse     codes.Code     // not OK: Subscribe answers this
	cutAfter   int            // > 0: the next stream ends UNAVAILABLE after this many sends
	loseAcks   map[uint64]int // answer OK but forget this many acks of a sequence
	open       int            // streams open now
}

func newFakeServer(tr *trace) *fakeServer {
	return &fakeServer{trace: tr, acked: map[uint64]bool{}, lastSent: map[uint64]time.Time{},
		sends: map[uint64]int{}, loseAcks: map[uint64]int{}}
}

func (f *fakeServer) auth(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	want := f.token
	f.mu.Unlock()
	got := md.Get("authorization")
	ok := len(got) == 1 && strings.HasPrefix(got[0], "Bearer ")
	if ok && want != "" {
		ok = got[0] == "Bearer "+want
	} else if ok {
		ok = strings.HasPrefix(got[0], "Bearer "+testToken)
	}
	if !ok {
		return status.Errorf(codes.Unauthenticated, "missing or wrong bearer token (got %q)", got)
	}
	return nil
}

func (f *fakeServer) publish(evs ...*pb.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, evs...)
}

func (f *fakeServer) requests() []*pb.SubscribeEventsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func (f *fakeServer) subscribeTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.subscribes)
}

func (f *fakeServer) set(fn func(f *fakeServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeServer) Subscribe(req *pb.SubscribeEventsRequest, stream grpc.ServerStreamingServer[pb.SubscribeEventsResponse]) error {
	f.mu.Lock()
	f.subscribes = append(f.subscribes, time.Now())
	f.mu.Unlock()
	if err := f.auth(stream.Context()); err != nil {
		return err
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, proto.Clone(req).(*pb.SubscribeEventsRequest))
	refuse := f.refuse
	// A new subscription gets every unacked event at once.
	clear(f.lastSent)
	f.open++
	f.mu.Unlock()
	defer f.set(func(f *fakeServer) { f.open-- })
	if refuse != codes.OK {
		return status.Error(refuse, "refused by the test server")
	}
	manual := req.GetManualAck().GetEnable()
	timeout := req.GetManualAck().GetTimeout().AsDuration()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for {
		f.mu.Lock()
		var batch []*pb.Event
		for i, ev := range f.events {
			seq := uint64(i + 1)
			if f.acked[seq] || !slices.Contains(req.GetType(), typeOf(ev)) {
				continue
			}
			if last, ok := f.lastSent[seq]; ok && time.Since(last) < timeout {
				continue
			}
			out := proto.Clone(ev).(*pb.Event)
			out.Metadata = &pb.EventMetadata{Sequence: seq, IsRedelivered: f.sends[seq] > 0, AckInbox: testInbox}
			f.sends[seq]++
			f.lastSent[seq] = time.Now()
			if !manual {
				f.acked[seq] = true
			}
			batch = append(batch, out)
		}
		cut := f.cutAfter
		f.mu.Unlock()
		for _, ev := range batch {
			if err := stream.Send(&pb.SubscribeEventsResponse{Event: ev}); err != nil {
				return err
			}
			sent++
			if cut > 0 && sent >= cut {
				f.set(func(f *fakeServer) { f.cutAfter = 0 })
				return status.Error(codes.Unavailable, "the test server cut the stream")
			}
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-tick.C:
		}
	}
}

func (f *fakeServer) Ack(ctx context.Context, req *pb.AckRequest) (*pb.AckResponse, error) {
	if err := f.auth(ctx); err != nil {
		return nil, err
	}
	if req.GetInbox() != testInbox {
		return nil, status.Errorf(codes.InvalidArgument, "unknown ack inbox %q", req.GetInbox())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	seq := req.GetSequence()
	if seq == 0 || seq > uint64(len(f.events)) {
		return nil, status.Errorf(codes.InvalidArgument, "unknown sequence %d", seq)
	}
	if f.loseAcks[seq] > 0 {
		f.loseAcks[seq]--
		f.trace.add("lost-ack:%s", label(f.events[seq-1]))
		return &pb.AckResponse{}, nil
	}
	f.acked[seq] = true
	f.trace.add("ack:%s", label(f.events[seq-1]))
	return &pb.AckResponse{}, nil
}

func (f *fakeServer) ackedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.acked)
}

func typeOf(ev *pb.Event) pb.EventType {
	name, _, _ := classify(ev)
	et, _ := lookupType(name)
	return et.typ
}

// serve starts the gRPC server on a loopback port; creds nil is plaintext.
func serve(t *testing.T, f *fakeServer, creds credentials.TransportCredentials) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	pb.RegisterEventsServiceServer(srv, f)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// tokenEndpoint is an OAuth2 token endpoint taking client credentials by
// HTTP Basic only.
type tokenEndpoint struct {
	*httptest.Server
	mu     sync.Mutex
	hits   []time.Time
	scopes []string
	refuse bool
	issued int // tokens issued: the n-th is testToken-n
}

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	te := &tokenEndpoint{}
	te.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		te.mu.Lock()
		te.hits = append(te.hits, time.Now())
		refuse := te.refuse
		te.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		id, secret, ok := r.BasicAuth()
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost || r.PostForm.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_request"}`))
			return
		}
		if refuse || !ok || id != testClientID || secret != testSecret || r.PostForm.Get("client_secret") != "" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_client","error_description":"client authentication failed"}`))
			return
		}
		te.mu.Lock()
		te.scopes = strings.Fields(r.PostForm.Get("scope"))
		te.issued++
		tok := fmt.Sprintf("%s-%d", testToken, te.issued)
		te.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": 3600})
	}))
	t.Cleanup(te.Close)
	return te
}

func (te *tokenEndpoint) hitTimes() []time.Time {
	te.mu.Lock()
	defer te.mu.Unlock()
	return slices.Clone(te.hits)
}

func (te *tokenEndpoint) requestedScopes() []string {
	te.mu.Lock()
	defer te.mu.Unlock()
	return slices.Clone(te.scopes)
}

// fakeAcceptor records accepted events. Like the durable queue, it
// recognises an event id it accepted before and reports success without
// taking it again. It can be told to fail the next n calls.
type fakeAcceptor struct {
	trace *trace
	mu    sync.Mutex
	fail  int
	seen  map[string]bool
	evs   []*router.Event
}

func (a *fakeAcceptor) Accept(ctx context.Context, evs []*router.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail > 0 {
		a.fail--
		for _, ev := range evs {
			a.trace.add("fail:%s", payloadLabel(ev))
		}
		return router.ErrQueueFull
	}
	for _, ev := range evs {
		if a.seen[ev.ID] {
			a.trace.add("dup:%s", payloadLabel(ev))
			continue
		}
		a.seen[ev.ID] = true
		a.evs = append(a.evs, ev)
		a.trace.add("accept:%s", payloadLabel(ev))
	}
	return nil
}

func (a *fakeAcceptor) events() []*router.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.evs)
}

// logBuf collects the source's log records as JSON lines.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) records() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(l.buf.Bytes(), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// find returns the records at level whose message contains msg.
func (l *logBuf) find(level, msg string) []map[string]any {
	var out []map[string]any
	for _, r := range l.records() {
		if r["level"] == level && strings.Contains(fmt.Sprint(r["msg"]), msg) {
			out = append(out, r)
		}
	}
	return out
}

// env is one source running against the test peers.
type env struct {
	t      *testing.T
	trace  *trace
	srv    *fakeServer
	addr   string
	tokens *tokenEndpoint
	acc    *fakeAcceptor
	logs   *logBuf
	src    *Source
	cancel context.CancelFunc
	done   chan error
}

func newEnv(t *testing.T) *env {
	tr := &trace{}
	e := &env{t: t, trace: tr, srv: newFakeServer(tr), tokens: newTokenEndpoint(t),
		acc: &fakeAcceptor{trace: tr, seen: map[string]bool{}}, logs: &logBuf{}}
	e.addr = serve(t, e.srv, nil)
	return e
}

// options are the settings of a plaintext source for e's peers.
func (e *env) options() *Options {
	o := defaultOptions()
	o.Target = e.addr
	o.Plaintext = true
	o.OAuth.ClientID = testClientID
	o.OAuth.ClientSecret = testSecret
	o.OAuth.TokenURL = e.tokens.URL + "/oauth2/token"
	o.ManualAck.Timeout = 300 * time.Millisecond
	return o
}

// defaultOptions is what the registry hands the daemon.
func defaultOptions() *Options {
	f, _ := sources.Lookup("cisco")
	return f().(*Options)
}

func build(t *testing.T, o *Options, events ...string) *Source {
	t.Helper()
	b, err := o.Build(sources.Info{Name: "cisco", Events: events})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return b.(*Source)
}

// start runs a source built from o until the test ends.
func (e *env) start(o *Options, events ...string) {
	e.t.Helper()
	e.src = build(e.t, o, events...)
	e.src.SetLogger(slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- e.src.Run(ctx, e.acc) }()
	e.t.Cleanup(func() { e.stop() })
}

// stop ends Run and checks that it returns promptly and without error.
func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("Run returned %v after cancel; want nil", err)
		}
	case <-time.After(3 * time.Second):
		e.t.Error("Run did not return within 3s of its context ending")
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var testTime = time.Date(2026, 11, 23, 7, 0, 0, 123000000, time.UTC)

func voiceEvent(callID string, typ pb.VoiceEvent_VoiceEventType) *pb.Event {
	return &pb.Event{
		Timestamp: timestamppb.New(testTime),
		ServiceId: "switchboard-test-product",
		Owner:     &pb.Owner{PhoneNumber: &pb.PhoneNumber{E164: "+4799990000"}, Sub: "sub-1"},
		Event: &pb.Event_VoiceEvent{VoiceEvent: &pb.VoiceEvent{
			CallId: callID, Type: typ,
			FromNumber: &pb.PhoneNumber{E164: "+4799990000"}, ToNumber: &pb.PhoneNumber{E164: "+4799991111"},
		}},
	}
}

func voiceEvents(n int) []*pb.Event {
	out := make([]*pb.Event, n)
	for i := range out {
		out[i] = voiceEvent(fmt.Sprintf("call-%d", i+1), pb.VoiceEvent_CALL_RINGING)
	}
	return out
}
