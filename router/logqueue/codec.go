package logqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Record types. Every record is applied in log order at start; a record
// that kills something (done, dead, purge, drop) is always newer than what
// it kills, so deleting the oldest segment never leaves a record whose
// effect on older data is lost.
const (
	// recEvent is an event with its deliveries: written by Enqueue, and
	// by compaction, which copies a live event forward with its
	// deliveries' current state (the copy then is authoritative).
	recEvent = 1
	// recState is a delivery's retry state: attempts, times, last error.
	recState = 2
	// recDone removes delivered deliveries.
	recDone = 3
	// recDead moves a delivery to the dead letters.
	recDead = 4
	// recReplay puts dead letters back, due now, attempts reset.
	recReplay = 5
	// recPurge deletes dead letters on an operator's request.
	recPurge = 6
	// recDrop deletes dead letters past the dead-letter bounds.
	recDrop = 7
	// recRaw is an unreadable event record kept as a dead letter, copied
	// forward by compaction.
	recRaw = 8
	// recDedup remembers accepted (source, id) keys: in dedup chunks.
	recDedup = 9
)

// Delivery states as stored in an event record.
const (
	stFresh = 0 // pending, never attempted
	stTried = 1 // pending, with attempts
	stDead  = 2 // a dead letter
)

var zeroUnix = time.Time{}.Unix()

// appendTime writes t as whole seconds since year 1 and nanoseconds: exact
// for every time.Time (UnixNano overflows outside 1678-2262), and one byte
// for the zero time. Wrapping arithmetic keeps the extremes exact.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix()-zeroUnix)
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errTruncated is a record body shorter than its fields.
var errTruncated = errors.New("record ends in the middle of a field")

// reader decodes a record body; the first error sticks and later reads
// return zero values.
type reader struct {
	b   []byte
	err error
	// intern, when set, makes sink names into strings without allocating,
	// and last errors are skipped: the start reads millions of records
	// and keeps neither.
	intern func([]byte) string
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail(errTruncated)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errTruncated)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errTruncated)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a number of items, each at least min bytes long, refusing
// counts the rest of the record cannot hold.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail(fmt.Errorf("record claims %d items in %d bytes", n, len(r.b)))
		return 0
	}
	return int(n)
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail(errTruncated)
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) string() string { return string(r.bytes()) }

func (r *reader) time() time.Time {
	sec := r.varint()
	nsec := r.uvarint()
	if nsec >= 1e9 {
		r.fail(fmt.Errorf("nanoseconds %d out of range", nsec))
		return time.Time{}
	}
	return time.Unix(sec+zeroUnix, int64(nsec)).UTC()
}

func (r *reader) key() (k dedupKey) {
	if len(r.b) < len(k) {
		r.fail(errTruncated)
		return k
	}
	copy(k[:], r.b)
	r.b = r.b[len(k):]
	return k
}

func (r *reader) rest() []byte {
	b := r.b
	r.b = nil
	return b
}

// detail is a delivery's progress: what a retry or a death records.
type detail struct {
	attempts  int
	firstTry  time.Time
	lastTry   time.Time
	at        time.Time // not before (pending) or dead at (dead)
	lastError string
}

func appendDetail(b []byte, d *detail) []byte {
	b = binary.AppendUvarint(b, uint64(d.attempts))
	b = appendTime(b, d.firstTry)
	b = appendTime(b, d.lastTry)
	b = appendTime(b, d.at)
	return appendString(b, d.lastError)
}

func (r *reader) detail() detail {
	var d detail
	d.attempts = int(min(r.uvarint(), 1<<31))
	d.firstTry = r.time()
	d.lastTry = r.time()
	d.at = r.time()
	if r.intern != nil {
		r.bytes()
	} else {
		d.lastError = r.string()
	}
	return d
}

// delivery is one delivery as an event record lists it.
type delivery struct {
	id     uint64
	sink   string
	state  byte
	queued time.Time // when it was queued (pending) or died (dead)
	detail detail    // attempts so far; unused when fresh
}

// eventHead is the part of an event record before the event itself.
type eventHead struct {
	copy       bool
	dedup      bool
	key        dedupKey
	expiry     int64 // unix seconds
	horizon    int64 // seconds
	deliveries []delivery
}

func appendEventHead(b []byte, h *eventHead) []byte {
	var flags byte
	if h.copy {
		flags |= 1
	}
	if h.dedup {
		flags |= 2
	}
	b = append(b, flags)
	if h.dedup {
		b = append(b, h.key[:]...)
		b = binary.AppendVarint(b, h.expiry)
		b = binary.AppendUvarint(b, uint64(h.horizon))
	}
	b = binary.AppendUvarint(b, uint64(len(h.deliveries)))
	for i := range h.deliveries {
		d := &h.deliveries[i]
		b = binary.AppendUvarint(b, d.id)
		b = appendString(b, d.sink)
		b = append(b, d.state)
		b = appendTime(b, d.queued)
		if d.state != stFresh {
			b = appendDetail(b, &d.detail)
		}
	}
	return b
}

// readEventHead decodes the head of an event record; the reader is left at
// the event.
func (r *reader) eventHead(h *eventHead) {
	flags := r.byte()
	h.copy = flags&1 != 0
	h.dedup = flags&2 != 0
	if flags&^3 != 0 {
		r.fail(fmt.Errorf("unknown event record flags %#x", flags))
		return
	}
	if h.dedup {
		h.key = r.key()
		h.expiry = r.varint()
		h.horizon = int64(min(r.uvarint(), 1<<40))
	}
	n := r.count(4)
	h.deliveries = h.deliveries[:0]
	for range n {
		var d delivery
		d.id = r.uvarint()
		if r.intern != nil {
			d.sink = r.intern(r.bytes())
		} else {
			d.sink = r.string()
		}
		d.state = r.byte()
		d.queued = r.time()
		switch d.state {
		case stFresh:
		case stTried, stDead:
			d.detail = r.detail()
		default:
			r.fail(fmt.Errorf("unknown delivery state %d", d.state))
		}
		if r.err != nil {
			return
		}
		h.deliveries = append(h.deliveries, d)
	}
}

// appendIDs writes a list of delivery ids (done, purge, drop, replay).
func appendIDs(b []byte, ids []uint64) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, id)
	}
	return b
}

func (r *reader) ids(dst []uint64) []uint64 {
	n := r.count(1)
	for range n {
		dst = append(dst, r.uvarint())
	}
	return dst
}

// encodeDetailRecord makes a state or dead record for delivery id.
func encodeDetailRecord(typ byte, id uint64, d *detail) []byte {
	b, start := beginFrame(make([]byte, 0, 64+len(d.lastError)), typ)
	b = binary.AppendUvarint(b, id)
	b = appendDetail(b, d)
	return endFrame(b, start)
}
