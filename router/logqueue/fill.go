package logqueue

import (
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A filler writes zeros ahead of the head segment's end, in the background,
// so that the group commit's fsync only overwrites blocks the file already
// has. An fsync after an append that grows a file must also allocate its
// blocks and journal its new size: on ext4 that is about twice the CPU time
// and the wait of an fsync that overwrites (80 against 45 µs of CPU, 150
// against 70 µs of wall time on the machine of the README's figures), and
// the group commit pays it several hundred times a second under load.
//
// What the zeros change on disk, and why it is safe:
//   - Past the head's logical end the file holds zeros. At start, a tail of
//     zeros is the log's clean end (see tornTail) and is cut off without a
//     warning; anything else there is still a torn write.
//   - A segment is cut back to its logical end before it is sealed, and on
//     Close, so sealed files are exactly as long as their records, as the
//     next file's header records.
//   - The filler never writes where the writer does: below zeroEnd only the
//     writer writes, and an append that reaches past zeroEnd takes mu, which
//     the filler holds while it writes zeros.
//   - The filler writes and fsyncs through a descriptor of its own: a failed
//     writeback is reported once per open file, and the writer's fsync must
//     see every failure of the pages it wrote, not find it taken by the
//     filler's.
type filler struct {
	fs     FS
	window int64 // how far ahead of the end zeros are kept
	limit  int64 // no zeros past this offset (the segment size)

	// mu is held by the filler while it writes zeros, and by the writer to
	// append past zeroEnd, to cut the file, or to change the head.
	mu   sync.Mutex
	head string // the name of the file being filled
	gen  uint64 // changes with head and with every cut: a fill of an older one is void
	// zeroEnd is how far the head is known to hold zeros or records that
	// the filler will not touch again; end is the head's logical end as the
	// writer last published it.
	zeroEnd, end atomic.Int64

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// fillChunk is the most the filler writes under mu at once, so that a
// writer that has to wait for it waits for little.
const fillChunk = 256 << 10

// fillRetry is how long the filler rests after a failed write or fsync (a
// full disk): the writer grows the file itself meanwhile.
const fillRetry = time.Second

// fillWindow is how far ahead of the head's end zeros are kept: at full
// load, a couple of seconds of appends. A variable for tests.
var fillWindow int64 = 4 << 20

// startFill starts keeping zeros ahead of the head. limit is the segment
// size, past which no segment grows.
func (l *lane) startFill(window, limit int64) {
	f := &filler{fs: l.fs, window: min(window, limit), limit: limit, head: l.name(l.last),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	f.zeroEnd.Store(l.size)
	f.end.Store(l.size)
	l.fill = f
	go f.run()
	f.wake()
}

// stopFill stops the filler and cuts the head back to its logical end, so
// that a closed queue's files hold only records.
func (l *lane) stopFill() {
	f := l.fill
	if f == nil {
		return
	}
	close(f.stop)
	<-f.done
	l.fill = nil
	if l.head != nil && l.head.Truncate(l.size) == nil {
		l.head.Sync()
	}
}

// wrote publishes the head's new end and wakes the filler when the zeros
// ahead of it run short (and the segment has room for more).
func (f *filler) wrote(end int64) {
	f.end.Store(end)
	if z := f.zeroEnd.Load(); z < f.limit && z-end < f.window/2 {
		f.wake()
	}
}

func (f *filler) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// reset points the filler at a new head, or at the same one cut back to
// end, and wakes it; called with mu held.
func (f *filler) reset(head string, end int64) {
	f.head = head
	f.gen++
	f.zeroEnd.Store(end)
	f.end.Store(end)
	f.wake()
}

func (f *filler) run() {
	defer close(f.done)
	zeros := make([]byte, fillChunk)
	var own File // the filler's descriptor of ownName
	var ownName string
	defer func() {
		if own != nil {
			own.Close()
		}
	}()
	for {
		select {
		case <-f.stop:
			return
		case <-f.kick:
		}
		f.mu.Lock()
		name := f.head
		f.mu.Unlock()
		if own == nil || ownName != name {
			if own != nil {
				own.Close()
			}
			var err error
			if own, err = f.fs.OpenFile(name, os.O_WRONLY, 0); err != nil {
				own = nil
			}
			ownName = name
		}
		if own == nil || !f.fillOnce(own, name, zeros) {
			select {
			case <-f.stop:
				return
			case <-time.After(fillRetry):
			}
		}
	}
}

// fillOnce writes zeros from where they end to window past the head's end,
// a chunk at a time, then makes them durable. A failure (a full disk) ends
// the fill and returns false: the writer then grows the file itself, as
// without a filler.
func (f *filler) fillOnce(own File, name string, zeros []byte) bool {
	f.mu.Lock()
	if f.head != name {
		f.mu.Unlock()
		f.wake() // the head changed meanwhile: open the new one
		return true
	}
	gen := f.gen
	target := min(f.end.Load()+f.window, f.limit)
	f.mu.Unlock()
	var wrote int64
	for {
		select {
		case <-f.stop:
			return true
		default:
		}
		f.mu.Lock()
		if f.gen != gen {
			f.mu.Unlock()
			return true
		}
		from := max(f.zeroEnd.Load(), f.end.Load(), wrote)
		if from >= target {
			f.mu.Unlock()
			break
		}
		n := min(target-from, int64(len(zeros)))
		_, err := own.WriteAt(zeros[:n], from)
		f.mu.Unlock()
		if err != nil {
			return false
		}
		wrote = from + n
	}
	if wrote == 0 {
		return true
	}
	if own.Sync() != nil {
		return false
	}
	f.mu.Lock()
	if f.gen == gen && wrote > f.zeroEnd.Load() {
		f.zeroEnd.Store(wrote)
	}
	f.mu.Unlock()
	return true
}
