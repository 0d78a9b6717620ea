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
	// Room for the lists of an Enqueue of one event, in the op's own
	// allocation.
	evInline   [1]enqEvent
	delInline  [2]enqDelivery
	keyInline  [1]dedupEntry
	headInline [96]byte

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

	doneTimer *time.Timer // armed while dones wait for a write
	doneSpare []doneNote  // the dones slice not in use, for reuse
	doneIDs   []uint64    // commitGroup's, reused
}

const (
	maxGroupOps   = 4096
	maxGroupBytes = 8 << 20
	tickEvery     = time.Second
	// doneDelay bounds how long a finished delivery's completion waits
	// for a write to ride along with before it is written alone: under
	// load it rides with the next group commit, costing no write of its
	// own. A crash within it delivers the delivery again (at least once).
	doneDelay = 10 * time.Millisecond
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
		if q.idle() && q.w.doneTimer == nil {
			q.w.doneTimer = time.NewTimer(doneDelay)
		}
		var doneC <-chan time.Time
		if q.w.doneTimer != nil {
			doneC = q.w.doneTimer.C
		}
		var first *op
		select {
		case first = <-q.ops:
		case <-q.doneKick:
			// A Done while idle: its timer is armed at the loop's top.
		case <-doneC:
			q.w.doneTimer = nil
			if q.failingNow() == nil {
				q.commitGroup(nil)
			} else {
				q.holdDones(q.takeDones())
			}
		case <-tick.C:
			q.busy()
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
		q.busy()
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
	err := q.failingNow()
	if err == nil {
		return true
	}
	q.refuse(o, fmt.Errorf("queue cannot write to disk: %w", err))
	return false
}

// failingNow returns the last write error while writes are failing and the
// next retry is not due yet, else nil.
func (q *Queue) failingNow() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.st.writeErr != nil && q.now().Before(q.st.retryAt) {
		return q.st.writeErr
	}
	return nil
}

// idle tells Done that the writer waits for work (so that a Done kicks
// it) and reports whether dones wait to be written.
func (q *Queue) idle() bool {
	q.doneMu.Lock()
	defer q.doneMu.Unlock()
	q.writerIdle = true
	return len(q.dones) > 0
}

// busy tells Done that the writer will look at the dones again before it
// waits: no kick needed.
func (q *Queue) busy() {
	q.doneMu.Lock()
	q.writerIdle = false
	q.doneMu.Unlock()
}

// takeDones returns the dones waiting to be written and stops their
// timer: they are in this write.
func (q *Queue) takeDones() []doneNote {
	q.doneMu.Lock()
	dones := q.dones
	q.dones = q.w.doneSpare[:0]
	q.doneMu.Unlock()
	q.w.doneSpare = nil
	if len(dones) > 0 && q.w.doneTimer != nil {
		q.w.doneTimer.Stop()
		q.w.doneTimer = nil
	}
	return dones
}

// spareDones keeps a taken dones slice for the next takeDones.
func (q *Queue) spareDones(dones []doneNote) {
	clear(dones)
	q.w.doneSpare = dones[:0]
}

// holdDones keeps dones that could not be written for the retry after a
// failed write, as held ops.
func (q *Queue) holdDones(dones []doneNote) {
	for _, d := range dones {
		q.w.held = append(q.w.held, &op{kind: opDone, id: d.id, sinkName: d.sink})
	}
	q.spareDones(dones)
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
	dones := q.takeDones()
	if len(group) == 0 && len(dones) == 0 {
		q.spareDones(dones)
		return
	}
	buf := q.w.buf[:0]
	doneIDs := q.w.doneIDs[:0]
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
	for _, d := range dones {
		doneIDs = append(doneIDs, d.id)
	}
	if len(doneIDs) > 0 {
		b, start := beginFrame(buf, recDone)
		buf = endFrame(appendIDs(b, doneIDs), start)
	}
	q.w.doneIDs = doneIDs[:0]
	q.w.buf = buf[:0]
	if cap(q.w.buf) > 4*maxGroupBytes {
		q.w.buf = nil
	}
	seg, base, err := q.write(buf, sync)
	if err != nil {
		for _, o := range group {
			q.refuse(o, fmt.Errorf("queue cannot write to disk: %w", err))
		}
		q.holdDones(dones)
		return
	}
	q.mu.Lock()
	for _, o := range group {
		switch o.kind {
		case opEnqueue:
			q.applyEnqueue(o, seg, base)
		case opDone:
			q.applyDone(o.id, o.sinkName)
		case opRetry:
			q.applyRetry(o, loc{seg, uint32(base) + uint32(o.at)}, len(o.frames))
		case opDead:
			q.applyDead(o, loc{seg, uint32(base) + uint32(o.at)}, len(o.frames))
		}
	}
	for _, d := range dones {
		q.applyDone(d.id, d.sink)
	}
	q.publish()
	q.mu.Unlock()
	q.spareDones(dones)
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
			if q.seg.cutBack(off) != nil {
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
	q.seg.stopFill()
	q.mu.Lock()
	q.seg.closeAll()
	q.mu.Unlock()
	q.w.ddp.closeAll()
}
