package logqueue

import (
	"fmt"
	"time"
)

// Housekeeping, about once a second in the writer: forget expired dedup
// keys and save new ones, enforce the dead-letter bounds, give space back,
// and save the checkpoint when anything changed.

const (
	ddpChunkSize = 4 << 20
	ddpChunkAge  = 10 * time.Minute
)

func (q *Queue) housekeeping(closing bool) {
	q.logFull(closing)
	now := q.now()
	q.mu.Lock()
	q.st.dedup.sweep(now.Unix())
	q.mu.Unlock()
	if err := q.flushDedup(now); err != nil {
		q.writeFailed(err)
	}
	if !closing {
		q.enforceDeadLetterBounds(now)
	}
	q.reclaim()
	if q.w.compSeg == 0 && q.wantsCompaction() {
		q.w.compSeg, q.w.compOff = q.seg.first, 0
	}
	q.rollIfEmpty()
	q.reclaimDedup(now)
	if q.w.dirty {
		if err := q.checkpoint(); err != nil {
			q.writeFailed(err)
		} else if q.w.failures > 0 {
			q.writeOK()
		}
	}
}

// flushDedup appends the keys remembered since the last flush to the
// dedup chunks. Every key of a record written so far is among them, so
// once they are synced, no segment before the log's end is needed for its
// keys.
func (q *Queue) flushDedup(now time.Time) error {
	q.mu.Lock()
	fresh := q.st.fresh
	q.st.fresh = nil
	q.mu.Unlock()
	seg, off := q.seg.last, q.seg.size
	if len(fresh) > 0 {
		l := &q.w.ddp
		if l.size > headerSize && (l.size > ddpChunkSize || now.Sub(q.w.ddpStarted) > ddpChunkAge) {
			if err := l.roll(); err != nil {
				q.refresh(fresh)
				return err
			}
			q.w.ddpStarted = now
			q.w.dirty = true
		}
		// On any failure every key of this flush goes back to be written
		// again: a failed fsync leaves in doubt what it covered (a failed
		// writeback is reported only once), and the dedup position must not
		// move past a key that is not surely in a chunk, as a restart reads
		// the keys before it from the chunks only. A chunk's expiry counts
		// every key appended to it, written again or not, so that it is
		// never deleted while a key in it is live.
		all := fresh
		for len(fresh) > 0 {
			n := min(len(fresh), 16384)
			buf := appendDedupRecord(q.w.buf[:0], fresh[:n])
			if _, err := l.append(buf); err != nil {
				q.refresh(all)
				return err
			}
			for _, e := range fresh[:n] {
				q.w.ddpExpiry[l.last] = max(q.w.ddpExpiry[l.last], e.expiry)
			}
			fresh = fresh[n:]
		}
		if err := l.sync(); err != nil {
			q.refresh(all)
			return err
		}
		q.w.dirty = true
	}
	if seg != q.w.dedupSeg || off != q.w.dedupOff {
		q.w.dedupSeg, q.w.dedupOff = seg, off
		q.w.dirty = true
	}
	return nil
}

// refresh puts back keys that could not be saved.
func (q *Queue) refresh(keys []dedupEntry) {
	q.mu.Lock()
	q.st.fresh = append(keys, q.st.fresh...)
	q.mu.Unlock()
}

// reclaimDedup deletes the oldest dedup chunks whose every key is past
// its horizon.
func (q *Queue) reclaimDedup(now time.Time) {
	l := &q.w.ddp
	if l.size > headerSize && q.w.ddpExpiry[l.last] < now.Unix() && l.first == l.last {
		// Everything expired, the head included: start afresh so it can go.
		if err := l.roll(); err != nil {
			q.writeFailed(err)
			return
		}
		q.w.ddpStarted = now
		q.w.dirty = true
	}
	first := l.first
	for first < l.last && q.w.ddpExpiry[first] < now.Unix() {
		first++
	}
	if first == l.first {
		return
	}
	old := l.first
	l.first = first
	if err := q.checkpoint(); err != nil {
		l.first = old
		q.writeFailed(err)
		return
	}
	for n := old; n < first; n++ {
		if err := q.fs.Remove(l.name(n)); err != nil {
			q.log.Warn("could not delete an expired dedup chunk; delete it by hand", "file", l.name(n), "err", err)
		}
		delete(q.w.ddpExpiry, n)
	}
}

