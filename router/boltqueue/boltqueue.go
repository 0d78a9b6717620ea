// Package boltqueue is switchboard's durable queue: a router.Queue stored
// in one bbolt file under queue.dir.
//
// What is written when: Enqueue writes the event record, its per-sink
// delivery entries and the dedup key in one transaction and returns only
// after that transaction is fsynced, so a source answers 2xx only for
// events on disk. Concurrent Enqueue calls share one transaction and one
// fsync (group commit): a single writer goroutine takes every operation
// waiting when it starts a commit. Done, Retry and Dead are written by the
// same writer in the next commit without waiting for it, so a crash can
// lose an acknowledgement, never an event: the delivery is then attempted
// again after restart (at-least-once; a duplicate only for deliveries in
// flight at the crash).
//
// Scheduling state (which delivery is due when) is kept in memory as a
// small index of sequence numbers, rebuilt from the file at start; events
// are read from the file when their delivery is due, so a sink that is down
// for hours grows a backlog on disk, not in memory.
package boltqueue

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"switchboard/router"
)

var (
	bucketEvents  = []byte("events")
	bucketRefs    = []byte("refs")
	bucketPending = []byte("pending")
	bucketDead    = []byte("dead")
	bucketDedup   = []byte("dedup")
)

// Options configure a queue.
type Options struct {
	// Dir holds the queue file, queue.db.
	Dir string
	// MaxBytes bounds the stored event records; Enqueue past it fails
	// with router.ErrQueueFull (sources answer 503). 0 means no bound.
	MaxBytes int64
	// MaxPendingPerSink bounds one sink's backlog: past it, new deliveries
	// to that sink go straight to the dead-letter queue (the event kept,
	// replayable), so that a sink down for hours cannot fill the queue and
	// make every source answer 503. 0 means no bound.
	MaxPendingPerSink int
	// DedupWindow is how long an accepted (source, id) is remembered so
	// that a provider's retry is not routed again. 0 turns dedup off.
	DedupWindow time.Duration
	Log         *slog.Logger
}

// Queue is the durable queue. Open one per directory; the file is locked.
type Queue struct {
	db   *bolt.DB
	opts Options
	log  *slog.Logger

	ops        chan *op
	closing    chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once

	mu     sync.Mutex // guards the index below; never held across I/O
	sinks  map[string]*sinkIndex
	bytes  int64 // size of stored event records
	closed bool

	lastSweep time.Time // writer goroutine only
}

type sinkIndex struct {
	ready    []uint64
	delayed  delayHeap
	inFlight int
	dead     int
	wake     chan struct{}
}

// op is one operation for the writer: apply runs inside the shared write
// transaction and must not write anything when it returns a soft error;
// after runs once the transaction is committed (or failed), with its error.
type op struct {
	apply func(tx *bolt.Tx, w *writeBatch) error
	after func(err error)
	done  chan error // nil for operations nobody waits for
}

// writeBatch is what the ops of one transaction share.
type writeBatch struct {
	bytesDelta int64
	now        time.Time
	queued     map[string]int // deliveries added per sink, not yet in the index
}

// Open opens (creating if needed) the queue in opts.Dir and rebuilds the
// schedule of pending deliveries.
func Open(opts Options) (*Queue, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("queue.dir %s: %w", opts.Dir, err)
	}
	path := filepath.Join(opts.Dir, "queue.db")
	db, err := bolt.Open(path, 0o640, &bolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true,
		// Grow the file in large steps: fewer remaps, and fdatasync
		// rarely has to flush a size change.
		InitialMmapSize: 64 << 20,
		FreelistType:    bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("queue %s is in use by another switchboard process (one daemon per queue.dir)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open queue %s: %w", path, err)
	}
	db.AllocSize = 16 << 20
	q := &Queue{db: db, opts: opts, log: opts.Log, ops: make(chan *op, 4096),
		closing: make(chan struct{}), writerDone: make(chan struct{}), sinks: map[string]*sinkIndex{}}
	if err := q.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("read queue %s: %w", path, err)
	}
	go q.writer()
	return q, nil
}

// load creates the buckets and rebuilds the in-memory schedule.
func (q *Queue) load() error {
	now := time.Now()
	return q.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEvents, bucketRefs, bucketPending, bucketDead, bucketDedup} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
			q.bytes += int64(len(v))
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			sink, seq, ok := splitPendingKey(k)
			st, err := decodeState(v, false)
			if !ok || err != nil {
				q.log.Error("skipping a corrupt queue entry", "key", fmt.Sprintf("%x", k))
				return nil
			}
			s := q.sink(sink)
			if st.notBefore.After(now) {
				heap.Push(&s.delayed, entry{seq: seq, at: st.notBefore})
			} else {
				s.ready = append(s.ready, seq)
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketDead).ForEach(func(k, v []byte) error {
			if st, err := decodeState(v, true); err == nil {
				q.sink(st.sink).dead++
			}
			return nil
		})
	})
}

