package logqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchboard/router"
)

// Defaults.
const (
	// DefaultSegmentSize is the size at which a segment is sealed and the
	// next one started: large enough that rolling is rare, small enough
	// that deleting the oldest gives space back in useful steps.
	DefaultSegmentSize = 32 << 20
	// DefaultHotBytes bounds the accepted events kept in memory for
	// delivery without a read, counted as stored: parsed, they take a few
	// times that. Enough for the deliveries of several seconds of traffic;
	// a backlog beyond it is read back from disk.
	DefaultHotBytes = 16 << 20
)

// Options configure a queue.
type Options struct {
	// Dir holds the queue's files.
	Dir string
	// MaxBytes bounds the stored bytes of events with deliveries pending;
	// Enqueue past it fails with router.ErrQueueFull (sources answer 503).
	// Dead letters do not count. 0 means no bound. Once SetSinks names two
	// or more sinks, each sink also has its share of it (see SetSinks).
	MaxBytes int64
	// MaxPendingPerSink bounds one sink's backlog: past it, new
	// deliveries to that sink become dead letters ("backlog full"), so
	// that one sink down cannot fill the queue for the others. 0: no bound.
	MaxPendingPerSink int
	// DedupWindow is how long an accepted (source, id) is remembered when
	// the Routed names no horizon of its own. 0: not remembered.
	DedupWindow time.Duration
	// DeadLetterMaxAge and DeadLetterMaxBytes bound the dead letters:
	// past them the oldest are dropped, each logged and counted. 0: none.
	DeadLetterMaxAge   time.Duration
	DeadLetterMaxBytes int64

	Log     *slog.Logger
	Metrics *Metrics
	// FS is the file system; OS when nil.
	FS FS
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// SegmentSize is DefaultSegmentSize when 0.
	SegmentSize int64
	// HotBytes is DefaultHotBytes when 0; negative keeps nothing hot.
	HotBytes int64
}

// Metrics are the collectors the queue keeps current as it changes; nil
// fields are not kept.
type Metrics struct {
	Depth              *prometheus.GaugeVec // by sink: queued or in flight
	DeadLetters        *prometheus.GaugeVec // by sink
	Bytes              prometheus.Gauge     // stored bytes of events with deliveries pending
	MaxBytes           prometheus.Gauge
	WriteErrors        prometheus.Counter
	Unreadable         prometheus.Counter
	DeadLettersDropped *prometheus.CounterVec // by sink
}

// ErrLocked means another process holds the queue directory.
var ErrLocked = errors.New("locked by another process")

// Queue is the durable queue. Open one per directory; the directory is
// locked while it is open.
type Queue struct {
	opts Options
	log  *slog.Logger
	fs   FS
	dir  string
	lock io.Closer
	now  func() time.Time

	// submitMu orders submissions against Close: once closed is set
	// under it, nothing more reaches the writer.
	submitMu   sync.RWMutex
	closed     bool
	ops        chan *op
	closing    chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error

	// dones are finished deliveries whose completion is not written yet:
	// they ride along with the writer's next write (under load, the next
	// group commit) instead of each waking it for a write of its own. A
	// kick wakes an idle writer for the first one, and the writer writes
	// them at the latest doneDelay later. Guarded by doneMu, as is
	// writerIdle, which the writer sets while it waits for work.
	doneMu     sync.Mutex
	dones      []doneNote
	writerIdle bool
	doneKick   chan struct{}

	mu sync.Mutex // guards what follows; never held across I/O
	st state
	// seg's files map is guarded by mu; its other fields are the
	// writer's alone.
	seg lane

	w writerState // the writer goroutine's alone

	// readOnly is set by the offline tools: the files are read, never
	// changed; what a start would change goes into report.
	readOnly bool
	report   *Report
	intern   func([]byte) string // q.internSink, made once
}

