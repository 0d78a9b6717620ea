package logqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"
)

// Giving space back. The oldest segment is deleted once nothing in it is
// live (and its dedup keys are saved in the dedup chunks). When the log
// holds more than twice its live bytes (plus two segments of slack), the
// oldest segment's live events are copied forward, a bounded chunk at a
// time between writes, each with its deliveries' current state, after which
// it holds nothing live and goes. Only the oldest segment is ever deleted,
// so every record that kills something stays newer than what it kills.

const compactChunk = 1 << 20

// wantsCompaction reports whether the log is big for what it holds.
func (q *Queue) wantsCompaction() bool {
	if q.seg.first >= q.seg.last || q.w.compBroken == q.seg.first {
		return false
	}
	var disk, live int64
	q.mu.Lock()
	for n, sf := range q.seg.files {
		if n == q.seg.last {
			disk += q.seg.size
		} else {
			disk += sf.size
		}
		live += sf.liveBytes
	}
	q.mu.Unlock()
	return disk > 2*live+2*q.w.segSize
}

// move is an event copied forward, to be applied once written.
type move struct {
	ei     uint32
	old    loc
	at, n  int // the copy in the write
	dels   []movedDelivery
	rawDel uint32 // a raw dead letter's slot, for raw copies
	raw    bool
}

type movedDelivery struct {
	di    uint32
	id    uint64
	fresh bool
}

// compactStep copies the live records of the next chunk of the segment
// being compacted, and deletes it once all are copied.
func (q *Queue) compactStep() error {
	seg := q.w.compSeg
	q.mu.Lock()
	sf := q.seg.files[seg]
	q.mu.Unlock()
	if sf == nil || seg >= q.seg.last {
		q.w.compSeg = 0
		return nil
	}
	if q.w.compOff < headerSize {
		q.w.compOff = headerSize
	}
	start := q.w.compOff
	sc := &scanner{f: sf.f, size: sf.size, buf: q.w.scanBuf, pos: start, bufOff: start}
	if len(sc.buf) < scanBuffer {
		sc.buf = make([]byte, scanBuffer)
	}
	var out []byte
	var moves []move
	for len(out) < compactChunk {
		off, typ, body, err := sc.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			l := loc{uint32(seg), uint32(off)}
			frame := int(sc.pos - off)
			switch typ {
			case recEvent:
				out, moves, err = q.copyEvent(out, moves, l, frame, body)
			case recRaw:
				out, moves = q.copyRaw(out, moves, l, body)
			}
		}
		if err != nil {
			q.w.compSeg, q.w.compBroken = 0, seg
			q.log.Error("could not compact a queue segment; it is kept, and checked at the next start",
				"file", q.seg.name(seg), "err", err)
			return err
		}
	}
	q.w.scanBuf = sc.buf
	if len(out) > 0 {
		// Not fsynced: the originals stay until a checkpoint (which syncs)
		// lets their segment go.
		n, base, err := q.write(out, false)
		if err != nil {
			return err // the same chunk again later
		}
		q.applyMoves(moves, n, base)
	}
	q.w.compOff = sc.pos
	if sc.pos >= sf.size {
		q.w.compSeg = 0
		q.mu.Lock()
		left := sf.liveRecs
		q.mu.Unlock()
		if left > 0 {
			q.w.compBroken = seg
			q.log.Warn("a compacted queue segment still holds live records; it is kept", "file", q.seg.name(seg), "records", left)
		}
		q.reclaim()
		if q.seg.first > seg && q.wantsCompaction() {
			q.w.compSeg, q.w.compOff = q.seg.first, 0 // the next oldest
		}
	}
	return nil
}

