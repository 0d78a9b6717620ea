package cisco

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"switchboard/metrics"
	"switchboard/router"
	"switchboard/sources"
	"switchboard/sources/cisco/internal/pb"
)

// Timing of the client. Variables, not constants, so that tests run in
// milliseconds what production does in seconds.
var (
	// Reconnects wait backoffUnit × attempt, at most backoffCap, as the
	// provider's own client does; the count starts again after a stream
	// that stayed up for healthyAfter.
	backoffUnit  = 2 * time.Second
	backoffCap   = 60 * time.Second
	healthyAfter = 30 * time.Second
	// A stream that has not failed within settle of being opened counts as
	// connected (the server may send no headers until its first event).
	settle = time.Second
	// acceptBackoff is the pause of a worker after the daemon could not
	// queue an event, so that a full or closed queue is not hammered.
	acceptBackoff = time.Second
	// resumeMargin widens the resume point of a regular subscription for
	// clock skew between this host and the server.
	resumeMargin = 10 * time.Second
	// ackCallTimeout bounds one Ack call.
	ackCallTimeout = 10 * time.Second
	// tokenTimeout bounds one request to the token endpoint.
	tokenTimeout = 10 * time.Second
)

// Keepalive as in the provider's examples: a ping after 60 s of silence,
// and the connection is dropped when no answer comes within 10 s.
var keepaliveParams = keepalive.ClientParameters{Time: 60 * time.Second, Timeout: 10 * time.Second}

// Source is a built cisco source: one subscription, run by Run.
type Source struct {
	name       string
	target     string
	plaintext  bool
	transport  credentials.TransportCredentials
	oauth      *clientcredentials.Config // nil: no token is sent
	req        *pb.SubscribeEventsRequest
	types      []pb.EventType
	names      []string // proto names of types
	scopeHint  string
	manualAck  bool
	ackTimeout time.Duration
	startTime  time.Time // the start setting's time, for time:...
	workers    int

	connected atomic.Bool
	logp      atomic.Pointer[slog.Logger] // set by SetLogger
}

// Connected reports whether the event stream is up: opened and not failed.
// The daemon's /readyz reads it.
func (s *Source) Connected() bool { return s.connected.Load() }

// SetLogger gives the source the daemon's logger; without it the source
// logs to slog.Default().
func (s *Source) SetLogger(l *slog.Logger) { s.logp.Store(l) }

// Events returns the proto names of the event types the source subscribes
// to: the names its events carry, also where the config used an alias.
func (s *Source) Events() []string { return append([]string(nil), s.names...) }

func (s *Source) logger() *slog.Logger {
	if l := s.logp.Load(); l != nil {
		return l.With("source", s.name)
	}
	return slog.Default().With("source", s.name)
}