func (q *Queue) sink(name string) *sinkIndex {
	s := q.sinks[name]
	if s == nil {
		s = &sinkIndex{wake: make(chan struct{}, 1)}
		q.sinks[name] = s
	}
	return s
}

func (s *sinkIndex) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// writer commits operations in groups: everything waiting when a commit
// starts shares it, so under load many requests pay for one fsync.
func (q *Queue) writer() {
	defer close(q.writerDone)
	const maxGroup = 2048
	group := make([]*op, 0, maxGroup)
	for {
		var first *op
		select {
		case first = <-q.ops:
		case <-q.closing:
			// Drain what was submitted before Close.
			for {
				select {
				case first = <-q.ops:
					q.commit(append(group[:0], first))
					continue
				default:
				}
				return
			}
		}
		group = append(group[:0], first)
	fill:
		for len(group) < maxGroup {
			select {
			case o := <-q.ops:
				group = append(group, o)
			default:
				break fill
			}
		}
		q.commit(group)
	}
}

func (q *Queue) commit(group []*op) {
	w := &writeBatch{now: time.Now(), queued: map[string]int{}}
	soft := make([]error, len(group))
	err := q.db.Update(func(tx *bolt.Tx) error {
		for i, o := range group {
			if e := o.apply(tx, w); e != nil {
				var hard hardError
				if errors.As(e, &hard) {
					return hard.err
				}
				soft[i] = e
			}
		}
		return q.sweepDedup(tx, w.now)
	})
	if err == nil {
		q.mu.Lock()
		q.bytes += w.bytesDelta
		q.mu.Unlock()
	}
	for i, o := range group {
		e := err
		if e == nil {
			e = soft[i]
		}
		if o.after != nil {
			o.after(e)
		}
		if o.done != nil {
			o.done <- e
		}
	}
}

// hardError aborts the whole transaction (a disk or database failure);
// other errors only fail their own operation.
type hardError struct{ err error }

func (h hardError) Error() string { return h.err.Error() }

func hard(err error) error {
	if err == nil {
		return nil
	}
	return hardError{err}
}