// copyEvent appends a copy of the event record at l if it is live there.
func (q *Queue) copyEvent(out []byte, moves []move, l loc, frame int, body []byte) ([]byte, []move, error) {
	var h eventHead
	rd := reader{b: body}
	rd.eventHead(&h)
	if rd.err != nil {
		out, moves = q.copyRaw(out, moves, l, nil)
		return out, moves, nil
	}
	evPart := rd.rest()
	type cur struct {
		movedDelivery
		sink   string
		state  uint8
		queued int64
		detail loc
	}
	var dels []cur
	var ei uint32
	q.mu.Lock()
	live := false
	for _, d := range h.deliveries {
		if di, ok := q.st.ids.find(&q.st.dels, d.id); ok {
			ds := q.st.dels.at(di)
			if q.st.events.at(ds.ev).loc == l {
				ei, live = ds.ev, true
			}
			break
		}
	}
	if live {
		for _, d := range h.deliveries {
			di, ok := q.st.ids.find(&q.st.dels, d.id)
			if ds := q.st.dels.at(di); ok && ds.ev == ei {
				dels = append(dels, cur{movedDelivery{di, ds.id, ds.detail == loc{}}, q.st.sinks[ds.sink].name, ds.state, ds.at, ds.detail})
			}
		}
	}
	q.mu.Unlock()
	if !live {
		return out, moves, nil
	}
	nh := eventHead{copy: true}
	mv := move{ei: ei, old: l}
	for _, c := range dels {
		d := delivery{id: c.id, sink: c.sink, state: stFresh, queued: time.Unix(0, c.queued).UTC()}
		if c.detail != (loc{}) {
			det, err := q.detailFor(&h, l, c.detail, c.id)
			if err != nil {
				return out, moves, err
			}
			d.detail, d.state = det, stTried
		}
		if c.state == dDead {
			d.state, d.queued = stDead, time.Time{}
		}
		nh.deliveries = append(nh.deliveries, d)
		mv.dels = append(mv.dels, c.movedDelivery)
	}
	b, start := beginFrame(out, recEvent)
	b = appendEventHead(b, &nh)
	out = endFrame(append(b, evPart...), start)
	mv.at, mv.n = start, len(out)-start
	return out, append(moves, mv), nil
}

// detailFor reads a delivery's state for a copy: from the record being
// copied when it holds it, else from its own record.
func (q *Queue) detailFor(h *eventHead, l, at loc, id uint64) (detail, error) {
	if at == l {
		for _, d := range h.deliveries {
			if d.id == id {
				return d.detail, nil
			}
		}
		return detail{}, fmt.Errorf("event record does not list delivery %d", id)
	}
	b, err := q.readFrameAt(at, 0)
	if err != nil {
		return detail{}, err
	}
	return detailIn(b, id)
}

// copyRaw copies an unreadable record kept as a dead letter, if it is one
// at l: as a raw record carrying its id, time of death and bytes.
func (q *Queue) copyRaw(out []byte, moves []move, l loc, rawBody []byte) ([]byte, []move) {
	var id uint64
	if rawBody != nil {
		rd := reader{b: rawBody}
		id = rd.uvarint()
	} else {
		id = 1<<63 | uint64(l.seg)<<32 | uint64(l.off)
	}
	q.mu.Lock()
	di, ok := q.st.ids.find(&q.st.dels, id)
	ds := q.st.dels.at(di)
	if !ok || !ds.raw || q.st.events.at(ds.ev).loc != l {
		q.mu.Unlock()
		return out, moves
	}
	ei, evN := ds.ev, q.st.events.at(ds.ev).n
	var deadAt int64
	if r, ok := q.deadRef(id); ok {
		deadAt = r.at
	}
	q.mu.Unlock()
	frame, err := q.readFrameAt(l, evN)
	if err != nil {
		return out, moves
	}
	if rawBody != nil {
		frame = rawInner(frame)
	}
	b, start := beginFrame(out, recRaw)
	b = binary.AppendUvarint(b, id)
	b = appendTime(b, time.Unix(0, deadAt).UTC())
	out = endFrame(append(b, frame...), start)
	return out, append(moves, move{ei: ei, old: l, at: start, n: len(out) - start, raw: true, rawDel: di})
}

// rawInner returns the original bytes a raw record carries.
func rawInner(frame []byte) []byte {
	_, body, err := checkFrame(frame)
	if err != nil {
		return frame
	}
	rd := reader{b: body}
	rd.uvarint()
	rd.time()
	if rd.err != nil {
		return frame
	}
	return rd.rest()
}

