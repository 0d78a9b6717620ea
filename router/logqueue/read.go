package logqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"switchboard/router"
)

// Reads of single records, for deliveries and dead letters not in memory:
// one pread each, checked against the record's checksum, no JSON parse.

// errGone is a record in a segment that is no longer there: a bug, since
// a segment is deleted only when nothing live remains in it.
var errGone = errors.New("its segment is no longer there")

// readFrame reads the whole frame at l; n is its length, or 0 when unknown.
func (q *Queue) readFrame(sf *segFile, l loc, n uint32) ([]byte, error) {
	if sf == nil {
		return nil, fmt.Errorf("record at %s offset %d: %w", q.seg.name(uint64(l.seg)), l.off, errGone)
	}
	guess := n
	if guess == 0 {
		guess = 512
	}
	b := make([]byte, guess)
	k, err := sf.f.ReadAt(b, int64(l.off))
	if n == 0 && k >= frameHeader && errors.Is(err, io.EOF) {
		err = nil // a short record near the end of the file
	}
	if err != nil {
		return nil, fmt.Errorf("read %s at offset %d: %w", q.seg.name(uint64(l.seg)), l.off, err)
	}
	if n == 0 {
		full := frameHeader + binary.LittleEndian.Uint32(b)
		switch {
		case full > maxFrame:
			return nil, fmt.Errorf("record at %s offset %d: impossible length %d", q.seg.name(uint64(l.seg)), l.off, full)
		case int(full) <= k:
			b = b[:full]
		default:
			more := make([]byte, full)
			copy(more, b[:k])
			if _, err := sf.f.ReadAt(more[k:], int64(l.off)+int64(k)); err != nil {
				return nil, fmt.Errorf("read %s at offset %d: %w", q.seg.name(uint64(l.seg)), l.off, err)
			}
			b = more
		}
	}
	return b, nil
}

// readEvent reads and decodes the event of an event record.
func (q *Queue) readEvent(sf *segFile, l loc, n uint32) (*router.Event, error) {
	b, err := q.readFrame(sf, l, n)
	if err != nil {
		return nil, err
	}
	ev, _, err := decodeEventFrame(b)
	if err != nil {
		return nil, fmt.Errorf("record at %s offset %d: %w", q.seg.name(uint64(l.seg)), l.off, err)
	}
	return ev, nil
}

// decodeEventFrame checks an event record's frame and decodes it.
func decodeEventFrame(b []byte) (*router.Event, *eventHead, error) {
	typ, body, err := checkFrame(b)
	if err != nil {
		return nil, nil, err
	}
	if typ != recEvent {
		return nil, nil, fmt.Errorf("record is of type %d where an event record was expected", typ)
	}
	r := reader{b: body}
	h := &eventHead{}
	r.eventHead(h)
	if r.err != nil {
		return nil, nil, fmt.Errorf("event record head: %w", r.err)
	}
	ev, err := decodeEvent(r.rest())
	return ev, h, err
}

// readDetail reads the attempts and last error of delivery id from the
// record at l: a state or dead record, or an event record holding them.
func (q *Queue) readDetail(sf *segFile, l loc, id uint64) (detail, error) {
	b, err := q.readFrame(sf, l, 0)
	if err != nil {
		return detail{}, err
	}
	d, err := detailIn(b, id)
	if err != nil {
		return d, fmt.Errorf("record at %s offset %d: %w", q.seg.name(uint64(l.seg)), l.off, err)
	}
	return d, nil
}

func detailIn(b []byte, id uint64) (detail, error) {
	typ, body, err := checkFrame(b)
	if err != nil {
		return detail{}, err
	}
	r := reader{b: body}
	switch typ {
	case recState, recDead:
		if got := r.uvarint(); r.err == nil && got != id {
			return detail{}, fmt.Errorf("record is about delivery %d, not %d", got, id)
		}
		d := r.detail()
		return d, r.err
	case recEvent:
		var h eventHead
		r.eventHead(&h)
		if r.err != nil {
			return detail{}, r.err
		}
		for _, d := range h.deliveries {
			if d.id == id {
				return d.detail, nil
			}
		}
		return detail{}, fmt.Errorf("event record does not list delivery %d", id)
	}
	return detail{}, fmt.Errorf("record of type %d holds no delivery state", typ)
}