// state is the in-memory index, guarded by Queue.mu.
type state struct {
	events  slab[eslot]
	dels    slab[dslot]
	ids     idIndex
	sinks   []*sinkState
	sinkIdx map[string]uint16

	hot      map[uint32]*router.Event
	hotBytes int64

	dedup       dedup
	pendingKeys map[dedupKey]*op // keys of Enqueues not yet committed
	fresh       []dedupEntry     // keys not yet in the dedup chunks

	bytes     int64 // events with deliveries pending
	reserved  int64 // Enqueues not yet committed
	deadBytes int64 // events with dead letters only
	dead      deadList

	// sharedBy is how many sinks the config has (SetSinks): each one's
	// pending deliveries may hold MaxBytes/sharedBy bytes of events.
	sharedBy int

	nextID   uint64
	writeErr error     // the last write failed: the disk is full or failing
	retryAt  time.Time // Enqueue fails fast until then
	closed   bool
}

// sinkState is one sink's schedule.
type sinkState struct {
	name     string
	ready    fifo
	delayed  delay
	inFlight int
	reserved int // Enqueue'd deliveries not yet committed
	// bytes is the stored size of the events this sink has deliveries
	// queued or in flight for, each event counted once per sink that
	// waits for it: what its share of queue.max_bytes bounds.
	// reservedBytes is the same for Enqueues not yet committed.
	bytes, reservedBytes int64
	// settled counts Done and Dead calls whose records are not yet
	// written: Stats shows them as done already, as a worker sees them.
	settled int
	dying   int // of those, Dead calls
	dead    int
	wake    chan struct{}

	depth, deadGauge prometheus.Gauge
}

func (s *sinkState) pending() int { return s.ready.n + len(s.delayed) + s.inFlight }

func (s *sinkState) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// sink returns the index of a sink by name, adding it if new. q.mu held.
func (q *Queue) sink(name string) uint16 {
	if i, ok := q.st.sinkIdx[name]; ok {
		return i
	}
	s := &sinkState{name: name, wake: make(chan struct{}, 1)}
	if m := q.opts.Metrics; m != nil {
		if m.Depth != nil {
			s.depth = m.Depth.WithLabelValues(name)
		}
		if m.DeadLetters != nil {
			s.deadGauge = m.DeadLetters.WithLabelValues(name)
		}
	}
	i := uint16(len(q.st.sinks))
	q.st.sinks = append(q.st.sinks, s)
	q.st.sinkIdx[name] = i
	return i
}

// gauges publishes a sink's counts. q.mu held.
func (s *sinkState) gauges() {
	if s.depth != nil {
		s.depth.Set(float64(s.pending()))
	}
	if s.deadGauge != nil {
		s.deadGauge.Set(float64(s.dead))
	}
}

// horizon is how long r's (source, id) is remembered.
func (q *Queue) horizon(r *router.Routed) time.Duration {
	if r.Remember > 0 {
		return r.Remember
	}
	return q.opts.DedupWindow
}

