package logqueue

import (
	"cmp"
	"slices"
	"time"
)

// Memory changes once their records are written: the writer applies each
// written op here, under q.mu.

// detailEstimate is what a state or dead record counts toward its
// segment's live bytes: their exact length is not kept.
const detailEstimate = 96

func (q *Queue) applyEnqueue(o *op, seg uint32, base int64) {
	st := &q.st
	sf := q.seg.files[uint64(seg)]
	for i := range o.events {
		e := &o.events[i]
		ei := st.events.alloc()
		es := st.events.at(ei)
		es.loc = loc{seg, uint32(base) + uint32(o.at+e.off)}
		es.n = uint32(e.n)
		sf.liveRecs++
		sf.liveBytes += int64(e.n)
		end := len(o.dels)
		if i+1 < len(o.events) {
			end = o.events[i+1].first
		}
		for _, d := range o.dels[e.first:end] {
			di := st.dels.alloc()
			ds := st.dels.at(di)
			ds.id, ds.ev, ds.sink, ds.at = d.id, ei, d.sink, o.now
			st.ids.insert(&st.dels, di)
			s := st.sinks[d.sink]
			if d.full != fullNone {
				ds.state, ds.detail = dDead, es.loc
				es.dead++
				s.dead++
				st.dead.add(ds, o.now)
				q.noteFull(d.sink, d.full)
			} else {
				ds.state = dReady
				es.pending++
				s.reserved--
				s.reservedBytes -= d.size
				s.bytes += int64(es.n)
				s.ready.push(di)
				s.signal()
			}
			q.touch(d.sink)
		}
		q.account(es, 0, 0)
		if es.pending > 0 && st.hotBytes+int64(es.n) <= q.opts.HotBytes {
			st.hot[ei] = e.ev
			st.hotBytes += int64(es.n)
		}
	}
	st.reserved -= o.need
	now := q.now().Unix()
	for _, k := range o.keys {
		delete(st.pendingKeys, k.key)
		st.dedup.add(k, now)
		st.fresh = append(st.fresh, k)
	}
}

// fullKey is one sink's bound that sent new deliveries to the dead letters.
type fullKey struct {
	sink uint16
	kind fullKind
}

// fullNote counts those deliveries since the bound was last logged.
type fullNote struct {
	count  int
	logged time.Time
}

// fullLogEvery is how often a sink past a backlog bound is logged: the
// first dead letter at once, then one line with the count at most this
// often while it lasts.
const fullLogEvery = 10 * time.Second

// noteFull counts a new delivery that became a dead letter at once. In the
// writer, q.mu held.
func (q *Queue) noteFull(si uint16, kind fullKind) {
	k := fullKey{si, kind}
	n := q.w.full[k]
	if n == nil {
		if q.w.full == nil {
			q.w.full = map[fullKey]*fullNote{}
		}
		n = &fullNote{}
		q.w.full[k] = n
	}
	n.count++
}

// logFull logs, at warn, the sinks whose new deliveries went to the dead
// letters since their last line, at most every fullLogEvery per sink and
// bound (all of them when closing). In the writer, without q.mu.
func (q *Queue) logFull(closing bool) {
	now := q.now()
	due := func(n *fullNote) bool { return n.count > 0 && (closing || now.Sub(n.logged) >= fullLogEvery) }
	any := false
	for _, n := range q.w.full {
		any = any || due(n)
	}
	if !any {
		return
	}
	q.mu.Lock()
	share, sharedBy := q.share(), q.st.sharedBy
	names := make(map[uint16]string, len(q.w.full))
	for k := range q.w.full {
		names[k.sink] = q.st.sinks[k.sink].name
	}
	q.mu.Unlock()
	for k, n := range q.w.full {
		if !due(n) {
			continue
		}
		const msg = "sink backlog full: new deliveries go straight to the dead-letter queue until it drains"
		switch k.kind {
		case fullCount:
			q.log.Warn(msg, "sink", names[k.sink], "count", n.count, "limit", "queue.max_pending_per_sink",
				"max_pending_per_sink", q.opts.MaxPendingPerSink)
		case fullShare:
			q.log.Warn(msg, "sink", names[k.sink], "count", n.count, "limit", "share of queue.max_bytes",
				"share_bytes", share, "max_bytes", q.opts.MaxBytes, "sinks", sharedBy)
		}
		n.count, n.logged = 0, now
	}
}

