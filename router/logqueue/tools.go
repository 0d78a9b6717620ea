package logqueue

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Offline tools for a stopped daemon's queue: Check verifies it, Salvage
// copies whatever can be read into a new queue. Both lock the directory,
// so they refuse to run beside a daemon.

// Report is what Check or Salvage found.
type Report struct {
	Segments, DedupFiles int
	Bytes                int64          // size of the queue's files
	Pending              map[string]int // deliveries queued, by sink
	Dead                 map[string]int // dead letters, by sink
	Events               int            // events stored
	Remembered           int            // (source, id) keys remembered
	// TornBytes is a crash's unsynced tail that a start would cut off:
	// not damage.
	TornBytes int64
	// Unreadable counts records intact on disk that this build cannot
	// decode (Check): a start makes dead letters of them, raw bytes kept.
	Unreadable int
	// Damaged lists the places that could not be read (Salvage).
	Damaged []string
	// DamagedBytes is how many bytes those places held.
	DamagedBytes int64
}

// Check verifies the queue in opts.Dir as Open would, changing nothing. It
// returns the *DamageError Open would return, with what it could count.
func Check(opts Options) (*Report, error) {
	q := newQueue(opts)
	q.readOnly = true
	q.report = &Report{}
	lock, err := q.lockDir()
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	defer q.closeFiles()
	d, err := q.list()
	if err != nil {
		return nil, err
	}
	if len(d.segs) == 0 && len(d.ddps) == 0 && !d.state && !d.old {
		return nil, fmt.Errorf("queue.dir %s holds no queue", q.dir)
	}
	r, err := q.load()
	if err != nil {
		return q.report, err
	}
	q.report.Unreadable += len(r.unreadable)
	q.count(q.report)
	q.report.Bytes = q.DiskBytes()
	return q.report, nil
}

func (q *Queue) lockDir() (io.Closer, error) {
	lock, err := q.fs.Lock(path(q.dir, lockName))
	if errors.Is(err, ErrLocked) {
		return nil, fmt.Errorf("queue.dir %s is in use by a running switchboard; stop it first", q.dir)
	}
	if err != nil {
		return nil, q.lockError(err)
	}
	return lock, nil
}

func (q *Queue) closeFiles() {
	q.mu.Lock()
	q.seg.closeAll()
	q.mu.Unlock()
	q.w.ddp.closeAll()
}

// count fills r from memory.
func (q *Queue) count(r *Report) {
	q.mu.Lock()
	defer q.mu.Unlock()
	r.Segments = len(q.seg.files)
	r.DedupFiles = int(q.w.ddp.last - q.w.ddp.first + 1)
	r.Pending, r.Dead = map[string]int{}, map[string]int{}
	for _, s := range q.st.sinks {
		if n := s.pending(); n > 0 {
			r.Pending[s.name] = n
		}
		if s.dead > 0 {
			r.Dead[s.name] = s.dead
		}
	}
	r.Events = int(q.st.events.n) - len(q.st.events.free)
	r.Remembered = q.st.dedup.n
}

// Salvage reads every record it can from the queue in opts.Dir, whatever
// the damage (a missing checkpoint, missing or truncated files, garbage),
// and writes what it found into a new queue in dir, which must not exist
// or be empty. Records in damaged places are lost: an event there is gone,
// an acknowledgement there means a delivery is made again. The original
// is not changed.
func Salvage(opts Options, dir string) (*Report, error) {
	q := newQueue(opts)
	if names, err := q.fs.ReadDir(dir); err == nil && len(names) > 0 {
		return nil, fmt.Errorf("%s is not empty; salvage into a new directory", dir)
	}
	q.readOnly = true
	r := &Report{}
	q.report = r
	lock, err := q.lockDir()
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	defer q.closeFiles()
	d, err := q.list()
	if err != nil {
		return nil, err
	}
	rs := &replayState{now: q.now()}
	q.salvageLane(&q.w.ddp, d.ddps, rs, q.replayDedup)
	// Keys found in segments are saved with everything else.
	rs.dedupSeg, rs.dedupOff = 0, 0
	q.salvageLane(&q.seg, d.segs, rs, q.replay)
	q.finishReplay(rs, checkpoint{})
	for _, u := range rs.unreadable {
		q.mu.Lock()
		if di, ok := q.st.ids.find(&q.st.dels, u.id); ok {
			ds := q.st.dels.at(di)
			if ds.state == dReady || ds.state == dDelayed {
				q.filterOut(ds.sink, di)
				ds.state = dInFlight
				q.st.sinks[ds.sink].inFlight++
				q.bury(ds, loc{}, 0, rs.now.UnixNano())
				q.st.sinks[ds.sink].inFlight--
			}
		}
		q.mu.Unlock()
	}
	q.count(r)
	r.Bytes = q.DiskBytes()
	if err := q.exportTo(dir); err != nil {
		return r, err
	}
	return r, nil
}

// filterOut removes a slot from its sink's lists. q.mu held.
func (q *Queue) filterOut(si uint16, di uint32) {
	s := q.st.sinks[si]
	s.ready.filter(func(v uint32) bool { return v != di })
	s.delayed.filter(func(d delayed) bool { return d.slot != di })
}

