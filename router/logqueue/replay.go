package logqueue

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Rebuilding memory from the log: every record is applied in order, as the
// writer applied it when it was written. A record about a delivery that is
// not there (its event's segment was deleted) is ignored: every record that
// kills something is newer than what it kills.

// replay applies one record of segment n at off.
func (q *Queue) replay(r *replayState, n uint64, off int64, frame int, typ byte, body []byte) error {
	l := loc{uint32(n), uint32(off)}
	rd := reader{b: body, intern: q.intern}
	switch typ {
	case recEvent:
		q.replayEvent(r, l, uint32(frame), body)
		return nil
	case recState, recDead:
		id := rd.uvarint()
		det := rd.detail()
		if rd.err != nil {
			return rd.err
		}
		r.maxID = max(r.maxID, id)
		di, ds := q.replayPending(id)
		if ds == nil {
			return nil
		}
		if typ == recState {
			q.setDetail(ds, q.st.events.at(ds.ev), l, detailEstimate)
			r.setDue(di, det.at.UnixNano())
			return nil
		}
		q.bury(ds, l, detailEstimate, det.at.UnixNano())
	case recDone:
		for _, id := range rd.ids(nil) {
			if di, ds := q.replayPending(id); ds != nil {
				q.freeDelivery(di, ds)
			}
		}
	case recReplay:
		at := rd.time()
		for _, id := range rd.ids(nil) {
			if di, ds := q.replayDead(id); ds != nil {
				q.reviveState(ds, at.UnixNano())
				r.setDue(di, 0)
			}
		}
	case recPurge, recDrop:
		for _, id := range rd.ids(nil) {
			if di, ds := q.replayDead(id); ds != nil {
				q.freeDelivery(di, ds)
				q.forgetDead()
			}
		}
	case recRaw:
		id := rd.uvarint()
		at := rd.time()
		if rd.err != nil {
			return rd.err
		}
		r.maxID = max(r.maxID, id)
		q.rawDead(r, id, l, uint32(frame), at)
	default:
		return fmt.Errorf("record type %d is unknown (was the queue written by a newer switchboard?)", typ)
	}
	return rd.err
}

// internSink returns a known sink's name without allocating.
func (q *Queue) internSink(b []byte) string {
	if i, ok := q.st.sinkIdx[string(b)]; ok {
		return q.st.sinks[i].name
	}
	return string(b)
}

// setDue notes when a retried delivery is due; most restarts have few, so
// the table grows only when one is found.
func (r *replayState) setDue(di uint32, at int64) {
	if at == 0 && int(di) >= len(r.due) {
		return
	}
	for int(di) >= len(r.due) {
		r.due = append(r.due, make([]int64, 1<<chunkBits)...)
	}
	r.due[di] = at
}

func (r *replayState) dueOf(di uint32) int64 {
	if int(di) < len(r.due) {
		return r.due[di]
	}
	return 0
}

// replayPending finds a pending delivery by id during the replay.
func (q *Queue) replayPending(id uint64) (uint32, *dslot) {
	di, ok := q.st.ids.find(&q.st.dels, id)
	if !ok {
		return 0, nil
	}
	if ds := q.st.dels.at(di); ds.state == dReady {
		return di, ds
	}
	return 0, nil
}

func (q *Queue) replayDead(id uint64) (uint32, *dslot) {
	di, ok := q.st.ids.find(&q.st.dels, id)
	if !ok {
		return 0, nil
	}
	if ds := q.st.dels.at(di); ds.state == dDead {
		return di, ds
	}
	return 0, nil
}

// replayEvent applies an event record: a new event, or a copy that moves
// a live one forward with its deliveries' current state.
func (q *Queue) replayEvent(r *replayState, l loc, n uint32, body []byte) {
	h := &r.head
	rd := reader{b: body, intern: q.intern}
	rd.eventHead(h)
	if rd.err != nil || len(h.deliveries) == 0 {
		err := rd.err
		if err == nil {
			err = fmt.Errorf("event record lists no deliveries")
		}
		q.unreadableRecord(r, l, n, err)
		return
	}
	evErr := validateEvent(rd.rest())
	ei, es := q.replayedEvent(h)
	for i := range h.deliveries {
		q.replayDelivery(r, ei, es, l, n, &h.deliveries[i], h.copy)
	}
	es.loc, es.n = l, n
	if sf := q.seg.files[uint64(l.seg)]; sf != nil {
		sf.liveRecs++
		sf.liveBytes += int64(n)
	}
	q.account(es, 0, 0)
	if es.pending == 0 && es.dead == 0 {
		q.freeEvent(ei, es)
	}
	// A key recorded before the dedup chunks' position was read from them
	// already (or has expired, its chunk deleted): only the ones after it
	// are new here.
	if h.dedup && (uint64(l.seg) > r.dedupSeg || uint64(l.seg) == r.dedupSeg && int64(l.off) >= r.dedupOff) {
		e := dedupEntry{key: h.key, expiry: h.expiry, horizon: h.horizon}
		q.st.dedup.add(e, r.now.Unix())
		q.st.fresh = append(q.st.fresh, e) // not yet in the dedup chunks
	}
	if evErr != nil && es.pending > 0 {
		for _, d := range h.deliveries {
			if d.state != stDead {
				r.unreadable = append(r.unreadable, unreadableDelivery{d.id, evErr})
			}
		}
	}
}

