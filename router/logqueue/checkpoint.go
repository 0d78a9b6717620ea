package logqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// The checkpoint, queue.state, says which files make up the queue and how
// much of each head is known to be on disk. The writer rewrites it
// atomically (temporary file, fsync, rename, fsync of the directory) about
// once a second while things change, when it starts or deletes a file, and
// at a clean shutdown:
//
//	magic(8) | version u16 | 0 u16 | 0 u32 |
//	segments: first u64, last u64, synced length of the last u64 |
//	dedup chunks: first u64, last u64, synced length of the last u64 |
//	next delivery id u64 | dedup saved through: segment u64, offset u64 |
//	crc32c u32
//
// Anything in a head past its synced length may be a crash's torn write;
// anything before it must read back intact.
const (
	stateFile    = "queue.state"
	stateTmp     = "queue.state.tmp"
	lockName     = "LOCK"
	oldQueueFile = "queue.db"
	stateSize    = 16 + 8*10 + 4
)

var stateMagic = [8]byte{'S', 'W', 'B', 'Q', 'S', 'T', 'A', 'T'}

type checkpoint struct {
	segFirst, segLast uint64
	segSynced         int64
	ddpFirst, ddpLast uint64
	ddpSynced         int64
	nextID            uint64
	// dedupThrough is the queue log position up to which every dedup key
	// is also in the dedup chunks: segments before it hold none needed.
	dedupSeg uint64
	dedupOff int64
}

func (c *checkpoint) encode() []byte {
	b := make([]byte, 0, stateSize)
	b = append(b, stateMagic[:]...)
	b = binary.LittleEndian.AppendUint16(b, formatVersion)
	b = append(b, 0, 0, 0, 0, 0, 0)
	for _, v := range []uint64{c.segFirst, c.segLast, uint64(c.segSynced), c.ddpFirst, c.ddpLast,
		uint64(c.ddpSynced), c.nextID, c.dedupSeg, uint64(c.dedupOff)} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // room for one more field
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeCheckpoint(b []byte) (checkpoint, error) {
	var c checkpoint
	if len(b) != stateSize {
		return c, fmt.Errorf("it is %d bytes long; a checkpoint is %d", len(b), stateSize)
	}
	if [8]byte(b[:8]) != stateMagic {
		return c, errors.New("it is not a switchboard queue checkpoint")
	}
	if crc32.Checksum(b[:len(b)-4], castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return c, errors.New("it fails its checksum")
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != formatVersion {
		return c, fmt.Errorf("it is in queue format %d; this switchboard reads format %d (a newer version wrote it?)", v, formatVersion)
	}
	v := make([]uint64, 9)
	for i := range v {
		v[i] = binary.LittleEndian.Uint64(b[16+8*i:])
	}
	c = checkpoint{segFirst: v[0], segLast: v[1], segSynced: int64(v[2]), ddpFirst: v[3], ddpLast: v[4],
		ddpSynced: int64(v[5]), nextID: v[6], dedupSeg: v[7], dedupOff: int64(v[8])}
	switch {
	case c.segFirst == 0 || c.segLast < c.segFirst, c.ddpFirst == 0 || c.ddpLast < c.ddpFirst:
		return c, errors.New("the file ranges it names are impossible")
	case c.segLast-c.segFirst > 1<<20, c.ddpLast-c.ddpFirst > 1<<20, c.segLast >= 1<<32:
		return c, errors.New("the file ranges it names are impossibly large")
	case c.segSynced < headerSize || c.ddpSynced < headerSize || c.segSynced > 1<<40 || c.ddpSynced > 1<<40:
		return c, errors.New("the synced lengths it records are impossible")
	}
	return c, nil
}

// readCheckpoint reads queue.state; os.ErrNotExist when there is none.
func readCheckpoint(fsys FS, dir string) (checkpoint, error) {
	f, err := fsys.OpenFile(path(dir, stateFile), os.O_RDONLY, 0)
	if err != nil {
		return checkpoint{}, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return checkpoint{}, err
	}
	b := make([]byte, min(size, stateSize+1))
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return checkpoint{}, err
	}
	return decodeCheckpoint(b)
}

// writeCheckpoint replaces queue.state atomically and durably.
func writeCheckpoint(fsys FS, dir string, c *checkpoint) error {
	tmp := path(dir, stateTmp)
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(c.encode(), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path(dir, stateFile))
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		fsys.Remove(tmp)
		return fmt.Errorf("write %s: %w", path(dir, stateFile), err)
	}
	return nil
}
