package logqueue

import (
	"fmt"
	"time"

	"switchboard/router"
)

type opKind uint8

const (
	opEnqueue opKind = iota + 1
	opDone
	opRetry
	opDead
	// opBarrier runs alone, between groups, in the writer: operations
	// that decide from the whole queue's state (replay, purge, moving a
	// removed sink's deliveries) and must see every earlier one applied.
	opBarrier
)

// op is one change for the writer.
type op struct {
	kind opKind
	// fin is closed when the op is finished (written or failed) for
	// those who wait: Enqueue and barriers.
	fin chan struct{}
	err error

	// enqueue
	events []enqEvent
	dels   []enqDelivery
	heads  []byte // encoded event record heads
	keys   []dedupEntry
	need   int64
	now    int64 // unix nanoseconds when queued

	// done, retry, dead
	id       uint64
	sinkName string
	due      int64 // retry: not before; dead: dead at (unix nanoseconds)

	frames []byte // records to append
	at     int    // their offset in the write

	run func() error // barrier
}

type enqEvent struct {
	ev            *router.Event
	batch         int
	first         int // its deliveries in op.dels
	pending       int
	head, headEnd int   // its head in op.heads
	size          int64 // its frame's length
	off, n        int   // its frame in op.frames
}

type enqDelivery struct {
	id   uint64
	sink uint16
	full fullKind // which backlog bound made it a dead letter at once
	size int64    // what it reserved of its sink's share (live ones)
}

// fullKind names the bound past which a new delivery became a dead letter
// at once.
type fullKind uint8

const (
	fullNone  fullKind = iota // queued
	fullCount                 // queue.max_pending_per_sink
	fullShare                 // the sink's share of queue.max_bytes
)

// writerState is the writer goroutine's own.
type writerState struct {
	segSize  int64
	buf      []byte
	held     []*op // ops whose write failed, written first when the disk recovers
	failures int
	failedAt time.Time
	loggedAt time.Time

	dirty      bool // the checkpoint is out of date
	ddp        lane
	ddpExpiry  map[uint64]int64 // newest key expiry per dedup chunk
	ddpStarted time.Time
	dedupSeg   uint64 // every key in segments before this is in the dedup chunks
	dedupOff   int64

	compSeg    uint64 // the segment being compacted, 0 when none
	compOff    int64
	compBroken uint64 // a segment compaction could not finish
	scanBuf    []byte
	touched    []uint16 // sinks whose gauges changed in this write
	full       map[fullKey]*fullNote
}

const (
	maxGroupOps   = 4096
	maxGroupBytes = 8 << 20
	tickEvery     = time.Second
)

// run is the writer goroutine.
func (q *Queue) run() {
	defer close(q.writerDone)
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	var retry *time.Timer
	for {
		var retryC <-chan time.Time
		if retry != nil {
			retryC = retry.C
		}
		var first *op
		select {
		case first = <-q.ops:
		case <-tick.C:
			q.housekeeping(false)
			continue
		case <-retryC:
			retry = nil
			if len(q.w.held) > 0 {
				q.commitGroup(nil)
			} else {
				q.probe()
			}
		case <-q.closing:
			q.drain()
			return
		}
		if first != nil && !q.takeOp(first) {
			// The disk is failing: first was held or refused.
		} else if first != nil {
			q.group(first)
		}
		if q.w.failures > 0 && retry == nil {
			retry = time.NewTimer(time.Until(q.retryAt()))
		}
		if q.w.compSeg != 0 && len(q.ops) == 0 {
			q.compactStep()
		}
	}
}

// takeOp decides what to do with an op while writes fail: ops nobody
// waits for are held for the retry, the others fail at once. It returns
// true when the op is to be written now.
func (q *Queue) takeOp(o *op) bool {
	q.mu.Lock()
	failing := q.st.writeErr != nil && q.now().Before(q.st.retryAt)
	err := q.st.writeErr
	q.mu.Unlock()
	if !failing {
		return true
	}
	q.refuse(o, fmt.Errorf("queue cannot write to disk: %w", err))
	return false
}

// refuse ends an op that cannot be written now.
func (q *Queue) refuse(o *op, err error) {
	switch {
	case o.kind == opEnqueue:
		o.err = err
		q.unreserve(o)
	case o.fin != nil:
		o.err = err
		close(o.fin)
	default:
		q.w.held = append(q.w.held, o)
	}
}

func (q *Queue) retryAt() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.st.retryAt
}

// group collects the ops waiting now into one write, then runs a barrier
// that stopped the collection.
func (q *Queue) group(first *op) {
	if first.kind == opBarrier {
		q.commitGroup(nil)
		q.barrier(first)
		return
	}
	group := []*op{first}
	size := len(first.frames)
	var barrier *op
collect:
	for len(group) < maxGroupOps && size < maxGroupBytes {
		select {
		case o := <-q.ops:
			if o.kind == opBarrier {
				barrier = o
				break collect
			}
			group = append(group, o)
			size += len(o.frames)
		default:
			break collect
		}
	}
	q.commitGroup(group)
	if barrier != nil {
		q.barrier(barrier)
	}
}

func (q *Queue) barrier(o *op) {
	if !q.takeOp(o) {
		return
	}
	o.err = o.run()
	close(o.fin)
}