// Enqueue implements router.Queue: it returns once the deliveries of the
// batch are written and fsynced, or fails without storing any.
func (q *Queue) Enqueue(ctx context.Context, batch []router.Routed) error {
	now := q.now()
	sc := getScratch()
	defer putScratch(sc)
	items, err := q.prepare(batch, now, sc)
	if err != nil {
		return err
	}
	o := &op{kind: opEnqueue, fin: make(chan struct{}), now: now.UnixNano()}
	for {
		wait, err := q.reserve(o, batch, items, now)
		if err != nil {
			return err
		}
		if wait == nil {
			break
		}
		// An earlier Enqueue of the same id is being written: its outcome
		// decides whether this one is a duplicate.
		select {
		case <-wait.fin:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if len(o.events) > 0 {
		sc.frames = frameEvents(o, items, sc.ev, sc.frames[:0])
		o.frames = sc.frames
		if err := q.submit(o); err != nil {
			q.unreserve(o)
			return err
		}
		<-o.fin // the write happens whatever the caller does now
		// The writer copied the frames into its own buffer: sc is reused.
		o.frames = nil
		if o.err != nil {
			return o.err
		}
	}
	for i := range batch {
		batch[i].Duplicate = items[i].dup
	}
	return nil
}

// enqItem is what Enqueue works out for one routed event.
type enqItem struct {
	entry        dedupEntry
	remember     bool
	dup          bool
	evAt, evEnd  int // the encoded event in the scratch's ev
	head, headAt int // its record head in op.heads
}

// prepare encodes the events with deliveries into sc.ev, outside any lock.
func (q *Queue) prepare(batch []router.Routed, now time.Time, sc *enqScratch) ([]enqItem, error) {
	items := make([]enqItem, len(batch))
	size := 0
	for i := range batch {
		if len(batch[i].Sinks) > 0 {
			size += eventSize(batch[i].Event)
		}
	}
	evbuf := slices.Grow(sc.ev[:0], size)
	defer func() { sc.ev = evbuf }()
	for i := range batch {
		r, it := &batch[i], &items[i]
		it.entry, it.remember = entryFor(r.Event.Source, r.Event.ID, q.horizon(r), now)
		it.evAt = len(evbuf)
		if len(r.Sinks) > 0 {
			var err error
			if evbuf, err = appendEvent(evbuf, r.Event); err != nil {
				return nil, fmt.Errorf("event %s cannot be stored: %w", r.Event.ID, err)
			}
		}
		it.evEnd = len(evbuf)
		// Room for the head, however many sinks: a record past this would
		// not read back.
		if it.evEnd-it.evAt > maxFrame-(1<<20) {
			return nil, fmt.Errorf("event %s cannot be stored: %d bytes is more than a queue record holds (1 GiB); lower server.max_body_bytes",
				r.Event.ID, it.evEnd-it.evAt)
		}
	}
	return items, nil
}

// enqScratch are an Enqueue's scratch buffers: the events' encoding (ev)
// lives there only until frameEvents copies it behind its head, and the
// frames only until the writer copies them into its write, so one pair
// serves one Enqueue after another instead of new ones each time.
type enqScratch struct{ ev, frames []byte }

var scratches sync.Pool

func getScratch() *enqScratch {
	if sc, ok := scratches.Get().(*enqScratch); ok {
		return sc
	}
	return new(enqScratch)
}

func putScratch(sc *enqScratch) {
	// Keep no giant in the pool.
	if cap(sc.ev) > 1<<20 {
		sc.ev = nil
	}
	if cap(sc.frames) > 1<<20 {
		sc.frames = nil
	}
	scratches.Put(sc)
}

// frameEvents appends the event records of an Enqueue to frames: head and
// event, checksummed.
func frameEvents(o *op, items []enqItem, evbuf, frames []byte) []byte {
	frames = slices.Grow(frames, len(evbuf)+len(o.heads)+len(o.events)*(frameHeader+1))
	for i := range o.events {
		e := &o.events[i]
		it := &items[e.batch]
		b, start := beginFrame(frames, recEvent)
		b = append(b, o.heads[e.head:e.headEnd]...)
		frames = endFrame(append(b, evbuf[it.evAt:it.evEnd]...), start)
		e.off, e.n = start, len(frames)-start
	}
	return frames
}

// reserve decides, under the lock, what an Enqueue stores: duplicates,
// delivery ids, deliveries past their sink's backlog bound, and the room
// the records take. It returns an Enqueue to wait for when an event's id is
// being written by another one.
func (q *Queue) reserve(o *op, batch []router.Routed, items []enqItem, now time.Time) (*op, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := &q.st
	if st.closed {
		return nil, router.ErrQueueClosed
	}
	if st.writeErr != nil && now.Before(st.retryAt) {
		return nil, fmt.Errorf("queue cannot write to disk: %w", st.writeErr)
	}
	for i := range items {
		if items[i].remember {
			if w := st.pendingKeys[items[i].entry.key]; w != nil {
				return w, nil
			}
		}
	}
	if len(batch) <= len(o.evInline) {
		// One event, nearly every request: its lists live in the op.
		o.events, o.keys, o.dels = o.evInline[:0], o.keyInline[:0], o.delInline[:0]
		o.heads = o.headInline[:0]
	} else {
		o.events = make([]enqEvent, 0, len(batch))
	}
	var need int64
	var unrouted []dedupEntry
	for i := range batch {
		r, it := &batch[i], &items[i]
		if it.remember {
			if st.dedup.contains(it.entry.key) || st.pendingKeys[it.entry.key] == o {
				it.dup = true
				continue
			}
			if len(r.Sinks) == 0 {
				unrouted = append(unrouted, it.entry)
				continue
			}
			st.pendingKeys[it.entry.key] = o
			o.keys = append(o.keys, it.entry)
		}
		if len(r.Sinks) == 0 {
			continue
		}
		ev := q.reserveEvent(o, r, it, i, now)
		if ev.pending > 0 {
			need += ev.size
		}
		o.events = append(o.events, ev)
	}
	o.need = need
	if max := q.opts.MaxBytes; max > 0 && need > 0 && st.bytes+st.reserved+need > max {
		q.unreserveLocked(o)
		return nil, router.ErrQueueFull
	}
	st.reserved += need
	// Nothing to deliver, nothing to lose: remembered at once, saved with
	// the next dedup flush.
	for _, e := range unrouted {
		st.dedup.add(e, now.Unix())
		st.fresh = append(st.fresh, e)
	}
	return nil, nil
}

// reserveEvent gives one event's deliveries their ids, one per sink,
// sends those past their sink's backlog bounds to the dead letters, and
// encodes its record's head. q.mu held.
func (q *Queue) reserveEvent(o *op, r *router.Routed, it *enqItem, i int, now time.Time) enqEvent {
	st := &q.st
	var inline [4]delivery // nearly every event has fewer sinks: no allocation
	h := eventHead{dedup: it.remember, key: it.entry.key, expiry: it.entry.expiry, horizon: it.entry.horizon,
		deliveries: inline[:0]}
	ev := enqEvent{ev: r.Event, batch: i, first: len(o.dels)}
	for _, name := range r.Sinks {
		si := q.sink(name)
		if slices.ContainsFunc(o.dels[ev.first:], func(d enqDelivery) bool { return d.sink == si }) {
			continue // a sink at most once per event
		}
		s := st.sinks[si]
		st.nextID++
		d := delivery{id: st.nextID, sink: name, queued: now}
		full := fullNone
		if limit := q.opts.MaxPendingPerSink; limit > 0 && s.pending()+s.reserved >= limit {
			d.state, full = stDead, fullCount
			d.detail = detail{at: now, lastError: fmt.Sprintf(
				"backlog full: %d deliveries were already queued for this sink (queue.max_pending_per_sink)", limit)}
		}
		h.deliveries = append(h.deliveries, d)
		o.dels = append(o.dels, enqDelivery{id: d.id, sink: si, full: full})
	}
	// The record's size depends on which deliveries are dead (a dead one
	// carries its reason), and which are dead on the size: settle both,
	// each round only adding dead ones, so at most one round per sink.
	ev.head = len(o.heads)
	dels := o.dels[ev.first:]
	for {
		o.heads = appendEventHead(o.heads[:ev.head], &h)
		ev.size = int64(frameHeader + 1 + len(o.heads) - ev.head + it.evEnd - it.evAt)
		if !q.overShare(h.deliveries, dels, ev.size, now) {
			break
		}
	}
	ev.headEnd = len(o.heads)
	for j := range dels {
		if d := &dels[j]; d.full == fullNone {
			s := st.sinks[d.sink]
			s.reserved++
			s.reservedBytes += ev.size
			d.size = ev.size
			ev.pending++
		}
	}
	return ev
}

// share is how many bytes of events one sink's pending deliveries may
// hold: queue.max_bytes over the sinks the config has. 0 means no share
// (no max_bytes, or fewer than two sinks: one sink has all of max_bytes,
// and past it sources answer 503, since no other sink needs protecting
// from it). q.mu held.
func (q *Queue) share() int64 {
	if q.opts.MaxBytes <= 0 || q.st.sharedBy < 2 {
		return 0
	}
	return q.opts.MaxBytes / int64(q.st.sharedBy)
}

// overShare sends to the dead letters each live delivery of an event of
// size bytes whose sink would go past its share, and reports whether it
// sent any. q.mu held.
func (q *Queue) overShare(ds []delivery, dels []enqDelivery, size int64, now time.Time) bool {
	share := q.share()
	if share == 0 {
		return false
	}
	changed := false
	for j := range dels {
		d := &dels[j]
		s := q.st.sinks[d.sink]
		if d.full != fullNone || s.bytes+s.reservedBytes+size <= share {
			continue
		}
		d.full, changed = fullShare, true
		ds[j].state = stDead
		// What says why comes first: `dlq list` shows 120 characters.
		ds[j].detail = detail{at: now, lastError: fmt.Sprintf(
			"backlog full: this sink's share of queue.max_bytes (%d bytes: %d over %d sinks) already holds %d bytes of queued events",
			share, q.opts.MaxBytes, q.st.sharedBy, s.bytes+s.reservedBytes)}
	}
	return changed
}

// SetSinks tells the queue how many sinks the config has, at start and on
// every reload: with two or more, each sink's pending deliveries may hold
// at most queue.max_bytes divided by that many bytes of events (an event
// counting toward every sink it waits for), and past it the sink's new
// deliveries become dead letters, so that one sink down never fills
// max_bytes for the others.
func (q *Queue) SetSinks(n int) {
	q.mu.Lock()
	q.st.sharedBy = n
	q.mu.Unlock()
}

// unreserve undoes reserve for an Enqueue that will not be written.
func (q *Queue) unreserve(o *op) {
	q.mu.Lock()
	q.st.reserved -= o.need
	q.unreserveLocked(o)
	q.mu.Unlock()
	close(o.fin)
}

func (q *Queue) unreserveLocked(o *op) {
	for _, e := range o.keys {
		if q.st.pendingKeys[e.key] == o {
			delete(q.st.pendingKeys, e.key)
		}
	}
	for _, d := range o.dels {
		if d.full == fullNone {
			s := q.st.sinks[d.sink]
			s.reserved--
			s.reservedBytes -= d.size
		}
	}
	o.keys, o.dels = nil, nil
}

// Next implements router.Queue.
func (q *Queue) Next(ctx context.Context, sink string) (*router.Delivery, error) {
	for {
		t, wake, wait, err := q.take(sink)
		if err != nil {
			return nil, err
		}
		if t.id != 0 {
			d, err := q.loadTaken(&t)
			if err == nil {
				return d, nil
			}
			q.unreadable(&t, err)
			if err := ctx.Err(); err != nil {
				return nil, err
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

// taken is a delivery handed out, with what is needed to read it.
type taken struct {
	id     uint64
	sink   string
	ev     *router.Event // hot: no read needed
	evLoc  loc
	evN    uint32
	detail loc
	queued int64
	// Files referenced while reading: the event's (unless hot) and the
	// detail record's when that is elsewhere.
	evFile, detFile *segFile
}

// take pops the next due delivery of sink (its id 0 when there is none),
// or says how long to wait.
func (q *Queue) take(name string) (taken, chan struct{}, time.Duration, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.st.closed {
		return taken{}, nil, 0, router.ErrQueueClosed
	}
	si := q.sink(name)
	s := q.st.sinks[si]
	now := q.now().UnixNano()
	for len(s.delayed) > 0 && s.delayed[0].at <= now {
		d := s.delayed.pop()
		q.st.dels.at(d.slot).state = dReady
		s.ready.push(d.slot)
	}
	if s.ready.n == 0 {
		var wait time.Duration
		if len(s.delayed) > 0 {
			wait = time.Duration(s.delayed[0].at - now)
		}
		return taken{}, s.wake, wait, nil
	}
	slot := s.ready.pop()
	d := q.st.dels.at(slot)
	d.state = dInFlight
	s.inFlight++
	if s.ready.n > 0 {
		s.signal() // another worker of this sink may take the next
	}
	e := q.st.events.at(d.ev)
	t := taken{id: d.id, sink: name, ev: q.st.hot[d.ev], evLoc: e.loc, evN: e.n, detail: d.detail, queued: d.at}
	if t.ev == nil || d.detail == e.loc {
		t.evFile = q.ref(e.seg)
	}
	if d.detail != (loc{}) && d.detail != e.loc {
		t.detFile = q.ref(d.detail.seg)
	}
	return t, nil, 0, nil
}

// ref keeps a segment's file open while it is read. q.mu held.
func (q *Queue) ref(seg uint32) *segFile {
	sf := q.seg.files[uint64(seg)]
	if sf != nil {
		sf.refs++
	}
	return sf
}

func (q *Queue) unref(files ...*segFile) {
	q.mu.Lock()
	for _, sf := range files {
		if sf == nil {
			continue
		}
		sf.refs--
		if sf.refs == 0 && sf.doomed {
			sf.f.Close()
		}
	}
	q.mu.Unlock()
}

// loadTaken reads what a taken delivery needs that is not in memory.
func (q *Queue) loadTaken(t *taken) (*router.Delivery, error) {
	defer q.unref(t.evFile, t.detFile)
	d := &router.Delivery{ID: strconv.FormatUint(t.id, 10), Sink: t.sink, Event: t.ev}
	if t.ev == nil {
		ev, err := q.readEvent(t.evFile, t.evLoc, t.evN)
		if err != nil {
			return nil, err
		}
		d.Event = ev
	}
	if t.detail != (loc{}) {
		sf := t.detFile
		if t.detail == t.evLoc {
			sf = t.evFile
		}
		det, err := q.readDetail(sf, t.detail, t.id)
		if err != nil {
			return nil, err
		}
		d.Attempts, d.FirstTry, d.LastTry, d.NotBefore, d.LastError = det.attempts, det.firstTry, det.lastTry, det.at, det.lastError
	}
	return d, nil
}

func parseID(id string) (uint64, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a delivery of this queue", id)
	}
	return n, nil
}

// Done implements router.Queue: the delivery is removed in the next write,
// without waiting for it; that write happens within doneDelay while the
// disk takes writes, and with the retry after a failed write.
func (q *Queue) Done(d *router.Delivery) error {
	id, err := parseID(d.ID)
	if err != nil {
		return err
	}
	q.settle(d.Sink, false)
	q.submitMu.RLock()
	defer q.submitMu.RUnlock()
	if q.closed {
		return router.ErrQueueClosed
	}
	q.doneMu.Lock()
	q.dones = append(q.dones, doneNote{id: id, sink: d.Sink})
	kick := len(q.dones) == 1 && q.writerIdle
	q.doneMu.Unlock()
	if kick {
		select {
		case q.doneKick <- struct{}{}:
		default: // a kick is waiting already
		}
	}
	return nil
}

// doneNote is a finished delivery (Done) waiting for the writer.
type doneNote struct {
	id   uint64
	sink string
}

// Retry implements router.Queue: the delivery goes back on the schedule,
// due at d.NotBefore, once its new state is written.
func (q *Queue) Retry(d *router.Delivery) error {
	id, err := parseID(d.ID)
	if err != nil {
		return err
	}
	det := detail{attempts: d.Attempts, firstTry: d.FirstTry, lastTry: d.LastTry, at: d.NotBefore, lastError: d.LastError}
	return q.submit(&op{kind: opRetry, id: id, sinkName: d.Sink, frames: encodeDetailRecord(recState, id, &det),
		due: d.NotBefore.UnixNano()})
}

// Dead implements router.Queue: the delivery becomes a dead letter in the
// next write.
func (q *Queue) Dead(d *router.Delivery) error {
	id, err := parseID(d.ID)
	if err != nil {
		return err
	}
	now := q.now()
	det := detail{attempts: d.Attempts, firstTry: d.FirstTry, lastTry: d.LastTry, at: now, lastError: d.LastError}
	q.settle(d.Sink, true)
	return q.submit(&op{kind: opDead, id: id, sinkName: d.Sink, frames: encodeDetailRecord(recDead, id, &det), due: now.UnixNano()})
}

// settle counts a Done or Dead as done in Stats before it is written.
func (q *Queue) settle(sink string, dead bool) {
	q.mu.Lock()
	s := q.st.sinks[q.sink(sink)]
	s.settled++
	if dead {
		s.dying++
	}
	q.mu.Unlock()
}

// unreadable turns a delivery whose records cannot be read into a dead
// letter that keeps the error (and, through its event record, the raw
// bytes): never skipped, replayable once a fixed build can read it.
func (q *Queue) unreadable(t *taken, err error) {
	if m := q.opts.Metrics; m != nil && m.Unreadable != nil {
		m.Unreadable.Inc()
	}
	q.log.Error("queued delivery is unreadable; moved to the dead-letter queue with its raw bytes",
		"sink", t.sink, "delivery", t.id, "err", err)
	msg := "unreadable: " + err.Error()
	d := &router.Delivery{ID: strconv.FormatUint(t.id, 10), Sink: t.sink, LastError: msg}
	if derr := q.Dead(d); derr != nil {
		q.log.Error("could not dead-letter an unreadable delivery; it is retried after a restart", "delivery", t.id, "err", derr)
	}
}

// submit hands an operation to the writer.
func (q *Queue) submit(o *op) error {
	q.submitMu.RLock()
	defer q.submitMu.RUnlock()
	if q.closed {
		return router.ErrQueueClosed
	}
	q.ops <- o
	return nil
}

// Ready reports whether the queue can take events: nil, or why not (the
// disk is full or failing).
func (q *Queue) Ready() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.st.closed {
		return router.ErrQueueClosed
	}
	if q.st.writeErr != nil {
		return fmt.Errorf("queue cannot write to disk: %w", q.st.writeErr)
	}
	return nil
}

// Stats returns, per sink, the deliveries queued or in flight and the dead
// letters kept.
func (q *Queue) Stats() map[string][2]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string][2]int, len(q.st.sinks))
	for _, s := range q.st.sinks {
		out[s.name] = [2]int{s.pending() - s.settled, s.dead + s.dying}
	}
	return out
}

// StoredBytes returns the stored bytes of events with deliveries pending and of
// events kept only by dead letters.
func (q *Queue) StoredBytes() (pending, dead int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.st.bytes, q.st.deadBytes
}

// OldestPending returns, per sink with deliveries queued, how long the
// oldest of them has been waiting. It walks the deliveries a chunk at a
// time, so that a big backlog never holds the lock for long.
func (q *Queue) OldestPending(now time.Time) map[string]time.Duration {
	oldest := map[uint16]int64{}
	for c := 0; ; c++ {
		q.mu.Lock()
		if c >= len(q.st.dels.chunks) {
			q.mu.Unlock()
			break
		}
		for _, d := range q.st.dels.chunks[c] {
			switch d.state {
			case dReady, dDelayed, dInFlight:
				if o, ok := oldest[d.sink]; !ok || d.at < o {
					oldest[d.sink] = d.at
				}
			}
		}
		q.mu.Unlock()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]time.Duration, len(oldest))
	for si, at := range oldest {
		out[q.st.sinks[si].name] = now.Sub(time.Unix(0, at))
	}
	return out
}

// Idle reports whether no delivery is due or in flight.
func (q *Queue) Idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now().UnixNano()
	for _, s := range q.st.sinks {
		if s.ready.n > 0 || s.inFlight > s.settled || len(s.delayed) > 0 && s.delayed[0].at <= now {
			return false
		}
	}
	return true
}

// Close implements router.Queue: what was submitted is written, the
// checkpoint saved, and the files closed. Pending deliveries stay on disk.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		q.submitMu.Lock()
		q.closed = true
		q.submitMu.Unlock()
		q.mu.Lock()
		q.st.closed = true
		q.mu.Unlock()
		close(q.closing)
		<-q.writerDone
		q.lock.Close()
	})
	return q.closeErr
}

var (
	_ router.Queue       = (*Queue)(nil)
	_ router.DeadLetters = (*Queue)(nil)
)

// Seen reports whether (source, id) is remembered: an Enqueue of it now
// would be a duplicate.
func (q *Queue) Seen(source, id string) bool {
	k := keyOf(source, id)
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.st.dedup.contains(k) || q.st.pendingKeys[k] != nil
}