// settled finds the delivery a worker ended and takes back the count
// Stats showed for it; nil when it is not in flight any more.
func (q *Queue) settledDelivery(kind opKind, id uint64, sinkName string) (uint32, *dslot) {
	st := &q.st
	si, known := st.sinkIdx[sinkName]
	if known && kind != opRetry {
		s := st.sinks[si]
		s.settled--
		if kind == opDead {
			s.dying--
		}
	}
	di, ok := st.ids.find(&st.dels, id)
	if !ok {
		return 0, nil
	}
	ds := st.dels.at(di)
	if ds.state != dInFlight || !known || ds.sink != si {
		q.log.Warn("a delivery outcome arrived for a delivery that is not in flight; ignored", "delivery", id, "sink", sinkName)
		return 0, nil
	}
	st.sinks[si].inFlight--
	q.touch(si)
	return di, ds
}

func (q *Queue) applyDone(id uint64, sinkName string) {
	if di, ds := q.settledDelivery(opDone, id, sinkName); ds != nil {
		q.freeDelivery(di, ds)
	}
}

func (q *Queue) applyRetry(o *op, l loc, n int) {
	di, ds := q.settledDelivery(o.kind, o.id, o.sinkName)
	if ds == nil {
		return
	}
	es := q.st.events.at(ds.ev)
	q.setDetail(ds, es, l, n)
	q.schedule(di, ds, o.due)
	// The next attempt reads the event back: the cache is for deliveries
	// due now.
	q.evict(ds.ev)
}

func (q *Queue) applyDead(o *op, l loc, n int) {
	_, ds := q.settledDelivery(o.kind, o.id, o.sinkName)
	if ds == nil {
		return
	}
	q.bury(ds, l, n, o.due)
}

// bury makes a pending delivery a dead letter whose detail is at l.
func (q *Queue) bury(ds *dslot, l loc, n int, at int64) {
	es := q.st.events.at(ds.ev)
	q.setDetail(ds, es, l, n)
	ds.state = dDead
	es.pending--
	es.dead++
	q.account(es, es.pending+1, es.dead-1)
	s := q.st.sinks[ds.sink]
	s.bytes -= int64(es.n)
	s.dead++
	q.touch(ds.sink)
	q.st.dead.add(ds, at)
	if es.pending == 0 {
		q.evict(ds.ev)
	}
}

// schedule puts a pending delivery in its sink's ready list or delay heap.
func (q *Queue) schedule(di uint32, ds *dslot, due int64) {
	s := q.st.sinks[ds.sink]
	if due <= q.now().UnixNano() {
		ds.state = dReady
		s.ready.push(di)
	} else {
		ds.state = dDelayed
		s.delayed.push(delayed{at: due, slot: di})
	}
	s.signal()
	q.touch(ds.sink)
}

// setDetail points a delivery at a new record of its state, releasing the
// old one.
func (q *Queue) setDetail(ds *dslot, es *eslot, l loc, n int) {
	q.retireDetail(ds, es)
	ds.detail = l
	if l != es.loc && l != (loc{}) {
		if sf := q.seg.files[uint64(l.seg)]; sf != nil {
			sf.liveRecs++
			sf.liveBytes += int64(n)
		}
	}
}

func (q *Queue) retireDetail(ds *dslot, es *eslot) {
	if ds.detail != (loc{}) && ds.detail != es.loc {
		if sf := q.seg.files[uint64(ds.detail.seg)]; sf != nil {
			sf.liveRecs--
			sf.liveBytes -= detailEstimate
		}
	}
	ds.detail = loc{}
}

// freeDelivery forgets a delivery, and its event with its last delivery.
func (q *Queue) freeDelivery(di uint32, ds *dslot) {
	st := &q.st
	es := st.events.at(ds.ev)
	p, d := es.pending, es.dead
	if ds.state == dDead {
		es.dead--
		st.sinks[ds.sink].dead--
	} else {
		es.pending--
		st.sinks[ds.sink].bytes -= int64(es.n)
	}
	q.touch(ds.sink)
	q.retireDetail(ds, es)
	q.account(es, p, d)
	ei := ds.ev
	st.ids.remove(&st.dels, ds.id)
	st.dels.release(di)
	if es.pending == 0 && es.dead == 0 {
		q.freeEvent(ei, es)
	}
}