// Run implements sources.StreamSource: it subscribes, processes events and
// reconnects after every end of the stream, until ctx ends.
func (s *Source) Run(ctx context.Context, acc sources.Acceptor) error {
	log := s.logger()
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(s.transport),
		grpc.WithKeepaliveParams(keepaliveParams),
	}
	var creds *bearer
	if s.oauth != nil {
		hc := &http.Client{Timeout: tokenTimeout}
		tctx := context.WithValue(ctx, oauth2.HTTPClient, hc)
		// clientcredentials' TokenSource is a ReuseTokenSource: one token is
		// used until shortly before it expires, then a new one is fetched.
		creds = newBearer(func() oauth2.TokenSource { return s.oauth.TokenSource(tctx) }, s.oauth.TokenURL, !s.plaintext)
		opts = append(opts, grpc.WithPerRPCCredentials(creds))
	}
	conn, err := grpc.NewClient(s.target, opts...)
	if err != nil {
		return fmt.Errorf("target %s: %w", s.target, err)
	}
	defer conn.Close()
	client := pb.NewEventsServiceClient(conn)

	r := &run{Source: s, client: client, acc: acc, log: log, failed: map[string]time.Time{}}
	attempt := 0
	for {
		up, err := r.stream(ctx)
		s.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if up >= healthyAfter {
			attempt = 0
		}
		attempt++
		wait := min(backoffUnit*time.Duration(attempt), backoffCap)
		code := status.Code(err)
		switch {
		case code == codes.Unauthenticated || code == codes.PermissionDenied:
			if code == codes.Unauthenticated && creds != nil {
				// The server may have revoked a token that has not expired
				// yet: the next attempt fetches a new one.
				creds.reset()
			}
			log.Error("the event API refused the subscription; check oauth.client_id/client_secret and the scopes: "+s.scopeHint,
				"code", code.String(), "err", errText(err), "attempt", attempt, "retry_in", wait)
		case err == nil || errors.Is(err, io.EOF):
			log.Info("event stream ended by the server; reconnecting", "up", up.Round(time.Millisecond), "retry_in", wait)
		default:
			log.Warn("event stream failed; reconnecting", "code", code.String(), "err", errText(err), "attempt", attempt, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

func errText(err error) string {
	if st, ok := status.FromError(err); ok && err != nil {
		return st.Message()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// run is the state of one Run across its streams.
type run struct {
	*Source
	client pb.EventsServiceClient
	acc    sources.Acceptor
	log    *slog.Logger

	// resumeAt, once set, is where a regular (non-durable) subscription
	// starts again after a reconnect: the server keeps its position only
	// while connected. Events replayed from there are duplicates the queue
	// recognises.
	resumeAt time.Time
	mu       sync.Mutex
	// failed holds the receipt time of each event (by id) that could not be
	// queued and was not acked, until an event with that id is: a resume
	// point must not skip them.
	failed map[string]time.Time
}

// stream runs one Subscribe stream until it ends; up is how long it was
// connected.
func (r *run) stream(ctx context.Context) (up time.Duration, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := r.request()
	stream, err := r.client.Subscribe(sctx, req)
	if err != nil {
		return 0, err
	}
	opened := time.Now()
	var once sync.Once
	markUp := func() {
		once.Do(func() {
			r.connected.Store(true)
			r.log.Info("event stream connected", "target", r.target, "events", r.names,
				"durable_name", req.GetDurableName(), "queue_name", req.GetQueueName())
		})
	}
	ended := make(chan struct{})
	go func() {
		select {
		case <-time.After(settle):
			markUp()
		case <-ended:
		}
	}()

	work := make(chan *pb.Event)
	var wg sync.WaitGroup
	for range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range work {
				r.handle(sctx, ev)
			}
		}()
	}
	defer func() {
		close(ended)
		once.Do(func() {}) // a stream that ended before settle never counts as up
		// Let events being queued finish (and be acked) before the next
		// stream; cancelling sctx afterwards (deferred above) ends their
		// waits when ctx itself is done.
		close(work)
		wg.Wait()
		if r.connected.Load() {
			up = time.Since(opened)
		}
		r.noteEnd()
	}()
	for {
		resp, err := stream.Recv()
		if err != nil {
			return 0, err
		}
		markUp()
		ev := resp.GetEvent()
		if ev == nil {
			continue
		}
		select {
		case work <- ev:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// request is the subscription request of the next stream.
func (r *run) request() *pb.SubscribeEventsRequest {
	req := proto.Clone(r.req).(*pb.SubscribeEventsRequest)
	if !r.resumeAt.IsZero() && req.GetDurableName() == "" {
		req.StartPosition = &pb.SubscribeEventsRequest_StartAtTimestamp{StartAtTimestamp: timestamppb.New(r.resumeAt)}
	}
	return req
}

// noteEnd records, for a regular subscription, where the next stream must
// start so that nothing sent on this one is skipped: before any event not
// yet acked (the server would have sent it again, ack timeout after it was
// sent) and before any event that could not be queued.
func (r *run) noteEnd() {
	if r.req.GetDurableName() != "" || !r.connected.Load() {
		return
	}
	at := time.Now().Add(-r.ackTimeout)
	r.mu.Lock()
	for _, t := range r.failed {
		if t.Before(at) {
			at = t
		}
	}
	clear(r.failed)
	r.mu.Unlock()
	at = at.Add(-resumeMargin)
	if at.Before(r.startTime) {
		at = r.startTime
	}
	if at.After(r.resumeAt) || r.resumeAt.IsZero() {
		r.resumeAt = at
	}
}

// handle queues one event and acks it once queued.
func (r *run) handle(ctx context.Context, ev *pb.Event) {
	received := time.Now().UTC()
	md := ev.GetMetadata()
	e, err := normalize(r.name, ev, received)
	if err != nil {
		// It can never be routed: ack it, or the server would send it
		// again forever.
		metrics.EventsReceived.WithLabelValues(r.name, "rejected", "unknown_event").Inc()
		r.log.Warn("event skipped and acknowledged: "+err.Error(), "sequence", md.GetSequence())
		r.ack(ctx, md, "")
		return
	}
	if err := r.acc.Accept(ctx, []*router.Event{e}); err != nil {
		if ctx.Err() != nil {
			return // stopping: unacked, the server sends it again
		}
		if !r.manualAck {
			r.log.Error("could not queue an event of a subscription without manual ack: the server will not send it again",
				"event_id", e.ID, "event", e.Event, "sequence", md.GetSequence(), "err", err)
		} else {
			r.log.Warn("could not queue an event; not acked, so the server sends it again after manual_ack.timeout",
				"event_id", e.ID, "event", e.Event, "sequence", md.GetSequence(), "err", err)
		}
		r.mu.Lock()
		if _, ok := r.failed[e.ID]; !ok {
			r.failed[e.ID] = received
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(acceptBackoff):
		}
		return
	}
	r.mu.Lock()
	delete(r.failed, e.ID)
	r.mu.Unlock()
	r.ack(ctx, md, e.ID)
}

// ack acknowledges an event of a manual-ack subscription. A lost ack costs
// a redelivery, which the queue recognises as a duplicate.
func (r *run) ack(ctx context.Context, md *pb.EventMetadata, id string) {
	if !r.manualAck {
		return
	}
	if md.GetAckInbox() == "" {
		r.log.Warn("event has no ack inbox; cannot ack it, the server may send it again", "event_id", id, "sequence", md.GetSequence())
		return
	}
	actx, cancel := context.WithTimeout(ctx, ackCallTimeout)
	defer cancel()
	if _, err := r.client.Ack(actx, &pb.AckRequest{Inbox: md.GetAckInbox(), Sequence: md.GetSequence()}); err != nil && ctx.Err() == nil {
		r.log.Warn("ack failed; the server will send the event again and it will be recognised as a duplicate",
			"event_id", id, "sequence", md.GetSequence(), "code", status.Code(err).String(), "err", errText(err))
	}
}

// bearer sends the OAuth2 access token with every call.
type bearer struct {
	newSource func() oauth2.TokenSource
	tokenURL  string
	secure    bool
	mu        sync.Mutex
	ts        oauth2.TokenSource
}

func newBearer(newSource func() oauth2.TokenSource, tokenURL string, secure bool) *bearer {
	return &bearer{newSource: newSource, tokenURL: tokenURL, secure: secure, ts: newSource()}
}

// reset forgets the cached token.
func (b *bearer) reset() {
	b.mu.Lock()
	b.ts = b.newSource()
	b.mu.Unlock()
}

// GetRequestMetadata implements credentials.PerRPCCredentials. A refusal
// by the token endpoint is UNAUTHENTICATED; not reaching it is UNAVAILABLE.
func (b *bearer) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	b.mu.Lock()
	ts := b.ts
	b.mu.Unlock()
	tok, err := ts.Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
			msg := re.ErrorCode
			if msg == "" {
				msg = http.StatusText(re.Response.StatusCode)
			}
			return nil, status.Errorf(codes.Unauthenticated, "the token endpoint %s refused the client credentials: %d %s", b.tokenURL, re.Response.StatusCode, msg)
		}
		return nil, status.Errorf(codes.Unavailable, "cannot get an access token from %s: %v", b.tokenURL, err)
	}
	return map[string]string{"authorization": tok.Type() + " " + tok.AccessToken}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: false
// only with plaintext, where a local test server still checks the token.
func (b *bearer) RequireTransportSecurity() bool { return b.secure }

var (
	_ sources.StreamSource          = (*Source)(nil)
	_ credentials.PerRPCCredentials = (*bearer)(nil)
)