// salvageLane reads every lane file present, in order, skipping what
// cannot be read and noting it in the report.
func (q *Queue) salvageLane(l *lane, present []uint64, rs *replayState, apply applyFunc) {
	r := q.report
	if len(present) > 0 {
		l.first, l.last = present[0], present[len(present)-1]
	}
	var buf []byte
	for i, n := range present {
		name := l.name(n)
		if i > 0 && n != present[i-1]+1 {
			r.Damaged = append(r.Damaged, fmt.Sprintf("%s to %s are missing", l.name(present[i-1]+1), l.name(n-1)))
		}
		f, err := q.fs.OpenFile(name, os.O_RDONLY, 0)
		if err != nil {
			r.Damaged = append(r.Damaged, fmt.Sprintf("%s cannot be opened: %v", name, err))
			continue
		}
		size, _ := f.Size()
		if l.files != nil {
			l.files[n] = &segFile{f: f, size: size}
		} else {
			defer f.Close()
		}
		hdr := make([]byte, min(size, headerSize))
		f.ReadAt(hdr, 0)
		if _, err := decodeHeader(hdr, l.kind); err != nil {
			r.Damaged = append(r.Damaged, fmt.Sprintf("%s: %v", name, err))
			r.DamagedBytes += int64(len(hdr))
		}
		sc := newScanner(f, size, make([]byte, headerSize), buf)
		for {
			off, typ, body, err := sc.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err == nil {
				if aerr := apply(rs, n, off, int(sc.pos-off), typ, body); aerr != nil {
					r.Damaged = append(r.Damaged, fmt.Sprintf("%s at offset %d: %v", name, off, aerr))
				}
				continue
			}
			if i == len(present)-1 && zerosFrom(f, off, size) {
				break // the zeros kept ahead of the log's end (fill.go)
			}
			next := nextIntactFrame(f, off+1, size)
			if next < 0 {
				next = size
			}
			r.Damaged = append(r.Damaged, fmt.Sprintf("%s: %d bytes from offset %d: %v", name, next-off, off, err))
			r.DamagedBytes += next - off
			sc.skipTo(next)
		}
		buf = sc.buf
	}
}

// exportTo writes everything live into a new queue in dir: each event with
// its deliveries' state, the dead letters, and the remembered keys.
func (q *Queue) exportTo(dir string) error {
	if err := q.fs.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	to := newQueue(Options{Dir: dir, FS: q.fs, Log: q.log, Now: q.now})
	lock, err := to.lockDir()
	if err != nil {
		return err
	}
	defer lock.Close()
	defer to.closeFiles()
	if err := to.create(); err != nil {
		return err
	}
	if err := q.exportEvents(to); err != nil {
		return err
	}
	if err := q.exportKeys(to); err != nil {
		return err
	}
	to.st.nextID = q.st.nextID
	return to.checkpoint()
}

// exportEvents writes a copy of every live event into to's log.
func (q *Queue) exportEvents(to *Queue) error {
	var events []uint32
	for c := range q.st.events.chunks {
		for i := range q.st.events.chunks[c] {
			if es := &q.st.events.chunks[c][i]; es.n > 0 && (es.pending > 0 || es.dead > 0) {
				events = append(events, uint32(c<<chunkBits+i))
			}
		}
	}
	// In log order, so that the new queue delivers in the old order.
	slices.SortFunc(events, func(a, b uint32) int {
		x, y := q.st.events.at(a).loc, q.st.events.at(b).loc
		if x.seg != y.seg {
			return cmp.Compare(x.seg, y.seg)
		}
		return cmp.Compare(x.off, y.off)
	})
	var out []byte
	flush := func() error {
		if len(out) == 0 {
			return nil
		}
		if to.seg.size > headerSize && to.seg.size+int64(len(out)) > to.w.segSize {
			if err := to.seg.roll(); err != nil {
				return err
			}
		}
		_, err := to.seg.append(out)
		out = out[:0]
		return err
	}
	for _, ei := range events {
		es := q.st.events.at(ei)
		sf := q.seg.files[uint64(es.seg)]
		frame, err := q.readFrame(sf, es.loc, es.n)
		if err != nil {
			return err
		}
		typ, body, err := checkFrame(frame)
		if err != nil {
			return err
		}
		if typ == recRaw {
			out = append(out, frame...)
		} else {
			var moves []move
			if out, moves, err = q.copyEvent(out, moves, es.loc, len(frame), body); err != nil {
				return err
			}
			if len(moves) == 0 {
				out, _ = q.copyRaw(out, nil, es.loc, nil)
			}
		}
		if len(out) >= compactChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return to.seg.sync()
}

// exportKeys writes the remembered keys into to's dedup chunks, each kept
// until the end of its generation (a little longer than its horizon).
func (q *Queue) exportKeys(to *Queue) error {
	var keys []dedupEntry
	for _, s := range q.st.dedup.sets {
		for _, g := range s.gens {
			g.keys.each(func(k dedupKey) {
				keys = append(keys, dedupEntry{key: k, expiry: g.last + s.horizon, horizon: s.horizon})
			})
		}
	}
	to.mu.Lock()
	to.st.fresh = keys
	to.mu.Unlock()
	to.w.dedupSeg = to.seg.last
	return to.flushDedup(time.Now())
}