func (q *Queue) freeEvent(ei uint32, es *eslot) {
	if sf := q.seg.files[uint64(es.seg)]; sf != nil {
		sf.liveRecs--
		sf.liveBytes -= int64(es.n)
	}
	q.evict(ei)
	q.st.events.release(ei)
}

func (q *Queue) evict(ei uint32) {
	if _, ok := q.st.hot[ei]; ok {
		delete(q.st.hot, ei)
		q.st.hotBytes -= int64(q.st.events.at(ei).n)
	}
}

// account moves an event's bytes between the totals as its counts change
// from (pending, dead): events with deliveries pending count toward
// queue.max_bytes, events kept only by dead letters toward
// queue.dead_letter_max_bytes.
func (q *Queue) account(es *eslot, pending, dead uint16) {
	n := int64(es.n)
	switch {
	case pending > 0:
		q.st.bytes -= n
	case dead > 0:
		q.st.deadBytes -= n
	}
	switch {
	case es.pending > 0:
		q.st.bytes += n
	case es.dead > 0:
		q.st.deadBytes += n
	}
}

// resize changes an event's stored length (a copy's head differs from the
// original's), keeping the totals true.
func (q *Queue) resize(es *eslot, n uint32) {
	p, d := es.pending, es.dead
	es.pending, es.dead = 0, 0
	q.account(es, p, d)
	es.n, es.pending, es.dead = n, p, d
	q.account(es, 0, 0)
}

func (q *Queue) touch(si uint16) {
	if !slices.Contains(q.w.touched, si) {
		q.w.touched = append(q.w.touched, si)
	}
}

// publish updates the gauges of what changed. q.mu held.
func (q *Queue) publish() {
	for _, si := range q.w.touched {
		q.st.sinks[si].gauges()
	}
	q.w.touched = q.w.touched[:0]
	if m := q.opts.Metrics; m != nil && m.Bytes != nil {
		m.Bytes.Set(float64(q.st.bytes))
	}
}

// deadList keeps the dead letters in the order they died, for listing
// newest first and dropping oldest first. Entries of dead letters replayed
// or purged stay until compacted away; an entry is current when its
// delivery is dead with the entry's order number.
type deadList struct {
	list  []deadEntry
	seq   uint64
	stale int
}

type deadEntry struct {
	id  uint64
	at  int64 // when it died, unix nanoseconds
	seq uint64
}

func (l *deadList) add(ds *dslot, at int64) {
	l.seq++
	ds.at = int64(l.seq)
	l.list = append(l.list, deadEntry{id: ds.id, at: at, seq: l.seq})
}

// current returns the delivery of an entry if the entry is current.
func (q *Queue) current(e deadEntry) (uint32, *dslot) {
	di, ok := q.st.ids.find(&q.st.dels, e.id)
	if !ok {
		return 0, nil
	}
	ds := q.st.dels.at(di)
	if ds.state != dDead || ds.at != int64(e.seq) {
		return 0, nil
	}
	return di, ds
}

// forgetDead notes that a dead letter left the list (replayed, purged,
// dropped) and compacts the list when most of it is stale.
func (q *Queue) forgetDead() {
	l := &q.st.dead
	l.stale++
	if l.stale < 1024 || l.stale*2 < len(l.list) {
		return
	}
	kept := l.list[:0]
	for _, e := range l.list {
		if _, ds := q.current(e); ds != nil {
			kept = append(kept, e)
		}
	}
	clear(l.list[len(kept):])
	l.list = kept
	l.stale = 0
}

// sortDead orders the dead letters by when they died, after a replay of
// the log in which copies moved some forward.
func (q *Queue) sortDead() {
	l := &q.st.dead
	kept := l.list[:0]
	for _, e := range l.list {
		if _, ds := q.current(e); ds != nil {
			kept = append(kept, e)
		}
	}
	l.list = kept
	slices.SortStableFunc(l.list, func(a, b deadEntry) int {
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		return cmp.Compare(a.seq, b.seq)
	})
	l.stale = 0
	for i := range l.list {
		e := &l.list[i]
		_, ds := q.current(*e)
		l.seq++
		e.seq = l.seq
		ds.at = int64(l.seq)
	}
}
