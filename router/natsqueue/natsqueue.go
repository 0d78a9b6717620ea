// Package natsqueue is the router.Queue that several switchboard replicas
// share: a NATS JetStream work stream, one durable pull consumer per sink,
// a stream of dead letters and a key-value bucket of accepted event ids.
//
// Names, for a stream named S (queue.nats.stream):
//
//	S            work stream, subjects S.d.<sink>, one message per (event, sink),
//	             work-queue retention (a message goes when its delivery is acked)
//	S_DLQ        dead letters, subjects S.dlq.<sink>, kept until replayed,
//	             purged or past the dead-letter limits
//	KV S_SEEN    accepted (source, id) pairs, each with its own TTL: the
//	             dedup horizon, so that a provider's retry reaching any
//	             replica is answered `duplicate`
//	consumer <sink> on S, shared by every replica
//
// What an acknowledged Enqueue means: every (event, sink) message of the
// request was stored by the stream (as durably as its replication and the
// servers' sync settings make it), and only then the ids were remembered.
// Enqueue publishes asynchronously and waits for all acks together, so a
// request costs one round trip for its messages and one for its ids.
//
// Delivery: each sink's consumer hands messages to whichever replica asks;
// a replica extends the ack deadline of a delivery while it is being sent
// (InProgress), acks it when done, naks it with the retry delay, and moves
// it to S_DLQ before acking it when it dies. A replica that dies holding a
// delivery loses nothing: the server hands the message to another replica
// once the ack deadline (queue.nats.ack_wait) passes.
package natsqueue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"switchboard/router"
)

// Options configure a queue. The zero value of every limit means no limit.
type Options struct {
	// URL is one NATS server or a comma-separated list.
	URL string
	// Stream names the work stream; see the package doc for the others.
	Stream   string
	Replicas int
	// Credentials: at most one of these files.
	CredentialsFile, NKeyFile, TokenFile string
	// TLS: a CA to trust, and a client certificate with its key.
	CAFile, CertFile, KeyFile string

	// MaxBytes bounds the stored deliveries; Enqueue past it fails with
	// router.ErrQueueFull (sources answer 503).
	MaxBytes int64
	// MaxPendingPerSink bounds one sink's backlog: past it, new deliveries
	// to that sink go straight to the dead letters (reason "backlog full").
	MaxPendingPerSink int
	// DedupWindow is how long an accepted (source, id) is remembered; 0
	// turns dedup off.
	DedupWindow time.Duration
	// DeadLetterMaxAge and DeadLetterMaxBytes bound the dead letters; past
	// them the oldest are dropped, each logged at error and reported to
	// Dropped.
	DeadLetterMaxAge   time.Duration
	DeadLetterMaxBytes int64
	Dropped            func(router.DeadLetter)
	// AckWait is how long a delivery whose replica stopped answering waits
	// before another replica takes it (default 30s).
	AckWait time.Duration
	// ConnectTimeout bounds Open's wait for the servers (default 10s).
	ConnectTimeout time.Duration
	// PublishTimeout bounds the wait for publish acks (default 5s).
	PublishTimeout time.Duration
	Log            *slog.Logger
}

// Queue is the shared queue of one replica.
type Queue struct {
	opts Options
	log  *slog.Logger
	nc   *nats.Conn
	js   jetstream.JetStream
	work jetstream.Stream
	dlq  jetstream.Stream
	seen jetstream.KeyValue
	// keyTTL is set when the servers keep a TTL per key (2.11 and later);
	// otherwise the bucket's own TTL is the dedup horizon.
	keyTTL bool
	// maxPayload is the servers' limit on one message.
	maxPayload int64

	names   names
	closing chan struct{}
	closed  atomic.Bool
	wg      sync.WaitGroup

	mu       sync.Mutex // guards what follows; never held across I/O
	pumps    map[string]*pump
	conc     map[string]int // sink -> concurrency, as configured
	inflight map[*router.Delivery]*held
	stats    statsCache

	probeErr atomic.Pointer[error] // last readiness probe failure; nil when fine
}

// names are the subjects and names derived from the stream name.
type names struct {
	stream, dlq, bucket string
}

func (n names) subject(sink string) string     { return n.stream + ".d." + sink }
func (n names) deadSubject(sink string) string { return n.stream + ".dlq." + sink }
func (n names) seenSubject(key string) string  { return "$KV." + n.bucket + "." + key }