// submit hands an operation to the writer and, when wait is set, waits for
// its commit.
func (q *Queue) submit(ctx context.Context, o *op, wait bool) error {
	if wait {
		o.done = make(chan error, 1)
	}
	q.mu.Lock()
	closed := q.closed
	q.mu.Unlock()
	if closed {
		return router.ErrQueueClosed
	}
	select {
	case q.ops <- o:
	case <-q.closing:
		return router.ErrQueueClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	if !wait {
		return nil
	}
	// The commit happens whatever the caller does now; wait for it so the
	// answer is true.
	return <-o.done
}

// Enqueue implements router.Queue.
func (q *Queue) Enqueue(ctx context.Context, batch []router.Routed) error {
	// An event routed nowhere has nothing to lose and nothing to deliver
	// twice: nothing is written for it, and it costs no fsync. (Its retry
	// is routed again, to the same no sinks.)
	if !slices.ContainsFunc(batch, func(r router.Routed) bool { return len(r.Sinks) > 0 }) {
		return nil
	}
	type prepared struct {
		rec  []byte
		size int64
	}
	prep := make([]prepared, len(batch))
	for i, r := range batch {
		if len(r.Sinks) == 0 {
			continue
		}
		rec, err := encodeEvent(r.Event)
		if err != nil {
			return fmt.Errorf("encode event %s: %w", r.Event.ID, err)
		}
		prep[i] = prepared{rec: rec, size: int64(len(rec))}
	}
	type queued struct {
		sink string
		seq  uint64
	}
	var added, overflow []queued
	dups := make([]bool, len(batch))
	o := &op{}
	o.apply = func(tx *bolt.Tx, w *writeBatch) error {
		added, overflow = added[:0], overflow[:0]
		var need int64
		for i, r := range batch {
			if len(r.Sinks) == 0 {
				continue
			}
			if q.seen(tx, r.Event.Source, r.Event.ID, w.now) {
				dups[i] = true
				continue
			}
			need += prep[i].size
		}
		if q.opts.MaxBytes > 0 && need > 0 {
			q.mu.Lock()
			used := q.bytes
			q.mu.Unlock()
			if used+w.bytesDelta+need > q.opts.MaxBytes {
				return router.ErrQueueFull
			}
		}
		events, refs, pending, dead := tx.Bucket(bucketEvents), tx.Bucket(bucketRefs), tx.Bucket(bucketPending), tx.Bucket(bucketDead)
		backlog := q.backlogs()
		for i, r := range batch {
			if dups[i] || len(r.Sinks) == 0 {
				continue
			}
			if err := q.remember(tx, r.Event.Source, r.Event.ID, w.now); err != nil {
				return hard(err)
			}
			eseq, err := events.NextSequence()
			if err != nil {
				return hard(err)
			}
			if err := events.Put(seqKey(eseq), prep[i].rec); err != nil {
				return hard(err)
			}
			if err := refs.Put(seqKey(eseq), seqKey(uint64(len(r.Sinks)))); err != nil {
				return hard(err)
			}
			w.bytesDelta += prep[i].size
			st := state{event: eseq, queued: w.now}
			for _, sink := range r.Sinks {
				dseq, err := pending.NextSequence()
				if err != nil {
					return hard(err)
				}
				if limit := q.opts.MaxPendingPerSink; limit > 0 && backlog[sink]+w.queued[sink] >= limit {
					full := state{event: eseq, queued: w.now, sink: sink, deadAt: w.now,
						lastError: fmt.Sprintf("backlog full: %d deliveries were already queued for this sink (queue.max_pending_per_sink)", limit)}
					if err := dead.Put(seqKey(dseq), full.encode(true)); err != nil {
						return hard(err)
					}
					overflow = append(overflow, queued{sink, dseq})
					continue
				}
				if err := pending.Put(pendingKey(sink, dseq), st.encode(false)); err != nil {
					return hard(err)
				}
				w.queued[sink]++
				added = append(added, queued{sink, dseq})
			}
		}
		return nil
	}
	o.after = func(err error) {
		if err != nil {
			return
		}
		for i := range batch { // the caller is blocked until after returns
			batch[i].Duplicate = dups[i]
		}
		q.mu.Lock()
		for _, a := range added {
			s := q.sink(a.sink)
			s.ready = append(s.ready, a.seq)
			s.signal()
		}
		full := map[string]int{}
		for _, a := range overflow {
			q.sink(a.sink).dead++
			full[a.sink]++
		}
		q.mu.Unlock()
		for sink, n := range full {
			q.log.Warn("sink backlog full: new deliveries go straight to the dead-letter queue until it drains",
				"sink", sink, "count", n, "max_pending_per_sink", q.opts.MaxPendingPerSink)
		}
	}
	return q.submit(ctx, o, true)
}

// backlogs returns each sink's deliveries queued or in flight.
func (q *Queue) backlogs() map[string]int {
	if q.opts.MaxPendingPerSink <= 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]int, len(q.sinks))
	for name, s := range q.sinks {
		out[name] = len(s.ready) + len(s.delayed) + s.inFlight
	}
	return out
}

// Next implements router.Queue.
func (q *Queue) Next(ctx context.Context, sink string) (*router.Delivery, error) {
	for {
		seq, wake, wait, err := q.take(sink)
		if err != nil {
			return nil, err
		}
		if seq != 0 {
			d, err := q.read(sink, seq)
			if err == nil {
				return d, nil
			}
			q.release(sink)
			if !errors.Is(err, errGone) {
				q.log.Error("queued delivery is unreadable; skipping it", "sink", sink, "seq", seq, "err", err)
			}
			continue
		}
		var timer *time.Timer
		var due <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			due = timer.C
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-q.closing:
			err = router.ErrQueueClosed
		case <-wake:
		case <-due:
		}
		if timer != nil {
			timer.Stop()
		}
		if err != nil {
			return nil, err
		}
	}
}

// take pops the next due delivery of sink, or says how long to wait.
func (q *Queue) take(sink string) (seq uint64, wake chan struct{}, wait time.Duration, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, nil, 0, router.ErrQueueClosed
	}
	s := q.sink(sink)
	now := time.Now()
	for len(s.delayed) > 0 && !s.delayed[0].at.After(now) {
		s.ready = append(s.ready, heap.Pop(&s.delayed).(entry).seq)
	}
	if len(s.ready) > 0 {
		seq = s.ready[0]
		s.ready = s.ready[1:]
		s.inFlight++
		if len(s.ready) > 0 {
			s.signal()
		}
		return seq, nil, 0, nil
	}
	if len(s.delayed) > 0 {
		wait = s.delayed[0].at.Sub(now)
	}
	return 0, s.wake, wait, nil
}