// replayedEvent finds the event a copy moves, taken out of its segment and
// of the totals (it goes back in at its new place and length), or starts a
// new one. An accepted event's delivery ids are new (ids are never reused:
// the checkpoint keeps the next one); only a copy's are known.
func (q *Queue) replayedEvent(h *eventHead) (uint32, *eslot) {
	st := &q.st
	for _, d := range h.deliveries {
		if !h.copy {
			break
		}
		di, ok := st.ids.find(&st.dels, d.id)
		if !ok {
			continue
		}
		ei := st.dels.at(di).ev
		es := st.events.at(ei)
		if sf := q.seg.files[uint64(es.seg)]; sf != nil {
			sf.liveRecs--
			sf.liveBytes -= int64(es.n)
		}
		p, dead := es.pending, es.dead
		es.pending, es.dead = 0, 0
		q.account(es, p, dead)
		es.pending, es.dead = p, dead
		return ei, es
	}
	ei := st.events.alloc()
	return ei, st.events.at(ei)
}

// replayDelivery sets one delivery of event ei as the record at l, n bytes
// long, says; known is set for a copy, whose deliveries may exist already
// (counted toward their sinks at the event's old length, es.n).
func (q *Queue) replayDelivery(r *replayState, ei uint32, es *eslot, l loc, n uint32, d *delivery, known bool) {
	st := &q.st
	r.maxID = max(r.maxID, d.id)
	var di uint32
	var ok bool
	if known {
		di, ok = st.ids.find(&st.dels, d.id)
	}
	var ds *dslot
	if ok {
		ds = st.dels.at(di)
		if ds.ev != ei {
			q.freeDelivery(di, ds) // an id reused by another event: the newer record wins
			ok = false
		} else {
			q.retireDetail(ds, es)
			if ds.state == dDead {
				es.dead--
				st.sinks[ds.sink].dead--
				q.forgetDead()
			} else {
				es.pending--
				st.sinks[ds.sink].bytes -= int64(es.n)
			}
		}
	}
	if !ok {
		di = st.dels.alloc()
		ds = st.dels.at(di)
		ds.id = d.id
		st.ids.insert(&st.dels, di)
	}
	ds.ev, ds.sink, ds.raw = ei, q.sink(d.sink), false
	ds.detail, ds.at = loc{}, d.queued.UnixNano()
	r.setDue(di, 0)
	switch d.state {
	case stFresh:
		ds.state = dReady
		es.pending++
		st.sinks[ds.sink].bytes += int64(n)
	case stTried:
		ds.state, ds.detail = dReady, l
		r.setDue(di, d.detail.at.UnixNano())
		es.pending++
		st.sinks[ds.sink].bytes += int64(n)
	case stDead:
		ds.state, ds.detail = dDead, l
		es.dead++
		st.sinks[ds.sink].dead++
		st.dead.add(ds, d.detail.at.UnixNano())
	}
}

// unknownSink is the sink of a dead letter whose record cannot be read far
// enough to know its sinks.
const unknownSink = "(unreadable)"

// unreadableRecord keeps an event record whose head cannot be decoded as a
// dead letter of its own: never skipped, visible with its raw bytes.
func (q *Queue) unreadableRecord(r *replayState, l loc, n uint32, err error) {
	id := 1<<63 | uint64(l.seg)<<32 | uint64(l.off)
	q.log.Error("queue record is unreadable; kept as a dead letter with its raw bytes",
		"file", q.seg.name(uint64(l.seg)), "offset", l.off, "dead_letter", id, "err", err)
	if m := q.opts.Metrics; m != nil && m.Unreadable != nil {
		m.Unreadable.Inc()
	}
	if q.report != nil {
		q.report.Unreadable++
	}
	q.rawDead(r, id, l, n, r.now)
}