// Open connects to the servers, creates or updates the streams, the
// consumers' bucket of ids, and starts the readiness probe and the
// dead-letter sweeper.
func Open(opts Options) (*Queue, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Stream == "" {
		opts.Stream = "SWITCHBOARD"
	}
	opts.Replicas = max(opts.Replicas, 1)
	if opts.AckWait <= 0 {
		opts.AckWait = 30 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = 5 * time.Second
	}
	q := &Queue{opts: opts, log: opts.Log, closing: make(chan struct{}),
		names: names{stream: opts.Stream, dlq: opts.Stream + "_DLQ", bucket: opts.Stream + "_SEEN"},
		pumps: map[string]*pump{}, conc: map[string]int{}, inflight: map[*router.Delivery]*held{}}
	if err := q.connect(); err != nil {
		return nil, err
	}
	if err := q.setUpInTime(); err != nil {
		q.nc.Close()
		return nil, err
	}
	q.wg.Add(2)
	go q.probe()
	go q.sweepDeadLetters()
	return q, nil
}

func (q *Queue) connect() error {
	o := []nats.Option{
		nats.Name("switchboard"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// A publish while disconnected fails at once (503) instead of
		// waiting in a buffer for a server that may not come back.
		nats.ReconnectBufSize(-1),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if !q.closed.Load() {
				q.log.Warn("lost the connection to NATS; webhooks answer 503 until it is back", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			q.log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
	}
	if f := q.opts.CredentialsFile; f != "" {
		o = append(o, nats.UserCredentials(f))
	}
	if f := q.opts.NKeyFile; f != "" {
		opt, err := nats.NkeyOptionFromSeed(f)
		if err != nil {
			return fmt.Errorf("queue.nats.nkey_file %s: %w", f, err)
		}
		o = append(o, opt)
	}
	if f := q.opts.TokenFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("queue.nats.token_file: %w", err)
		}
		o = append(o, nats.Token(strings.TrimRight(string(b), "\r\n")))
	}
	if f := q.opts.CAFile; f != "" {
		o = append(o, nats.RootCAs(f))
	}
	if q.opts.CertFile != "" {
		o = append(o, nats.ClientCert(q.opts.CertFile, q.opts.KeyFile))
	}
	if q.opts.CAFile != "" || q.opts.CertFile != "" {
		o = append(o, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	// The servers may be starting too (a pod and its NATS cluster brought
	// up together): try until ConnectTimeout.
	deadline := time.Now().Add(q.opts.ConnectTimeout)
	for {
		nc, err := nats.Connect(q.opts.URL, o...)
		if err == nil {
			q.nc = nc
			q.maxPayload = nc.MaxPayload()
			return nil
		}
		if time.Now().After(deadline) || errors.Is(err, nats.ErrAuthorization) || strings.Contains(err.Error(), "tls") {
			return fmt.Errorf("cannot connect to NATS at %s (queue.nats.url): %w", RedactURL(q.opts.URL), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// RedactURL returns a server list as queue.nats.url takes it with any
// user and password in it replaced, so that it can be logged.
func RedactURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = url.User("<secret>")
			p = strings.Replace(u.String(), url.PathEscape("<secret>"), "<secret>", 1)
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// setUpInTime runs setUp until it succeeds or ConnectTimeout passes: a
// cluster that is starting too answers "no suitable peers" or nothing
// until its servers have found each other.
func (q *Queue) setUpInTime() error {
	deadline := time.Now().Add(q.opts.ConnectTimeout)
	for bound := time.Second; ; bound = min(2*bound, 5*time.Second) {
		// Each try has its own bound, short at first: a request lost in a
		// leader change, or sent to a server of a new cluster that does
		// not serve JetStream yet, goes unanswered, and must not use up
		// the whole wait. Every step can be made again.
		try := time.Now().Add(bound)
		if try.After(deadline) {
			try = deadline
		}
		ctx, cancel := context.WithDeadline(context.Background(), try)
		err := q.setUp(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().Add(500 * time.Millisecond).After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// setUp creates the work stream, the dead-letter stream and the bucket of
// ids, or brings existing ones to the configured limits.
func (q *Queue) setUp(ctx context.Context) error {
	js, err := jetstream.New(q.nc,
		jetstream.WithPublishAsyncMaxPending(8192),
		jetstream.WithPublishAsyncTimeout(q.opts.PublishTimeout))
	if err != nil {
		return err
	}
	q.js = js
	var perSink int64 = -1
	if q.opts.MaxPendingPerSink > 0 {
		perSink = int64(q.opts.MaxPendingPerSink)
	}
	maxBytes := q.opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	q.work, err = q.ensureStream(ctx, jetstream.StreamConfig{
		Name:        q.names.stream,
		Description: "switchboard: deliveries waiting for their sinks (subjects STREAM.d.<sink>)",
		Subjects:    []string{q.names.stream + ".d.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    q.opts.Replicas,
		MaxBytes:    maxBytes,
		Discard:     jetstream.DiscardNew,
		// Per sink: past it the publish fails and the delivery becomes a
		// dead letter, decided by the stream for every replica at once.
		MaxMsgsPerSubject:    perSink,
		DiscardNewPerSubject: perSink > 0,
		MaxMsgs:              -1,
		MaxAge:               0,
		Duplicates:           duplicateWindow(q.opts.DedupWindow),
		AllowDirect:          true,
	})
	if err != nil {
		return err
	}
	q.dlq, err = q.ensureStream(ctx, jetstream.StreamConfig{
		Name:        q.names.dlq,
		Description: "switchboard: dead letters (subjects STREAM.dlq.<sink>)",
		Subjects:    []string{q.names.stream + ".dlq.>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    q.opts.Replicas,
		// The limits are enforced by switchboard, which logs and counts
		// each dead letter it drops; the stream itself drops nothing.
		MaxBytes:    -1,
		MaxMsgs:     -1,
		Discard:     jetstream.DiscardOld,
		Duplicates:  2 * time.Minute,
		AllowDirect: true,
	})
	if err != nil {
		return err
	}
	if q.opts.DedupWindow > 0 {
		if err := q.ensureBucket(ctx); err != nil {
			return err
		}
		// A bucket just created on a cluster answers reads only once its
		// replicas run: until then every lookup is "no responders", and
		// every request would be answered 503. Ready means readable.
		if _, err := q.seen.Get(ctx, "probe"); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("JetStream key-value bucket %s does not answer yet: %w", q.names.bucket, err)
		}
	}
	return nil
}

// duplicateWindow is how long the stream remembers message ids. It covers
// two replicas taking the same retry at once and a request answered 503
// after some of its messages were stored; the bucket of ids covers the
// rest of the horizon. Capped, because the servers keep every id of the
// window in memory (about 100 bytes each).
func duplicateWindow(dedup time.Duration) time.Duration {
	const limit = 10 * time.Minute
	if dedup <= 0 || dedup > limit {
		return limit
	}
	return max(dedup, time.Second)
}

// ensureStream creates the stream, or brings an existing one to cfg.
// A stream that already has these settings (every replica but the first
// to start) is used as it is: an update request that races another
// replica's creation of the same stream can go unanswered until the
// request times out, and would change nothing anyway.
func (q *Queue) ensureStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := q.js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = q.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another replica created it meanwhile, with other settings.
			s, err = q.js.Stream(ctx, cfg.Name)
		}
	}
	if err == nil {
		old := s.CachedInfo().Config
		if sameStream(old, cfg) {
			return s, nil
		}
		// Every replica brings the stream to its own settings: say so when
		// that changes what others set, since replicas should agree.
		if old.Replicas != cfg.Replicas || old.MaxBytes != cfg.MaxBytes || limit(old.MaxMsgsPerSubject) != limit(cfg.MaxMsgsPerSubject) {
			q.log.Warn("changing the settings of an existing JetStream stream to this replica's; give every replica the same queue settings",
				"stream", cfg.Name, "replicas", fmt.Sprintf("%d -> %d", old.Replicas, cfg.Replicas),
				"max_bytes", fmt.Sprintf("%d -> %d", old.MaxBytes, cfg.MaxBytes),
				"max_msgs_per_subject", fmt.Sprintf("%d -> %d", limit(old.MaxMsgsPerSubject), limit(cfg.MaxMsgsPerSubject)))
		}
		s, err = q.js.UpdateStream(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot create or update JetStream stream %s on %s: %w (check that JetStream is enabled, that the account may create streams, and that an existing stream of that name was made by switchboard)",
			cfg.Name, RedactURL(q.opts.URL), err)
	}
	return s, nil
}

// limit is a stream limit as the servers store it: 0 (unset) is -1.
func limit(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// sameStream reports whether a stream configured as have already has
// every setting of want that switchboard sets.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) &&
		have.Description == want.Description &&
		have.Retention == want.Retention &&
		have.Storage == want.Storage &&
		have.Replicas == want.Replicas &&
		have.Discard == want.Discard &&
		have.DiscardNewPerSubject == want.DiscardNewPerSubject &&
		have.AllowDirect == want.AllowDirect &&
		have.MaxAge == want.MaxAge &&
		have.Duplicates == want.Duplicates &&
		limit(have.MaxBytes) == limit(want.MaxBytes) &&
		limit(have.MaxMsgs) == limit(want.MaxMsgs) &&
		limit(have.MaxMsgsPerSubject) == limit(want.MaxMsgsPerSubject)
}

// ensureBucket opens the bucket of accepted ids, creating it if needed.
// As with the streams, a bucket that already has these settings is used
// as it is. Servers before 2.11 keep no TTL per key: the bucket then
// forgets every id after the longest horizon configured,
// queue.dedup_window.
func (q *Queue) ensureBucket(ctx context.Context) error {
	cfg := jetstream.KeyValueConfig{
		Bucket:         q.names.bucket,
		Description:    "switchboard: accepted (source, id) pairs, each kept for its source's dedup horizon",
		Storage:        jetstream.FileStorage,
		Replicas:       q.opts.Replicas,
		History:        1,
		LimitMarkerTTL: time.Second,
	}
	kv, err := q.js.KeyValue(ctx, cfg.Bucket)
	if err == nil {
		if st, err := kv.Status(ctx); err == nil && sameBucket(st.Config(), cfg) {
			q.seen, q.keyTTL = kv, true
			return nil
		}
	}
	if err == nil || !errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = q.js.CreateOrUpdateKeyValue(ctx, cfg)
	} else if kv, err = q.js.CreateKeyValue(ctx, cfg); errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = q.js.CreateOrUpdateKeyValue(ctx, cfg)
	}
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		q.log.Warn("the NATS servers keep no TTL per key (before 2.11): every accepted id is remembered for queue.dedup_window, a longer source window is not honoured",
			"dedup_window", q.opts.DedupWindow)
		cfg.LimitMarkerTTL = 0
		cfg.TTL = q.opts.DedupWindow
		kv, err = q.js.CreateOrUpdateKeyValue(ctx, cfg)
	} else if err == nil {
		q.keyTTL = true
	}
	if err != nil {
		return fmt.Errorf("cannot create or update JetStream key-value bucket %s on %s: %w", cfg.Bucket, RedactURL(q.opts.URL), err)
	}
	q.seen = kv
	return nil
}

// sameBucket reports whether a bucket configured as have already has the
// settings of want that switchboard sets.
func sameBucket(have, want jetstream.KeyValueConfig) bool {
	return have.Description == want.Description && have.Storage == want.Storage &&
		have.Replicas == want.Replicas && have.History == want.History &&
		have.LimitMarkerTTL == want.LimitMarkerTTL && have.TTL == want.TTL
}

// Ready reports why the queue cannot take events now, or nil: /readyz
// answers 503 with it, so that a load balancer sends webhooks to a
// replica that can store them.
func (q *Queue) Ready() error {
	if q.closed.Load() {
		return router.ErrQueueClosed
	}
	if st := q.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("not connected to NATS (%s)", strings.ToLower(st.String()))
	}
	if p := q.probeErr.Load(); p != nil {
		return *p
	}
	return nil
}

// probe asks the work stream's leader for its state every two seconds: a
// connection can be up while the stream has no leader (an election) and
// stores nothing.
func (q *Queue) probe() {
	defer q.wg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	failing := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := q.work.Info(ctx)
		cancel()
		if err != nil && !q.closed.Load() {
			e := fmt.Errorf("JetStream stream %s does not answer: %w", q.names.stream, err)
			q.probeErr.Store(&e)
			if !failing {
				q.log.Warn("the queue's stream does not answer; not ready", "stream", q.names.stream, "err", err)
			}
			failing = true
		} else {
			q.probeErr.Store(nil)
			if failing {
				q.log.Info("the queue's stream answers again; ready", "stream", q.names.stream)
			}
			failing = false
		}
		select {
		case <-q.closing:
			return
		case <-t.C:
		}
	}
}

// Close stops handing out deliveries, gives those held but not yet handed
// out back to the stream, and closes the connection after flushing acks.
// Everything queued stays in the stream.
func (q *Queue) Close() error {
	if q.closed.Swap(true) {
		return nil
	}
	close(q.closing)
	q.mu.Lock()
	pumps := make([]*pump, 0, len(q.pumps))
	for _, p := range q.pumps {
		pumps = append(pumps, p)
	}
	q.pumps = map[string]*pump{}
	q.mu.Unlock()
	// All at once: each may take fetchGrace to give back what it holds.
	for _, p := range pumps {
		p.cancel()
	}
	for _, p := range pumps {
		<-p.done
	}
	q.wg.Wait()
	// Acks and naks are sent without waiting; flush them so that this
	// replica's last deliveries are not made again by another.
	if err := q.nc.FlushTimeout(2 * time.Second); err != nil {
		q.log.Warn("could not flush the last acknowledgements to NATS; those deliveries may be made again", "err", err)
	}
	q.nc.Close()
	return nil
}

var (
	_ router.Queue       = (*Queue)(nil)
	_ router.DeadLetters = (*Queue)(nil)
)
