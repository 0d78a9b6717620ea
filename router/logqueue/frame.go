package logqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Every file of a lane (queue segments, dedup chunks) starts with a header:
//
//	magic(8) | version u16 | kind u8 | 0 u8 | 0 u32 | number u64 |
//	previous file's sealed length u64 | previous file's crc32c u32 | header crc32c u32
//
// The previous file's length and checksum chain the files together: a
// non-last file that was truncated, replaced, swapped or lost is found at
// start. Records follow, each framed
//
//	length u32 | crc32c u32 | type u8 | body
//
// where length counts type and body, and the checksum covers the length
// field, the type and the body.
const (
	headerSize    = 40
	frameHeader   = 8
	formatVersion = 1
	kindQueue     = 'q'
	kindDedup     = 'd'
	// maxFrame bounds a record: a length field beyond it is damage, not
	// a reason to allocate.
	maxFrame = 1 << 30
)

var magic = [8]byte{'S', 'W', 'B', 'Q', 'L', 'O', 'G', 0}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type fileHeader struct {
	kind    byte
	number  uint64
	prevLen uint64
	prevCRC uint32
}

func (h fileHeader) encode() []byte {
	b := make([]byte, headerSize)
	copy(b, magic[:])
	binary.LittleEndian.PutUint16(b[8:], formatVersion)
	b[10] = h.kind
	binary.LittleEndian.PutUint64(b[16:], h.number)
	binary.LittleEndian.PutUint64(b[24:], h.prevLen)
	binary.LittleEndian.PutUint32(b[32:], h.prevCRC)
	binary.LittleEndian.PutUint32(b[36:], crc32.Checksum(b[:36], castagnoli))
	return b
}

// decodeHeader checks and reads a file header; the error says what is
// wrong in words an operator can act on.
func decodeHeader(b []byte, kind byte) (fileHeader, error) {
	var h fileHeader
	if len(b) < headerSize {
		return h, fmt.Errorf("it is %d bytes long, shorter than a file header (%d bytes)", len(b), headerSize)
	}
	if [8]byte(b[:8]) != magic {
		return h, errors.New("it does not start with the queue's file header; it is not a switchboard queue file or its start was overwritten")
	}
	if crc32.Checksum(b[:36], castagnoli) != binary.LittleEndian.Uint32(b[36:]) {
		return h, errors.New("its file header fails its checksum")
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != formatVersion {
		return h, fmt.Errorf("it is in queue format %d; this switchboard reads format %d (a newer version wrote it?)", v, formatVersion)
	}
	if b[10] != kind {
		return h, fmt.Errorf("its header says it is a %s file", kindName(b[10]))
	}
	h.kind = b[10]
	h.number = binary.LittleEndian.Uint64(b[16:])
	h.prevLen = binary.LittleEndian.Uint64(b[24:])
	h.prevCRC = binary.LittleEndian.Uint32(b[32:])
	return h, nil
}

func kindName(k byte) string {
	switch k {
	case kindQueue:
		return "queue segment"
	case kindDedup:
		return "dedup"
	}
	return fmt.Sprintf("unknown (%#x)", k)
}

// beginFrame appends a frame header to be completed by endFrame once the
// body is appended.
func beginFrame(b []byte, typ byte) ([]byte, int) {
	start := len(b)
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0, typ), start
}

func endFrame(b []byte, start int) []byte {
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start-frameHeader))
	crc := crc32.Update(0, castagnoli, b[start:start+4])
	crc = crc32.Update(crc, castagnoli, b[start+frameHeader:])
	binary.LittleEndian.PutUint32(b[start+4:], crc)
	return b
}

