package logqueue

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"switchboard/router"
)

// ListDead implements router.DeadLetters: a page of dead letters, newest
// first. Each item is read from its records (one or two preads), so a page
// costs its size, not the number of dead letters.
func (q *Queue) ListDead(query router.DeadQuery) (router.DeadPage, error) {
	limit := query.Limit
	if limit <= 0 {
		limit = router.DefaultDeadPage
	}
	before := uint64(1<<64 - 1)
	if query.Cursor != "" {
		c, ok := strings.CutPrefix(query.Cursor, "d")
		n, err := strconv.ParseUint(c, 36, 64)
		if !ok || err != nil {
			return router.DeadPage{}, fmt.Errorf("%w: %q", router.ErrBadCursor, query.Cursor)
		}
		before = n
	}
	text := strings.ToLower(query.Text)
	var page router.DeadPage
	for len(page.Items) < limit {
		batch := q.deadBefore(before, query.Sink, 64)
		if len(batch) == 0 {
			return page, nil
		}
		for _, c := range batch {
			before = c.seq
			dl, err := q.describe(c, false)
			if err != nil {
				return page, err
			}
			if dl == nil || text != "" && !strings.Contains(strings.ToLower(dl.LastError), text) {
				continue
			}
			page.Items = append(page.Items, *dl)
			if len(page.Items) == limit {
				break
			}
		}
	}
	if len(q.deadBefore(before, query.Sink, 1)) > 0 {
		page.NextCursor = "d" + strconv.FormatUint(before, 36)
	}
	return page, nil
}

// deadRef is what describing a dead letter needs, taken under the lock.
type deadRef struct {
	seq    uint64
	id     uint64
	sink   string
	at     int64
	raw    bool
	evLoc  loc
	evN    uint32
	detail loc
}

// deadBefore returns up to n current dead letters of sink ("" for any)
// older than the one numbered before, newest first.
func (q *Queue) deadBefore(before uint64, sink string, n int) []deadRef {
	q.mu.Lock()
	defer q.mu.Unlock()
	list := q.st.dead.list
	i, _ := slices.BinarySearchFunc(list, before, func(e deadEntry, t uint64) int { return cmp.Compare(e.seq, t) })
	var out []deadRef
	for i--; i >= 0 && len(out) < n; i-- {
		_, ds := q.current(list[i])
		if ds == nil {
			continue
		}
		name := q.st.sinks[ds.sink].name
		if sink != "" && name != sink {
			continue
		}
		out = append(out, q.refOf(list[i], ds))
	}
	return out
}

func (q *Queue) refOf(e deadEntry, ds *dslot) deadRef {
	es := q.st.events.at(ds.ev)
	return deadRef{seq: e.seq, id: ds.id, sink: q.st.sinks[ds.sink].name, at: e.at, raw: ds.raw,
		evLoc: es.loc, evN: es.n, detail: ds.detail}
}

// describe reads a dead letter's records. A record that cannot be read
// does not hide the dead letter: it is described with the error and, for
// GetDead, its raw bytes.
func (q *Queue) describe(r deadRef, withEvent bool) (*router.DeadLetter, error) {
	dl := &router.DeadLetter{ID: strconv.FormatUint(r.id, 10), Sink: r.sink, DeadAt: time.Unix(0, r.at).UTC()}
	frame, err := q.readFrameAt(r.evLoc, r.evN)
	if err != nil {
		return nil, err
	}
	if r.raw {
		frame = rawInner(frame)
	}
	ev, _, decErr := decodeEventFrame(frame)
	if decErr == nil {
		dl.EventID, dl.Source, dl.EventName = ev.ID, ev.Source, ev.Event
		if withEvent {
			dl.Event = ev
		}
	}
	if r.detail != (loc{}) {
		var det detail
		if r.detail == r.evLoc {
			det, err = detailIn(frame, r.id)
		} else {
			var b []byte
			if b, err = q.readFrameAt(r.detail, 0); err == nil {
				det, err = detailIn(b, r.id)
			}
		}
		if err == nil {
			dl.Attempts, dl.FirstTry, dl.LastTry, dl.LastError = det.attempts, det.firstTry, det.lastTry, det.lastError
		} else if decErr == nil {
			decErr = err
		}
	}
	if decErr != nil {
		if dl.LastError == "" || r.raw {
			dl.LastError = "unreadable: " + decErr.Error()
		}
		if withEvent {
			dl.Raw = frame
		}
	}
	return dl, nil
}