func (q *Queue) release(sink string) {
	q.mu.Lock()
	q.sink(sink).inFlight--
	q.mu.Unlock()
}

var errGone = errors.New("delivery no longer queued")

// read loads a delivery and its event from the file.
func (q *Queue) read(sink string, seq uint64) (*router.Delivery, error) {
	var d *router.Delivery
	err := q.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPending).Get(pendingKey(sink, seq))
		if v == nil {
			return errGone
		}
		st, err := decodeState(v, false)
		if err != nil {
			return err
		}
		rec := tx.Bucket(bucketEvents).Get(seqKey(st.event))
		if rec == nil {
			return fmt.Errorf("event record %d is missing", st.event)
		}
		ev, err := decodeEvent(rec)
		if err != nil {
			return err
		}
		d = &router.Delivery{ID: strconv.FormatUint(seq, 10), Sink: sink, Event: ev, Attempts: st.attempts,
			FirstTry: st.firstTry, LastTry: st.lastTry, NotBefore: st.notBefore, LastError: st.lastError}
		return nil
	})
	return d, err
}

func deliverySeq(d *router.Delivery) uint64 {
	seq, _ := strconv.ParseUint(d.ID, 10, 64)
	return seq
}

// Done implements router.Queue: the delivery and, with its last delivery,
// the event are deleted in the next commit.
func (q *Queue) Done(d *router.Delivery) error {
	seq := deliverySeq(d)
	q.release(d.Sink)
	return q.submit(context.Background(), &op{apply: func(tx *bolt.Tx, w *writeBatch) error {
		pending := tx.Bucket(bucketPending)
		key := pendingKey(d.Sink, seq)
		v := pending.Get(key)
		if v == nil {
			return nil
		}
		st, err := decodeState(v, false)
		if err != nil {
			return err
		}
		if err := pending.Delete(key); err != nil {
			return hard(err)
		}
		return hard(q.unref(tx, w, st.event))
	}}, false)
}

// unref drops one reference to an event record, deleting it with the last.
func (q *Queue) unref(tx *bolt.Tx, w *writeBatch, event uint64) error {
	refs := tx.Bucket(bucketRefs)
	k := seqKey(event)
	v := refs.Get(k)
	n := uint64(0)
	if len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	if n > 1 {
		return refs.Put(k, seqKey(n-1))
	}
	events := tx.Bucket(bucketEvents)
	w.bytesDelta -= int64(len(events.Get(k)))
	if err := events.Delete(k); err != nil {
		return err
	}
	return refs.Delete(k)
}

// Retry implements router.Queue.
func (q *Queue) Retry(d *router.Delivery) error {
	seq := deliverySeq(d)
	// The delivery goes back on the schedule only once its new state is
	// written: a retry due at once must be read with its attempts so far.
	// One dead-lettered meanwhile (its sink was removed) is not put back.
	gone := false
	reschedule := func(err error) {
		q.mu.Lock()
		s := q.sink(d.Sink)
		s.inFlight--
		if err != nil || !gone {
			heap.Push(&s.delayed, entry{seq: seq, at: d.NotBefore})
			s.signal()
		}
		q.mu.Unlock()
	}
	return q.submit(context.Background(), &op{after: reschedule, apply: func(tx *bolt.Tx, w *writeBatch) error {
		pending := tx.Bucket(bucketPending)
		key := pendingKey(d.Sink, seq)
		v := pending.Get(key)
		if v == nil {
			gone = true
			return nil
		}
		st, err := decodeState(v, false)
		if err != nil {
			return err
		}
		st.attempts, st.firstTry, st.lastTry, st.notBefore, st.lastError = d.Attempts, d.FirstTry, d.LastTry, d.NotBefore, d.LastError
		return hard(pending.Put(key, st.encode(false)))
	}}, false)
}

// Dead implements router.Queue.
func (q *Queue) Dead(d *router.Delivery) error {
	seq := deliverySeq(d)
	q.mu.Lock()
	s := q.sink(d.Sink)
	s.inFlight--
	s.dead++
	q.mu.Unlock()
	return q.submit(context.Background(), &op{apply: func(tx *bolt.Tx, w *writeBatch) error {
		return q.bury(tx, d.Sink, seq, d, w.now)
	}}, false)
}