// commitGroup writes the held ops and group as one append: fsynced when
// it holds an event, so that Enqueue returns only for events on disk.
// Memory changes only once the write succeeded.
func (q *Queue) commitGroup(group []*op) {
	if len(q.w.held) > 0 {
		group = append(q.w.held, group...)
		q.w.held = nil
	}
	if len(group) == 0 {
		return
	}
	buf := q.w.buf[:0]
	var doneIDs []uint64
	sync := false
	for _, o := range group {
		switch o.kind {
		case opEnqueue:
			sync = true
			fallthrough
		case opRetry, opDead:
			o.at = len(buf)
			buf = append(buf, o.frames...)
		case opDone:
			doneIDs = append(doneIDs, o.id)
		}
	}
	if len(doneIDs) > 0 {
		b, start := beginFrame(buf, recDone)
		buf = endFrame(appendIDs(b, doneIDs), start)
	}
	q.w.buf = buf[:0]
	if cap(q.w.buf) > 4*maxGroupBytes {
		q.w.buf = nil
	}
	seg, base, err := q.write(buf, sync)
	if err != nil {
		for _, o := range group {
			q.refuse(o, fmt.Errorf("queue cannot write to disk: %w", err))
		}
		return
	}
	q.mu.Lock()
	for _, o := range group {
		switch o.kind {
		case opEnqueue:
			q.applyEnqueue(o, seg, base)
		case opDone:
			q.applyDone(o)
		case opRetry:
			q.applyRetry(o, loc{seg, uint32(base) + uint32(o.at)}, len(o.frames))
		case opDead:
			q.applyDead(o, loc{seg, uint32(base) + uint32(o.at)}, len(o.frames))
		}
	}
	q.publish()
	q.mu.Unlock()
	for _, o := range group {
		if o.kind == opEnqueue {
			close(o.fin)
		}
	}
	q.logFull(false)
}

// write appends buf to the log, starting a new segment first when the head
// is full, and fsyncs when asked. It returns where buf starts. A failure is
// logged, counted and remembered (Ready, Enqueue) until a write succeeds.
func (q *Queue) write(buf []byte, sync bool) (uint32, int64, error) {
	if len(buf) == 0 && !sync {
		return uint32(q.seg.last), q.seg.size, nil
	}
	if q.seg.size > headerSize && q.seg.size+int64(len(buf)) > q.w.segSize {
		if err := q.rollSegment(); err != nil {
			return 0, 0, q.writeFailed(err)
		}
	}
	crc := q.seg.crc
	off, err := q.seg.append(buf)
	if err == nil && sync {
		if err = q.seg.sync(); err != nil {
			// What the failed fsync covered is in doubt: take it back and
			// write it again later.
			q.seg.size, q.seg.crc = off, crc
			if q.seg.head.Truncate(off) != nil {
				q.seg.dirty = true
			}
		}
	}
	if err != nil {
		return 0, 0, q.writeFailed(err)
	}
	q.w.dirty = true
	if sync {
		// Only a write that reached the disk proves the disk works again.
		q.writeOK()
	}
	return uint32(q.seg.last), off, nil
}

// probe tries, while writes fail and nothing waits to be written, whether
// the disk takes writes again: by saving the checkpoint.
func (q *Queue) probe() {
	q.w.dirty = true
	if err := q.checkpoint(); err != nil {
		q.writeFailed(err)
		return
	}
	q.writeOK()
}

// rollSegment seals the head and starts the next segment.
func (q *Queue) rollSegment() error {
	sealed := q.seg.size
	if err := q.seg.roll(); err != nil {
		return err
	}
	q.mu.Lock()
	if sf := q.seg.files[q.seg.last-1]; sf != nil {
		sf.size = sealed
	}
	q.seg.files[q.seg.last] = &segFile{f: q.seg.head}
	q.mu.Unlock()
	q.w.dirty = true
	return q.checkpoint()
}

// writeFailed records a failed write: counted every time, logged at error
// when a run of failures starts and then at most every 30 s.
func (q *Queue) writeFailed(err error) error {
	now := q.now()
	if m := q.opts.Metrics; m != nil && m.WriteErrors != nil {
		m.WriteErrors.Inc()
	}
	q.w.failures++
	if q.w.failures == 1 {
		q.w.failedAt = now
	}
	backoff := min(50*time.Millisecond<<min(q.w.failures-1, 10), 2*time.Second)
	q.mu.Lock()
	q.st.writeErr = err
	q.st.retryAt = now.Add(backoff)
	q.mu.Unlock()
	if q.w.failures == 1 || now.Sub(q.w.loggedAt) >= 30*time.Second {
		q.w.loggedAt = now
		q.log.Error("queue cannot write to disk; new events are refused (503) and deliveries' outcomes are kept in memory until it can",
			"dir", q.dir, "err", err, "failed_writes", q.w.failures, "since", q.w.failedAt.Format(time.RFC3339))
	}
	return err
}

func (q *Queue) writeOK() {
	if q.w.failures == 0 {
		return
	}
	q.log.Warn("queue writes to disk again; events are accepted", "dir", q.dir,
		"failed_writes", q.w.failures, "for", q.now().Sub(q.w.failedAt).Round(time.Millisecond))
	q.w.failures = 0
	q.mu.Lock()
	q.st.writeErr = nil
	q.mu.Unlock()
}

// drain writes what was submitted before Close, then saves the checkpoint
// and closes the files.
func (q *Queue) drain() {
	var group []*op
	for done := false; !done; {
		select {
		case o := <-q.ops:
			if o.kind == opBarrier {
				q.commitGroup(group)
				group = nil
				o.err = router.ErrQueueClosed
				close(o.fin)
				continue
			}
			group = append(group, o)
		default:
			done = true
		}
	}
	q.commitGroup(group)
	q.commitGroup(nil)
	if n := len(q.w.held); n > 0 {
		q.log.Error("queue closed with delivery outcomes it could not write; those deliveries are made again after restart",
			"count", n, "err", q.st.writeErr)
	}
	q.housekeeping(true)
	q.mu.Lock()
	q.seg.closeAll()
	q.mu.Unlock()
	q.w.ddp.closeAll()
}