// readFrameAt reads a frame wherever it is, keeping its file open meanwhile.
func (q *Queue) readFrameAt(l loc, n uint32) ([]byte, error) {
	q.mu.Lock()
	sf := q.ref(l.seg)
	q.mu.Unlock()
	defer q.unref(sf)
	return q.readFrame(sf, l, n)
}

func (q *Queue) readEventAt(l loc, n uint32) (*router.Event, error) {
	b, err := q.readFrameAt(l, n)
	if err != nil {
		return nil, err
	}
	ev, _, err := decodeEventFrame(b)
	return ev, err
}

// GetDead implements router.DeadLetters.
func (q *Queue) GetDead(id string) (*router.DeadLetter, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return nil, router.ErrNotFound
	}
	q.mu.Lock()
	r, ok := q.deadRef(n)
	q.mu.Unlock()
	if !ok {
		return nil, router.ErrNotFound
	}
	return q.describe(r, true)
}

// deadRef finds a current dead letter by id. q.mu held.
func (q *Queue) deadRef(id uint64) (deadRef, bool) {
	di, ok := q.st.ids.find(&q.st.dels, id)
	if !ok {
		return deadRef{}, false
	}
	ds := q.st.dels.at(di)
	if ds.state != dDead {
		return deadRef{}, false
	}
	l := q.st.dead.list
	i, found := slices.BinarySearchFunc(l, uint64(ds.at), func(e deadEntry, t uint64) int { return cmp.Compare(e.seq, t) })
	if !found {
		return deadRef{}, false
	}
	return q.refOf(l[i], ds), true
}