// rawDead adds a dead letter standing for an unreadable record at l.
func (q *Queue) rawDead(r *replayState, id uint64, l loc, n uint32, at time.Time) {
	st := &q.st
	if di, ok := st.ids.find(&st.dels, id); ok {
		ds := st.dels.at(di)
		es := st.events.at(ds.ev)
		if sf := q.seg.files[uint64(es.seg)]; sf != nil {
			sf.liveRecs--
			sf.liveBytes -= int64(es.n)
		}
		es.loc = l
		q.resize(es, n)
		if sf := q.seg.files[uint64(l.seg)]; sf != nil {
			sf.liveRecs++
			sf.liveBytes += int64(n)
		}
		return
	}
	ei := st.events.alloc()
	es := st.events.at(ei)
	es.loc, es.n, es.dead = l, n, 1
	if sf := q.seg.files[uint64(l.seg)]; sf != nil {
		sf.liveRecs++
		sf.liveBytes += int64(n)
	}
	q.account(es, 0, 0)
	di := st.dels.alloc()
	ds := st.dels.at(di)
	ds.id, ds.ev, ds.sink, ds.state, ds.raw = id, ei, q.sink(unknownSink), dDead, true
	st.ids.insert(&st.dels, di)
	st.sinks[ds.sink].dead++
	st.dead.add(ds, at.UnixNano())
}

// replayDedup applies a record of a dedup chunk.
func (q *Queue) replayDedup(r *replayState, n uint64, off int64, frame int, typ byte, body []byte) error {
	if typ != recDedup {
		return fmt.Errorf("record type %d does not belong in a dedup file", typ)
	}
	rd := reader{b: body}
	now := r.now.Unix()
	rd.dedupEntries(func(e dedupEntry) {
		q.st.dedup.add(e, now)
		q.w.ddpExpiry[n] = max(q.w.ddpExpiry[n], e.expiry)
	})
	return rd.err
}

// finishReplay builds the sinks' schedules from the deliveries found, in
// the order they were queued.
func (q *Queue) finishReplay(r *replayState, cp checkpoint) {
	st := &q.st
	var list []uint32
	for c := range st.dels.chunks {
		for i := range st.dels.chunks[c] {
			if ds := &st.dels.chunks[c][i]; ds.state == dReady {
				list = append(list, uint32(c<<chunkBits+i))
			}
		}
	}
	// Mostly in order already: slots are handed out in id order until
	// some are reused.
	slices.SortFunc(list, func(a, b uint32) int { return cmp.Compare(st.dels.at(a).id, st.dels.at(b).id) })
	now := r.now.UnixNano()
	for _, slot := range list {
		ds := st.dels.at(slot)
		s := st.sinks[ds.sink]
		if due := r.dueOf(slot); due > now {
			ds.state = dDelayed
			s.delayed.push(delayed{at: due, slot: slot})
		} else {
			s.ready.push(slot)
		}
	}
	q.sortDead()
	st.nextID = max(cp.nextID, r.maxID+1) - 1
	for _, s := range st.sinks {
		s.gauges()
	}
	q.w.touched = q.w.touched[:0]
	q.publish()
}

// buryUnreadable dead-letters the pending deliveries found unreadable at
// start, taking them off their sinks' schedules in one pass.
func (q *Queue) buryUnreadable(list []unreadableDelivery) {
	q.mu.Lock()
	gone := map[uint32]bool{}
	var victims []*taken
	var errs []error
	for _, u := range list {
		di, ok := q.st.ids.find(&q.st.dels, u.id)
		if !ok {
			continue
		}
		ds := q.st.dels.at(di)
		if ds.state != dReady && ds.state != dDelayed {
			continue
		}
		s := q.st.sinks[ds.sink]
		ds.state = dInFlight
		s.inFlight++
		gone[di] = true
		victims = append(victims, &taken{id: u.id, sink: s.name})
		errs = append(errs, u.err)
	}
	if len(gone) > 0 {
		for _, s := range q.st.sinks {
			s.ready.filter(func(v uint32) bool { return !gone[v] })
			s.delayed.filter(func(d delayed) bool { return !gone[d.slot] })
		}
	}
	q.mu.Unlock()
	for i, t := range victims {
		q.unreadable(t, errs[i])
	}
}
