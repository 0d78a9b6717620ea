package boltqueue

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"switchboard/router"
)

// An event record is the event as accepted, self-contained, so that a
// delivery after a restart or a dead-letter replay sends exactly what the
// first attempt would have sent:
//
//	flags(1) | uvarint len + normalized event JSON | uvarint len + headers JSON | body
//
// flags bit 0 means the body equals the event's raw payload and is not
// stored twice.
const flagBodyIsPayload = 1

func encodeEvent(e *router.Event) ([]byte, error) {
	ej, err := e.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var hj []byte
	if len(e.Headers) > 0 {
		if hj, err = json.Marshal(e.Headers); err != nil {
			return nil, err
		}
	}
	var flags byte
	body := e.Body
	if body != nil && bytes.Equal(body, e.RawPayload) {
		flags |= flagBodyIsPayload
		body = nil
	}
	b := make([]byte, 0, 1+2*binary.MaxVarintLen32+len(ej)+len(hj)+len(body))
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(ej)))
	b = append(b, ej...)
	b = binary.AppendUvarint(b, uint64(len(hj)))
	b = append(b, hj...)
	return append(b, body...), nil
}

var errCorrupt = errors.New("corrupt record")

func decodeEvent(b []byte) (*router.Event, error) {
	if len(b) < 1 {
		return nil, errCorrupt
	}
	flags := b[0]
	b = b[1:]
	ej, b, err := readChunk(b)
	if err != nil {
		return nil, err
	}
	hj, body, err := readChunk(b)
	if err != nil {
		return nil, err
	}
	e := &router.Event{}
	if err := e.UnmarshalJSON(ej); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if len(hj) > 0 {
		if err := json.Unmarshal(hj, &e.Headers); err != nil {
			return nil, fmt.Errorf("%w: headers: %v", errCorrupt, err)
		}
	}
	if flags&flagBodyIsPayload != 0 {
		e.Body = e.RawPayload
	} else if len(body) > 0 {
		e.Body = bytes.Clone(body)
	}
	return e, nil
}

func readChunk(b []byte) (chunk, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, errCorrupt
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

// state is a delivery's progress, stored under pending/<sink>\x00<seq> and,
// with the sink name and time of death, under dead/<seq>.
type state struct {
	event     uint64 // event record key
	attempts  int
	firstTry  time.Time
	lastTry   time.Time
	notBefore time.Time
	queued    time.Time // when the delivery was first queued
	lastError string
	// dead letters only
	sink   string
	deadAt time.Time
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func (s *state) encode(dead bool) []byte {
	b := make([]byte, 0, 48+len(s.lastError)+len(s.sink))
	b = binary.BigEndian.AppendUint64(b, s.event)
	b = binary.AppendUvarint(b, uint64(s.attempts))
	b = appendTime(b, s.firstTry)
	b = appendTime(b, s.lastTry)
	b = appendTime(b, s.notBefore)
	b = appendTime(b, s.queued)
	if dead {
		b = appendTime(b, s.deadAt)
		b = binary.AppendUvarint(b, uint64(len(s.sink)))
		b = append(b, s.sink...)
	}
	return append(b, s.lastError...)
}

func decodeState(b []byte, dead bool) (state, error) {
	var s state
	if len(b) < 8 {
		return s, errCorrupt
	}
	s.event = binary.BigEndian.Uint64(b)
	b = b[8:]
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return s, errCorrupt
	}
	s.attempts, b = int(n), b[k:]
	times := []*time.Time{&s.firstTry, &s.lastTry, &s.notBefore, &s.queued}
	if dead {
		times = append(times, &s.deadAt)
	}
	for _, t := range times {
		v, k := binary.Varint(b)
		if k <= 0 {
			return s, errCorrupt
		}
		if v != 0 {
			*t = time.Unix(0, v)
		}
		b = b[k:]
	}
	if dead {
		sink, rest, err := readChunk(b)
		if err != nil {
			return s, err
		}
		s.sink, b = string(sink), rest
	}
	s.lastError = string(b)
	return s, nil
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

func pendingKey(sink string, seq uint64) []byte {
	b := make([]byte, 0, len(sink)+9)
	b = append(b, sink...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint64(b, seq)
}

func splitPendingKey(k []byte) (string, uint64, bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 || len(k)-i-1 != 8 {
		return "", 0, false
	}
	return string(k[:i]), binary.BigEndian.Uint64(k[i+1:]), true
}
