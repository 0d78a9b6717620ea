package logqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"time"

	"switchboard/router"
)

// DamageError is a queue file that cannot be trusted: the start stops with
// it, since going on could lose or resurrect events.
type DamageError struct {
	Dir     string
	File    string // the damaged file, or the missing one
	Problem string
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("queue file %s is damaged: %s. Restore %s from a backup; or run "+
		"\"switchboard queue salvage --to NEWDIR\" to copy every readable record into a new queue and point "+
		"queue.dir at NEWDIR; or move %s aside to start with an empty queue", e.File, e.Problem, e.Dir, e.Dir)
}

func (q *Queue) damage(file, format string, args ...any) error {
	return &DamageError{Dir: q.dir, File: file, Problem: fmt.Sprintf(format, args...)}
}

// lockError says what to do about a lock file that cannot be taken: it
// holds no data, so anything in its place can go.
func (q *Queue) lockError(err error) error {
	return fmt.Errorf("queue.dir %s: cannot take its lock file %s: %w; it holds no data: if it is not a file, remove it (switchboard creates it again), and let the user switchboard runs as write in %s",
		q.dir, lockName, unwrapPathErr(err), q.dir)
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Open opens the queue in opts.Dir, creating it if needed, checks every
// file and rebuilds the schedule by reading the log once.
func Open(opts Options) (*Queue, error) {
	q := newQueue(opts)
	if err := q.fs.MkdirAll(q.dir, 0o750); err != nil {
		return nil, fmt.Errorf("queue.dir %s: %w", q.dir, err)
	}
	lock, err := q.fs.Lock(path(q.dir, lockName))
	if errors.Is(err, ErrLocked) {
		return nil, fmt.Errorf("queue.dir %s is in use by another switchboard process (one daemon per queue.dir): stop it, or give this one its own queue.dir", q.dir)
	}
	if err != nil {
		return nil, q.lockError(err)
	}
	q.lock = lock
	r, err := q.load()
	if err != nil {
		q.mu.Lock()
		q.seg.closeAll()
		q.mu.Unlock()
		q.w.ddp.closeAll()
		lock.Close()
		return nil, err
	}
	q.seg.startFill(fillWindow, q.w.segSize)
	go q.run()
	q.buryUnreadable(r.unreadable)
	return q, nil
}

func newQueue(opts Options) *Queue {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.FS == nil {
		opts.FS = OS
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.HotBytes == 0 {
		opts.HotBytes = DefaultHotBytes
	}
	q := &Queue{opts: opts, log: opts.Log, fs: opts.FS, dir: opts.Dir, now: opts.Now,
		ops: make(chan *op, 4096), closing: make(chan struct{}), writerDone: make(chan struct{}),
		doneKick: make(chan struct{}, 1)}
	q.st.sinkIdx = map[string]uint16{}
	q.intern = q.internSink
	q.st.hot = map[uint32]*router.Event{}
	q.st.pendingKeys = map[dedupKey]*op{}
	q.seg = lane{fs: q.fs, dir: q.dir, prefix: "seg", kind: kindQueue, files: map[uint64]*segFile{}}
	q.w.ddp = lane{fs: q.fs, dir: q.dir, prefix: "ddp", kind: kindDedup}
	q.w.ddpExpiry = map[uint64]int64{}
	q.w.segSize = opts.SegmentSize
	if m := opts.Metrics; m != nil && m.MaxBytes != nil {
		m.MaxBytes.Set(float64(opts.MaxBytes))
	}
	return q
}

// replayState is what the start collects while it reads the log.
type replayState struct {
	head       eventHead // reused for every event record
	now        time.Time
	due        []int64 // per delivery slot: when a retried delivery is due
	maxID      uint64
	dedupSeg   uint64
	dedupOff   int64
	unreadable []unreadableDelivery
	stale      []string // files left over from before the checkpoint
}

type unreadableDelivery struct {
	id  uint64
	err error
}

// dirListing is what queue.dir holds.
type dirListing struct {
	segs, ddps []uint64
	state, old bool
}

func (q *Queue) list() (dirListing, error) {
	var d dirListing
	names, err := q.fs.ReadDir(q.dir)
	if err != nil {
		return d, fmt.Errorf("queue.dir %s: %w", q.dir, err)
	}
	for _, name := range names {
		if n, ok := q.seg.parseName(name); ok {
			d.segs = append(d.segs, n)
		} else if n, ok := q.w.ddp.parseName(name); ok {
			d.ddps = append(d.ddps, n)
		}
		switch name {
		case stateFile:
			d.state = true
		case oldQueueFile:
			d.old = true
		}
	}
	slices.Sort(d.segs)
	slices.Sort(d.ddps)
	return d, nil
}

// load checks every file and rebuilds memory from them.
func (q *Queue) load() (*replayState, error) {
	r := &replayState{now: q.now()}
	d, err := q.list()
	if err != nil {
		return nil, err
	}
	if d.old {
		return nil, q.oldQueue()
	}
	if q.readOnly {
		q.report.Segments, q.report.DedupFiles = len(d.segs), len(d.ddps)
	}
	cp, err := readCheckpoint(q.fs, q.dir)
	if errors.Is(err, fs.ErrNotExist) {
		if len(d.segs) == 0 && len(d.ddps) == 0 {
			return r, q.create()
		}
		return nil, q.damage(path(q.dir, stateFile), "it is missing, but the directory holds %d queue files: without it "+
			"a complete file cannot be told from a truncated one", len(d.segs)+len(d.ddps))
	}
	if err != nil {
		return nil, q.damage(path(q.dir, stateFile), "%v", err)
	}
	r.dedupSeg, r.dedupOff = cp.dedupSeg, cp.dedupOff
	if err := q.openLane(&q.w.ddp, d.ddps, cp.ddpFirst, cp.ddpLast, cp.ddpSynced, r, q.replayDedup); err != nil {
		return nil, err
	}
	if err := q.openLane(&q.seg, d.segs, cp.segFirst, cp.segLast, cp.segSynced, r, q.replay); err != nil {
		return nil, err
	}
	q.finishReplay(r, cp)
	q.w.dedupSeg, q.w.dedupOff = cp.dedupSeg, cp.dedupOff
	q.w.ddpStarted = r.now
	if q.readOnly {
		return r, nil
	}
	for _, name := range r.stale {
		q.log.Info("deleting a queue file the last run no longer needed", "file", name)
		q.fs.Remove(name)
	}
	// The truncated tails and the files found after the checkpoint are
	// part of the queue now: say so before anything else is written.
	q.w.dirty = true
	return r, q.checkpoint()
}

// create starts an empty queue.
func (q *Queue) create() error {
	if err := q.seg.create(1, 0, 0); err != nil {
		return fmt.Errorf("queue.dir %s: %w", q.dir, err)
	}
	q.seg.files[1] = &segFile{f: q.seg.head}
	if err := q.w.ddp.create(1, 0, 0); err != nil {
		return fmt.Errorf("queue.dir %s: %w", q.dir, err)
	}
	q.st.nextID = 0
	return q.checkpoint()
}

// applyFunc applies one record of file n at off during the start.
type applyFunc func(r *replayState, n uint64, off int64, frame int, typ byte, body []byte) error

// openLane checks a lane's files against the checkpoint and each other,
// hands every record to apply in order, and leaves the last file open
// for appending, a torn tail cut off.
func (q *Queue) openLane(l *lane, present []uint64, first, last uint64, synced int64, r *replayState, apply applyFunc) error {
	end, err := q.laneRange(l, present, first, last, r)
	if err != nil {
		return err
	}
	l.first, l.last = first, end
	files, err := q.openFiles(l, first, end)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		// The queue's segments stay open for reads; of the dedup chunks,
		// only the head, for appends. closeAll closes what was kept.
		for i, lf := range files {
			n := first + uint64(i)
			if kept := l.files != nil && l.files[n] != nil || l.files == nil && ok && n == end; !kept {
				lf.f.Close()
			}
		}
	}()
	var prevCRC uint32
	var buf []byte
	for n := first; n <= end; n++ {
		lf := &files[n-first]
		if n < end {
			// The next file's header says how long this one was sealed.
			if sealed := int64(files[n+1-first].h.prevLen); lf.size != sealed {
				return q.damage(l.name(n), "it is %d bytes long, but it was %d bytes when it was sealed (%s says so): it was truncated or appended to",
					lf.size, sealed, l.name(n+1))
			}
		}
		if n > first && lf.h.prevCRC != prevCRC {
			return q.damage(l.name(n-1), "its content no longer matches the checksum taken when it was sealed (recorded in %s)", l.name(n))
		}
		// Past what is known to be on disk, a bad record is a crash's torn
		// write; before it, damage.
		mustHave := lf.size
		if n == end {
			mustHave = headerSize
			if n == last {
				mustHave = synced
			}
		}
		sf := &segFile{f: lf.f}
		if l.files != nil {
			l.files[n] = sf
		}
		sc, err := q.scanFile(l.name(n), lf, mustHave, buf, func(off int64, frame int, typ byte, body []byte) error {
			return apply(r, n, off, frame, typ, body)
		})
		if err != nil {
			return err
		}
		buf, prevCRC, sf.size = sc.buf, sc.crc, sc.pos
		if n == end {
			l.head, l.size, l.crc, l.synced = lf.f, sc.pos, sc.crc, sc.pos
		}
	}
	ok = true
	return nil
}

// laneRange checks that every file the checkpoint lists is there, finds
// the files started after it, and notes the ones left from before it.
func (q *Queue) laneRange(l *lane, present []uint64, first, last uint64, r *replayState) (uint64, error) {
	have := map[uint64]bool{}
	for _, n := range present {
		have[n] = true
	}
	for n := first; n <= last; n++ {
		if !have[n] {
			return 0, q.damage(l.name(n), "it is missing; the checkpoint lists files %d to %d", first, last)
		}
	}
	end := last
	for have[end+1] {
		end++ // started after the last checkpoint
	}
	for _, n := range present {
		switch {
		case n < first:
			r.stale = append(r.stale, l.name(n))
		case n > end:
			return 0, q.damage(l.name(end+1), "it is missing, but %s exists", l.name(n))
		}
	}
	return end, nil
}

// scanFile reads every record of a lane file, checking each. A bad record
// at or past mustHave is a torn tail and is cut off; before it, damage.
func (q *Queue) scanFile(name string, lf *laneFile, mustHave int64, buf []byte,
	apply func(off int64, frame int, typ byte, body []byte) error) (*scanner, error) {
	if lf.size < mustHave {
		return nil, q.damage(name, "it is %d bytes long, shorter than the %d bytes known to be on disk: it was truncated", lf.size, mustHave)
	}
	sc := newScanner(lf.f, lf.size, lf.hdr, buf)
	for {
		off, typ, body, err := sc.next()
		if errors.Is(err, io.EOF) {
			return sc, nil
		}
		var fe *frameError
		if errors.As(err, &fe) && off >= mustHave {
			q.tornTail(name, lf.f, sc, off, lf.size)
			return sc, nil
		}
		if err != nil {
			return nil, q.damage(name, "%v", err)
		}
		if err := apply(off, int(sc.pos-off), typ, body); err != nil {
			return nil, q.damage(name, "record at offset %d: %v", off, err)
		}
	}
}

// laneFile is a lane file opened and its header read.
type laneFile struct {
	f    File
	size int64
	h    fileHeader
	hdr  []byte
}

// openFiles opens a lane's files and checks their headers, so that each
// file's sealed length is known before it is read.
func (q *Queue) openFiles(l *lane, first, end uint64) ([]laneFile, error) {
	mode := os.O_RDWR
	if q.readOnly {
		mode = os.O_RDONLY
	}
	var out []laneFile
	fail := func(err error) ([]laneFile, error) {
		for _, lf := range out {
			lf.f.Close()
		}
		return nil, err
	}
	for n := first; n <= end; n++ {
		name := l.name(n)
		f, err := q.fs.OpenFile(name, mode, 0)
		if err != nil {
			return fail(q.damage(name, "it cannot be opened: %v", err))
		}
		out = append(out, laneFile{f: f})
		size, err := f.Size()
		if err != nil {
			return fail(q.damage(name, "its size cannot be read: %v", err))
		}
		if size == 0 {
			return fail(q.damage(name, "it is empty (0 bytes), but it should hold queue records"))
		}
		hdr := make([]byte, min(size, headerSize))
		if _, err := f.ReadAt(hdr, 0); err != nil && !errors.Is(err, io.EOF) {
			return fail(q.damage(name, "it cannot be read: %v", err))
		}
		h, err := decodeHeader(hdr, l.kind)
		if err != nil {
			return fail(q.damage(name, "%v", err))
		}
		if h.number != n {
			return fail(q.damage(name, "its header says it is file number %d: files were renamed, copied or swapped", h.number))
		}
		out[len(out)-1] = laneFile{f: f, size: size, h: h, hdr: hdr}
	}
	return out, nil
}

// tornTail cuts off what a crash left half-written past the synced length,
// saying how much went and whether anything intact followed it.
func (q *Queue) tornTail(name string, f File, sc *scanner, off, size int64) {
	if zerosFrom(f, off, size) {
		// The zeros written ahead of the log's end (fill.go): its clean
		// end, cut off quietly, as Close does.
		if !q.readOnly {
			if err := f.Truncate(off); err != nil {
				q.log.Warn("could not cut off the zeros past the end of a queue file; they are ignored", "file", name, "err", err)
			}
		}
		return
	}
	if q.readOnly {
		q.report.TornBytes += size - off
		return
	}
	intact := nextIntactFrame(f, off+1, size)
	if err := f.Truncate(off); err != nil {
		q.log.Error("could not cut off a torn write at the end of a queue file; it is ignored", "file", name, "err", err)
	}
	if intact >= 0 {
		q.log.Error("queue file ended in a torn write followed by intact records; everything from the tear on was discarded. "+
			"Nothing there was answered as stored unless the disk lost data it had confirmed",
			"file", name, "offset", off, "bytes_discarded", size-off, "intact_record_at", intact)
		return
	}
	q.log.Warn("queue file ended in a torn write (a crash during an unsynced write); cut off. Nothing there was answered as stored",
		"file", name, "offset", off, "bytes_discarded", size-off)
}

// zerosFrom reports whether f holds only zero bytes from off to size, and
// at least one.
func zerosFrom(f File, off, size int64) bool {
	if off >= size {
		return false
	}
	buf := make([]byte, min(size-off, 1<<20))
	for off < size {
		k, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if k == 0 && err != nil {
			return false
		}
		for _, c := range buf[:k] {
			if c != 0 {
				return false
			}
		}
		off += int64(k)
	}
	return true
}

// nextIntactFrame finds the first offset at or after from where a whole,
// checksummed record starts; -1 when there is none.
func nextIntactFrame(f File, from, size int64) int64 {
	const window = 1 << 20
	buf := make([]byte, window+frameHeader)
	for base := from; base < size; base += window {
		k, _ := f.ReadAt(buf[:min(int64(len(buf)), size-base)], base)
		for i := 0; i+frameHeader < k; i++ {
			n := int64(binary.LittleEndian.Uint32(buf[i:]))
			off := base + int64(i)
			if n == 0 || n > maxFrame || off+frameHeader+n > size {
				continue
			}
			if end := i + frameHeader + int(n); end <= k {
				if _, _, err := checkFrame(buf[i:end]); err == nil {
					return off
				}
			} else if frameAt(f, off, n) {
				return off
			}
		}
	}
	return -1
}

// frameAt reports whether an intact record of n bytes starts at off.
func frameAt(f File, off, n int64) bool {
	b := make([]byte, frameHeader+n)
	if _, err := f.ReadAt(b, off); err != nil {
		return false
	}
	_, _, err := checkFrame(b)
	return err == nil
}

// oldQueue refuses a queue.db of the previous version.
func (q *Queue) oldQueue() error {
	return fmt.Errorf("queue.dir %s holds queue.db, a queue of an earlier switchboard version, which this version "+
		"cannot read: run the earlier version until its queue is empty (its dead letters replayed or purged), "+
		"then move queue.db aside", q.dir)
}