// selectDead resolves dead-letter ids (nil: all of them).
func (q *Queue) selectDead(ids []string) ([]uint64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []uint64
	if ids == nil {
		for _, e := range q.st.dead.list {
			if _, ds := q.current(e); ds != nil {
				out = append(out, ds.id)
			}
		}
		return out, nil
	}
	for _, s := range ids {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s", router.ErrNotFound, s)
		}
		if _, ok := q.deadRef(n); !ok {
			return nil, fmt.Errorf("%w: %s", router.ErrNotFound, s)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// barrier runs fn in the writer once every earlier operation is written.
func (q *Queue) barrierOp(fn func() error) error {
	o := &op{kind: opBarrier, fin: make(chan struct{}), run: fn}
	if err := q.submit(o); err != nil {
		return err
	}
	<-o.fin
	return o.err
}

// Purge implements router.DeadLetters.
func (q *Queue) Purge(ids []string) (int, error) {
	var n int
	err := q.barrierOp(func() error {
		sel, err := q.selectDead(ids)
		if err != nil {
			return err
		}
		n, err = q.removeDead(sel, recPurge)
		return err
	})
	return n, err
}

// removeDead deletes dead letters (purged or dropped), in the writer.
func (q *Queue) removeDead(ids []uint64, typ byte) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	if _, _, err := q.write(idRecords(typ, ids, nil), true); err != nil {
		return 0, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, id := range ids {
		di, ok := q.st.ids.find(&q.st.dels, id)
		if ds := q.st.dels.at(di); ok && ds.state == dDead {
			q.freeDelivery(di, ds)
			q.forgetDead()
			n++
		}
	}
	q.publish()
	return n, nil
}

// idRecords frames a list of delivery ids in records of bounded size;
// prefix, when set, is written before the ids of each (replay's time).
func idRecords(typ byte, ids []uint64, prefix []byte) []byte {
	var b []byte
	for len(ids) > 0 {
		n := min(len(ids), 1<<16)
		var start int
		b, start = beginFrame(b, typ)
		b = append(b, prefix...)
		b = endFrame(appendIDs(b, ids[:n]), start)
		ids = ids[n:]
	}
	return b
}

// Replay implements router.DeadLetters: each dead letter becomes a pending
// delivery again, due now, with a fresh attempt count.
func (q *Queue) Replay(ids []string) (int, error) {
	var n int
	err := q.barrierOp(func() error {
		sel, err := q.selectDead(ids)
		if err != nil {
			return err
		}
		if len(sel) == 0 {
			return nil
		}
		now := q.now()
		if _, _, err := q.write(idRecords(recReplay, sel, appendTime(nil, now)), true); err != nil {
			return err
		}
		q.mu.Lock()
		for _, id := range sel {
			if di, ok := q.st.ids.find(&q.st.dels, id); ok {
				if ds := q.st.dels.at(di); ds.state == dDead {
					q.revive(di, ds, now.UnixNano())
					n++
				}
			}
		}
		q.publish()
		q.mu.Unlock()
		return nil
	})
	return n, err
}

// revive makes a dead letter a fresh pending delivery, due now. q.mu held.
func (q *Queue) revive(di uint32, ds *dslot, now int64) {
	q.reviveState(ds, now)
	q.schedule(di, ds, now)
}

// reviveState makes a dead letter a fresh pending delivery without
// scheduling it.
func (q *Queue) reviveState(ds *dslot, now int64) {
	es := q.st.events.at(ds.ev)
	q.retireDetail(ds, es)
	es.dead--
	es.pending++
	q.account(es, es.pending-1, es.dead+1)
	s := q.st.sinks[ds.sink]
	s.dead--
	s.bytes += int64(es.n)
	ds.raw = false
	q.forgetDead()
	ds.at = now
	ds.state = dReady
	q.touch(ds.sink)
}

// DeadLetterSinks moves every queued delivery of a sink for which keep is
// false to the dead letters, with reason as the error ("sink removed"),
// keeping its attempts. Deliveries in flight are left to their workers.
func (q *Queue) DeadLetterSinks(keep func(sink string) bool, reason string) (int, error) {
	var n int
	err := q.barrierOp(func() error {
		type victim struct {
			id     uint64
			evLoc  loc
			detail loc
		}
		var victims []victim
		q.mu.Lock()
		for _, s := range q.st.sinks {
			if keep(s.name) || s.ready.n+len(s.delayed) == 0 {
				continue
			}
			for c := range q.st.dels.chunks {
				for i := range q.st.dels.chunks[c] {
					ds := &q.st.dels.chunks[c][i]
					if (ds.state == dReady || ds.state == dDelayed) && q.st.sinks[ds.sink] == s {
						victims = append(victims, victim{ds.id, q.st.events.at(ds.ev).loc, ds.detail})
					}
				}
			}
		}
		q.mu.Unlock()
		if len(victims) == 0 {
			return nil
		}
		now := q.now()
		var buf []byte
		at := make([]int, len(victims))
		for i, v := range victims {
			det := detail{}
			if v.detail != (loc{}) {
				if b, err := q.readFrameAt(v.detail, 0); err == nil {
					det, _ = detailIn(b, v.id)
				}
			}
			det.at, det.lastError = now, reason
			at[i] = len(buf)
			buf = append(buf, encodeDetailRecord(recDead, v.id, &det)...)
		}
		seg, base, err := q.write(buf, true)
		if err != nil {
			return err
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		moved := map[uint32]bool{}
		for i, v := range victims {
			di, ok := q.st.ids.find(&q.st.dels, v.id)
			ds := q.st.dels.at(di)
			if !ok || (ds.state != dReady && ds.state != dDelayed) {
				continue
			}
			moved[di] = true
			end := len(buf)
			if i+1 < len(at) {
				end = at[i+1]
			}
			q.bury(ds, loc{seg, uint32(base) + uint32(at[i])}, end-at[i], now.UnixNano())
			n++
		}
		for _, s := range q.st.sinks {
			s.ready.filter(func(di uint32) bool { return !moved[di] })
			s.delayed.filter(func(d delayed) bool { return !moved[d.slot] })
		}
		q.publish()
		return nil
	})
	return n, err
}