// bury moves one pending delivery to the dead letters.
func (q *Queue) bury(tx *bolt.Tx, sink string, seq uint64, d *router.Delivery, now time.Time) error {
	pending := tx.Bucket(bucketPending)
	key := pendingKey(sink, seq)
	v := pending.Get(key)
	if v == nil {
		return nil
	}
	st, err := decodeState(v, false)
	if err != nil {
		return err
	}
	if d != nil {
		st.attempts, st.firstTry, st.lastTry, st.lastError = d.Attempts, d.FirstTry, d.LastTry, d.LastError
	}
	st.sink, st.deadAt = sink, now
	if err := pending.Delete(key); err != nil {
		return hard(err)
	}
	return hard(tx.Bucket(bucketDead).Put(seqKey(seq), st.encode(true)))
}

// DeadLetterSinks moves every queued delivery of a sink for which keep
// returns false to the dead letters, with reason as the error: deliveries
// to sinks the config no longer has ("sink removed").
func (q *Queue) DeadLetterSinks(keep func(sink string) bool, reason string) (int, error) {
	type victim struct {
		sink string
		seq  uint64
	}
	var victims []victim
	// The file decides, inside the writer, so that acks and retries
	// submitted before this call are already applied.
	o := &op{apply: func(tx *bolt.Tx, w *writeBatch) error {
		victims = victims[:0]
		c := tx.Bucket(bucketPending).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			sink, seq, ok := splitPendingKey(k)
			if ok && !keep(sink) {
				victims = append(victims, victim{sink, seq})
			}
		}
		for _, v := range victims {
			d := q.deliveryState(tx, v.sink, v.seq)
			if d == nil {
				continue
			}
			d.LastError = reason
			if err := q.bury(tx, v.sink, v.seq, d, w.now); err != nil {
				return err
			}
		}
		return nil
	}}
	o.after = func(err error) {
		if err != nil {
			return
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		gone := map[string]map[uint64]bool{}
		for _, v := range victims {
			if gone[v.sink] == nil {
				gone[v.sink] = map[uint64]bool{}
			}
			gone[v.sink][v.seq] = true
			q.sink(v.sink).dead++
		}
		for name, seqs := range gone {
			s := q.sink(name)
			s.ready = slices.DeleteFunc(s.ready, func(seq uint64) bool { return seqs[seq] })
			s.delayed = slices.DeleteFunc(s.delayed, func(e entry) bool { return seqs[e.seq] })
			heap.Init(&s.delayed)
		}
	}
	err := q.submit(context.Background(), o, true)
	return len(victims), err
}

func (q *Queue) deliveryState(tx *bolt.Tx, sink string, seq uint64) *router.Delivery {
	v := tx.Bucket(bucketPending).Get(pendingKey(sink, seq))
	if v == nil {
		return nil
	}
	st, err := decodeState(v, false)
	if err != nil {
		return nil
	}
	return &router.Delivery{Attempts: st.attempts, FirstTry: st.firstTry, LastTry: st.lastTry, LastError: st.lastError}
}

// Stats returns, per sink, the deliveries queued or in flight and the dead
// letters kept.
func (q *Queue) Stats() map[string][2]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string][2]int, len(q.sinks))
	for name, s := range q.sinks {
		out[name] = [2]int{len(s.ready) + len(s.delayed) + s.inFlight, s.dead}
	}
	return out
}

// OldestPending returns, per sink with deliveries queued, how long the
// oldest of them has been waiting.
func (q *Queue) OldestPending(now time.Time) map[string]time.Duration {
	q.mu.Lock()
	names := make([]string, 0, len(q.sinks))
	for name, s := range q.sinks {
		if len(s.ready)+len(s.delayed)+s.inFlight > 0 {
			names = append(names, name)
		}
	}
	q.mu.Unlock()
	out := make(map[string]time.Duration, len(names))
	q.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPending).Cursor()
		for _, name := range names {
			prefix := append([]byte(name), 0)
			k, v := c.Seek(prefix)
			if k == nil || !bytes.HasPrefix(k, prefix) {
				continue
			}
			if st, err := decodeState(v, false); err == nil && !st.queued.IsZero() {
				out[name] = now.Sub(st.queued)
			}
		}
		return nil
	})
	return out
}

// Idle reports whether no delivery is due or in flight.
func (q *Queue) Idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	for _, s := range q.sinks {
		if len(s.ready) > 0 || s.inFlight > 0 || len(s.delayed) > 0 && !s.delayed[0].at.After(now) {
			return false
		}
	}
	return true
}

// Close implements router.Queue: operations already submitted are
// committed, then the file is closed. Pending deliveries stay on disk.
func (q *Queue) Close() error {
	var err error
	q.closeOnce.Do(func() {
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
		close(q.closing)
		<-q.writerDone
		err = q.db.Close()
	})
	return err
}

type entry struct {
	seq uint64
	at  time.Time
}

type delayHeap []entry

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *delayHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

var _ router.Queue = (*Queue)(nil)