// checkFrame verifies one whole frame held in b and returns its type and
// body.
func checkFrame(b []byte) (typ byte, body []byte, err error) {
	if len(b) < frameHeader+1 {
		return 0, nil, errors.New("record is shorter than its frame")
	}
	n := binary.LittleEndian.Uint32(b)
	if int(n) != len(b)-frameHeader {
		return 0, nil, fmt.Errorf("record length %d does not match its place (%d bytes)", n, len(b)-frameHeader)
	}
	crc := crc32.Update(0, castagnoli, b[:4])
	crc = crc32.Update(crc, castagnoli, b[frameHeader:])
	if crc != binary.LittleEndian.Uint32(b[4:]) {
		return 0, nil, errors.New("record fails its checksum")
	}
	return b[frameHeader], b[frameHeader+1:], nil
}

// frameError is a record that cannot be read where one was expected.
type frameError struct {
	off    int64
	reason string
}

func (e *frameError) Error() string { return fmt.Sprintf("at offset %d: %s", e.off, e.reason) }

// scanner reads the frames of one file in order, checking each, and keeps
// the running checksum of everything read: the checksum the next file's
// header must name.
type scanner struct {
	f      File
	size   int64
	buf    []byte
	bufOff int64 // file offset of buf[0]
	bufLen int
	pos    int64
	crc    uint32
}

const scanBuffer = 1 << 20

// newScanner starts after the header, which the caller has read and
// checked (hdr is its bytes).
func newScanner(f File, size int64, hdr []byte, buf []byte) *scanner {
	if cap(buf) < scanBuffer {
		buf = make([]byte, scanBuffer)
	}
	return &scanner{f: f, size: size, buf: buf[:cap(buf)], pos: int64(len(hdr)),
		bufOff: int64(len(hdr)), crc: crc32.Update(0, castagnoli, hdr)}
}

// fill makes buf hold at least n bytes from pos (n <= size-pos).
func (s *scanner) fill(n int) error {
	if s.pos >= s.bufOff && s.pos+int64(n) <= s.bufOff+int64(s.bufLen) {
		return nil
	}
	if n > len(s.buf) {
		s.buf = make([]byte, n)
	}
	want := min(int64(len(s.buf)), s.size-s.pos)
	k, err := s.f.ReadAt(s.buf[:want], s.pos)
	if int64(k) < want {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	s.bufOff, s.bufLen = s.pos, k
	return nil
}

// next returns the next frame: its offset, type and body (valid until the
// next call). It returns io.EOF at the end of the file, a *frameError for a
// frame that is not whole and intact, and other errors for failed reads.
func (s *scanner) next() (off int64, typ byte, body []byte, err error) {
	off = s.pos
	left := s.size - s.pos
	if left == 0 {
		return off, 0, nil, io.EOF
	}
	if left < frameHeader+1 {
		return off, 0, nil, &frameError{off, fmt.Sprintf("%d bytes at the end are too few for a record", left)}
	}
	if err := s.fill(frameHeader); err != nil {
		return off, 0, nil, err
	}
	i := int(s.pos - s.bufOff)
	n := int64(binary.LittleEndian.Uint32(s.buf[i:]))
	switch {
	case n == 0:
		return off, 0, nil, &frameError{off, "zero bytes where a record should start"}
	case n > maxFrame:
		return off, 0, nil, &frameError{off, fmt.Sprintf("record length %d is impossible", n)}
	case frameHeader+n > left:
		return off, 0, nil, &frameError{off, fmt.Sprintf("record of %d bytes runs past the end of the file (%d bytes left)", frameHeader+n, left)}
	}
	if err := s.fill(int(frameHeader + n)); err != nil {
		return off, 0, nil, err
	}
	i = int(s.pos - s.bufOff)
	frame := s.buf[i : i+int(frameHeader+n)]
	typ, body, err = checkFrame(frame)
	if err != nil {
		return off, 0, nil, &frameError{off, err.Error()}
	}
	s.crc = crc32.Update(s.crc, castagnoli, frame)
	s.pos += frameHeader + n
	return off, typ, body, nil
}

// skipTo moves past damage to off (salvage only); the running checksum
// means nothing after it.
func (s *scanner) skipTo(off int64) { s.pos = off }