// applyMoves points the copied events and their deliveries at the copies.
func (q *Queue) applyMoves(moves []move, seg uint32, base int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, mv := range moves {
		es := q.st.events.at(mv.ei)
		if es.loc != mv.old {
			continue
		}
		nl := loc{seg, uint32(base) + uint32(mv.at)}
		for _, md := range mv.dels {
			ds := q.st.dels.at(md.di)
			if ds.id != md.id || ds.ev != mv.ei {
				continue
			}
			q.retireDetail(ds, es)
			if !md.fresh || ds.state == dDead {
				ds.detail = nl
			}
			if ds.state != dDead {
				// Its sink counts the event at its new length.
				q.st.sinks[ds.sink].bytes += int64(mv.n) - int64(es.n)
			}
		}
		if sf := q.seg.files[uint64(es.seg)]; sf != nil {
			sf.liveRecs--
			sf.liveBytes -= int64(es.n)
		}
		es.loc = nl
		q.resize(es, uint32(mv.n))
		if sf := q.seg.files[uint64(seg)]; sf != nil {
			sf.liveRecs++
			sf.liveBytes += int64(mv.n)
		}
	}
}

// reclaim deletes the oldest segments once nothing in them is live and
// their dedup keys are saved elsewhere. The checkpoint naming the new
// first segment is written before any file goes.
func (q *Queue) reclaim() {
	q.mu.Lock()
	first := q.seg.first
	for first < q.seg.last && first < q.w.dedupSeg {
		if sf := q.seg.files[first]; sf != nil && sf.liveRecs > 0 {
			break
		}
		first++
	}
	q.mu.Unlock()
	if first == q.seg.first {
		return
	}
	old := q.seg.first
	q.seg.first = first
	if err := q.checkpoint(); err != nil {
		q.seg.first = old
		q.writeFailed(err)
		return
	}
	q.mu.Lock()
	for n := old; n < first; n++ {
		if sf := q.seg.files[n]; sf != nil {
			delete(q.seg.files, n)
			sf.doomed = true
			if sf.refs == 0 {
				sf.f.Close()
			}
		}
	}
	q.mu.Unlock()
	for n := old; n < first; n++ {
		if err := q.fs.Remove(q.seg.name(n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			q.log.Warn("could not delete a queue segment no longer needed; delete it by hand", "file", q.seg.name(n), "err", err)
		}
	}
}

// rollIfEmpty starts a new segment when nothing is live and the head has
// grown, so that a drained backlog's space is given back.
func (q *Queue) rollIfEmpty() {
	q.mu.Lock()
	empty := q.st.bytes == 0 && q.st.deadBytes == 0 && q.st.reserved == 0
	q.mu.Unlock()
	if empty && q.seg.size > 1<<20 {
		if err := q.rollSegment(); err != nil {
			q.writeFailed(err)
		}
	}
}

// Compact rewrites everything live into fresh segments and deletes the
// rest: `switchboard queue compact`, for a stopped daemon's queue. It
// returns the bytes the queue's files took before and after.
func (q *Queue) Compact() (before, after int64, err error) {
	err = q.barrierOp(func() error {
		// Offline, zeros ahead of the end buy nothing, and would count in
		// the sizes it reports.
		q.seg.stopFill()
		before = q.DiskBytes()
		if q.seg.size > headerSize {
			if err := q.rollSegment(); err != nil {
				return err
			}
		}
		// Every key is saved in the dedup chunks first, so that no old
		// segment is kept for its keys.
		if err := q.flushDedup(q.now()); err != nil {
			return err
		}
		end := q.seg.last // the copies go after it
		for seg := q.seg.first; seg < end; seg++ {
			q.w.compSeg, q.w.compOff = seg, 0
			for q.w.compSeg == seg {
				if err := q.compactStep(); err != nil {
					return err
				}
			}
		}
		if err := q.flushDedup(q.now()); err != nil {
			return err
		}
		q.reclaim()
		q.reclaimDedup(q.now())
		return q.checkpoint()
	})
	return before, q.DiskBytes(), err
}

// DiskBytes is the size of the queue's files.
func (q *Queue) DiskBytes() int64 {
	names, err := q.fs.ReadDir(q.dir)
	if err != nil {
		return 0
	}
	var total int64
	for _, name := range names {
		_, seg := q.seg.parseName(name)
		_, ddp := q.w.ddp.parseName(name)
		if !seg && !ddp && name != stateFile {
			continue
		}
		if f, err := q.fs.OpenFile(path(q.dir, name), 0, 0); err == nil {
			if n, err := f.Size(); err == nil {
				total += n
			}
			f.Close()
		}
	}
	return total
}