// checkpoint saves queue.state: the head is synced first, so that the
// length it records is on disk.
func (q *Queue) checkpoint() error {
	if err := q.seg.sync(); err != nil {
		return err
	}
	if err := q.w.ddp.sync(); err != nil {
		return err
	}
	q.mu.Lock()
	c := checkpoint{segFirst: q.seg.first, segLast: q.seg.last, segSynced: q.seg.synced,
		ddpFirst: q.w.ddp.first, ddpLast: q.w.ddp.last, ddpSynced: q.w.ddp.synced,
		nextID: q.st.nextID + 1, dedupSeg: q.w.dedupSeg, dedupOff: q.w.dedupOff}
	q.mu.Unlock()
	if err := writeCheckpoint(q.fs, q.dir, &c); err != nil {
		return err
	}
	q.w.dirty = false
	return nil
}

// enforceDeadLetterBounds drops the oldest dead letters past
// queue.dead_letter_max_age or queue.dead_letter_max_bytes, each logged at
// error and counted: nothing accepted is deleted silently.
func (q *Queue) enforceDeadLetterBounds(now time.Time) {
	maxAge, maxBytes := q.opts.DeadLetterMaxAge, q.opts.DeadLetterMaxBytes
	if maxAge <= 0 && maxBytes <= 0 {
		return
	}
	type victim struct {
		id     uint64
		sink   string
		reason string
		evLoc  loc
		evN    uint32
	}
	var victims []victim
	q.mu.Lock()
	l := &q.st.dead
	deadBytes := q.st.deadBytes
	seen := map[uint32]uint16{}
	for _, e := range l.list {
		if len(victims) >= 1000 {
			break // the rest at the next tick
		}
		_, ds := q.current(e)
		if ds == nil {
			continue
		}
		var reason string
		switch {
		case maxAge > 0 && now.Sub(time.Unix(0, e.at)) > maxAge:
			reason = fmt.Sprintf("older than queue.dead_letter_max_age (%s)", maxAge)
		case maxBytes > 0 && deadBytes > maxBytes:
			reason = fmt.Sprintf("dead letters exceed queue.dead_letter_max_bytes (%d bytes)", maxBytes)
		default:
		}
		if reason == "" {
			break
		}
		es := q.st.events.at(ds.ev)
		if seen[ds.ev]++; seen[ds.ev] == es.dead && es.pending == 0 {
			deadBytes -= int64(es.n) // its last dead letter goes
		}
		victims = append(victims, victim{id: ds.id, sink: q.st.sinks[ds.sink].name, reason: reason, evLoc: es.loc, evN: es.n})
	}
	q.mu.Unlock()
	if len(victims) == 0 {
		return
	}
	// Named in the log with their event ids, read before they go.
	eventIDs := make([]string, len(victims))
	ids := make([]uint64, len(victims))
	for i, v := range victims {
		ids[i], eventIDs[i] = v.id, "?"
		if ev, err := q.readEventAt(v.evLoc, v.evN); err == nil {
			eventIDs[i] = ev.ID
		}
	}
	if _, err := q.removeDead(ids, recDrop); err != nil {
		return // logged by the write; tried again at the next tick
	}
	m := q.opts.Metrics
	for i, v := range victims {
		q.log.Error("dead letter dropped: "+v.reason, "dead_letter", v.id, "sink", v.sink, "event_id", eventIDs[i])
		if m != nil && m.DeadLettersDropped != nil {
			m.DeadLettersDropped.WithLabelValues(v.sink).Inc()
		}
	}
}
