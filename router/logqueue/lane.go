package logqueue

import (
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
)

// A lane is a numbered sequence of append-only files chained by their
// headers: the queue's segments ("seg-<16 hex>.log") or the dedup chunks
// ("ddp-<16 hex>.log"). Only the last file, the head, is written; files are
// only ever deleted from the front.
type lane struct {
	fs     FS
	dir    string
	prefix string
	kind   byte

	first, last uint64
	// files are the live files, open for reading; the writer adds and
	// removes entries under the queue's lock, readers take refs.
	files map[uint64]*segFile

	head   File
	size   int64  // the head's logical end
	crc    uint32 // checksum of the head's bytes up to size
	synced int64  // the head's length known to be on disk
	dirty  bool   // a failed write may have left bytes past size
	// fill, when set, keeps zeros written ahead of the head's end
	// (fill.go): the queue's segments while the daemon runs.
	fill *filler
}

// segFile is one open file of a lane, with what the queue knows of it.
type segFile struct {
	f      File
	refs   int  // readers using f now
	doomed bool // deleted: close once no reader uses it
	size   int64
	// liveRecs counts records in it that something still needs; at zero
	// (and with its dedup keys saved elsewhere) it can be deleted.
	liveRecs int64
	// liveBytes is what a copy of its live records would take: the
	// measure compaction goes by.
	liveBytes int64
}

func (l *lane) name(n uint64) string {
	return path(l.dir, fmt.Sprintf("%s-%016x.log", l.prefix, n))
}

// parseName returns the number of a lane file name.
func (l *lane) parseName(name string) (uint64, bool) {
	hex, ok := strings.CutPrefix(name, l.prefix+"-")
	if !ok {
		return 0, false
	}
	hex, ok = strings.CutSuffix(hex, ".log")
	if !ok || len(hex) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(hex, 16, 64)
	return n, err == nil && n > 0
}

// create starts file n as the head, its header naming the previous file's
// sealed length and checksum, and makes it durable before it is used.
func (l *lane) create(n uint64, prevLen int64, prevCRC uint32) error {
	name := l.name(n)
	f, err := l.fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	hdr := fileHeader{kind: l.kind, number: n, prevLen: uint64(prevLen), prevCRC: prevCRC}.encode()
	if _, err := f.WriteAt(hdr, 0); err != nil {
		f.Close()
		l.fs.Remove(name)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		l.fs.Remove(name)
		return err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		f.Close()
		l.fs.Remove(name)
		return err
	}
	l.head, l.last = f, n
	if l.first == 0 {
		l.first = n
	}
	l.size, l.synced, l.dirty = int64(len(hdr)), int64(len(hdr)), false
	l.crc = crc32.Update(0, castagnoli, hdr)
	return nil
}

// roll seals the head (synced, its length and checksum go into the next
// header) and starts the next file. The sealed file stays open for reads.
func (l *lane) roll() error {
	if f := l.fill; f != nil {
		// Sealed at its logical end: the zeros past it go first, and the
		// new size is made durable before the next header names it.
		f.mu.Lock()
		defer f.mu.Unlock()
		if err := l.cut(l.size); err != nil {
			return err
		}
		if err := l.head.Sync(); err != nil {
			return err
		}
		l.synced = l.size
	}
	if err := l.sync(); err != nil {
		return err
	}
	if err := l.create(l.last+1, l.size, l.crc); err != nil {
		return err
	}
	if f := l.fill; f != nil {
		f.reset(l.name(l.last), l.size)
	}
	return nil
}

// append writes b at the head's end. On failure nothing counts as
// written, and bytes a partial write left are cut off, now or before the
// next write, so that they can never be read as records.
func (l *lane) append(b []byte) (int64, error) {
	f := l.fill
	locked := false
	if f != nil && (l.dirty || l.size+int64(len(b)) > f.zeroEnd.Load()) {
		// Past the zeros, or cutting: the filler waits meanwhile.
		f.mu.Lock()
		defer f.mu.Unlock()
		locked = true
	}
	if l.dirty {
		if err := l.cut(l.size); err != nil {
			return 0, err
		}
		l.dirty = false
	}
	off := l.size
	if _, err := l.head.WriteAt(b, off); err != nil {
		cut := l.cutBack
		if locked {
			cut = l.cut
		}
		if cut(off) != nil {
			l.dirty = true
		}
		return 0, err
	}
	l.size += int64(len(b))
	l.crc = crc32.Update(l.crc, castagnoli, b)
	if f != nil {
		if locked && l.size > f.zeroEnd.Load() {
			f.zeroEnd.Store(l.size)
		}
		f.wrote(l.size)
	}
	return off, nil
}

// cut truncates the head to off, taking back a failed write. With a
// filler, the caller holds its mu (cutBack takes it), and the zeros start
// again from off.
func (l *lane) cut(off int64) error {
	err := l.head.Truncate(off)
	if f := l.fill; f != nil {
		f.reset(l.name(l.last), off)
	}
	return err
}

// cutBack is cut for a caller that does not hold the filler's lock.
func (l *lane) cutBack(off int64) error {
	if f := l.fill; f != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
	}
	return l.cut(off)
}

// sync makes everything appended durable.
func (l *lane) sync() error {
	if l.synced == l.size {
		return nil
	}
	if err := l.head.Sync(); err != nil {
		return err
	}
	l.synced = l.size
	return nil
}

// closeAll closes every open file of the lane.
func (l *lane) closeAll() {
	for _, sf := range l.files {
		sf.f.Close()
	}
	if l.head != nil {
		if sf := l.files[l.last]; sf == nil || sf.f != l.head {
			l.head.Close()
		}
	}
	l.files = nil
	l.head = nil
}
