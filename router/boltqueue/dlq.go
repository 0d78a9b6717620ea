package boltqueue

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"switchboard/router"
)

// ListDead implements router.DeadLetters.
func (q *Queue) ListDead() ([]router.DeadLetter, error) {
	var out []router.DeadLetter
	err := q.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDead).ForEach(func(k, v []byte) error {
			dl, err := q.deadLetter(tx, k, v, false)
			if err != nil {
				return err
			}
			out = append(out, *dl)
			return nil
		})
	})
	return out, err
}

// GetDead implements router.DeadLetters.
func (q *Queue) GetDead(id string) (*router.DeadLetter, error) {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return nil, router.ErrNotFound
	}
	var dl *router.DeadLetter
	err = q.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDead).Get(seqKey(seq))
		if v == nil {
			return router.ErrNotFound
		}
		var err error
		dl, err = q.deadLetter(tx, seqKey(seq), v, true)
		return err
	})
	return dl, err
}

func (q *Queue) deadLetter(tx *bolt.Tx, k, v []byte, withEvent bool) (*router.DeadLetter, error) {
	st, err := decodeState(v, true)
	if err != nil {
		return nil, fmt.Errorf("dead letter %x: %w", k, err)
	}
	dl := &router.DeadLetter{ID: strconv.FormatUint(binaryKey(k), 10), Sink: st.sink, Attempts: st.attempts,
		FirstTry: st.firstTry, LastTry: st.lastTry, DeadAt: st.deadAt, LastError: st.lastError}
	if rec := tx.Bucket(bucketEvents).Get(seqKey(st.event)); rec != nil {
		if ev, err := decodeEvent(rec); err == nil {
			dl.EventID, dl.Source, dl.EventName = ev.ID, ev.Source, ev.Event
			if withEvent {
				dl.Event = ev
			}
		}
	}
	return dl, nil
}

func binaryKey(k []byte) uint64 {
	var n uint64
	for _, b := range k {
		n = n<<8 | uint64(b)
	}
	return n
}

// selectDead resolves ids (nil: all) to dead-letter keys.
func selectDead(tx *bolt.Tx, ids []string) ([]uint64, error) {
	dead := tx.Bucket(bucketDead)
	var seqs []uint64
	if ids == nil {
		err := dead.ForEach(func(k, _ []byte) error {
			seqs = append(seqs, binaryKey(k))
			return nil
		})
		return seqs, err
	}
	for _, id := range ids {
		seq, err := strconv.ParseUint(id, 10, 64)
		if err != nil || dead.Get(seqKey(seq)) == nil {
			return nil, fmt.Errorf("%w: %s", router.ErrNotFound, id)
		}
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// Replay implements router.DeadLetters: each dead letter becomes a pending
// delivery again, due now, with a fresh attempt count.
func (q *Queue) Replay(ids []string) (int, error) {
	type back struct {
		sink string
		seq  uint64
	}
	var moved []back
	o := &op{apply: func(tx *bolt.Tx, w *writeBatch) error {
		moved = moved[:0]
		seqs, err := selectDead(tx, ids)
		if err != nil {
			return err
		}
		dead, pending := tx.Bucket(bucketDead), tx.Bucket(bucketPending)
		for _, seq := range seqs {
			st, err := decodeState(dead.Get(seqKey(seq)), true)
			if err != nil {
				return err
			}
			fresh := state{event: st.event, queued: w.now}
			if err := pending.Put(pendingKey(st.sink, seq), fresh.encode(false)); err != nil {
				return hard(err)
			}
			if err := dead.Delete(seqKey(seq)); err != nil {
				return hard(err)
			}
			moved = append(moved, back{st.sink, seq})
		}
		return nil
	}}
	o.after = func(err error) {
		if err != nil {
			return
		}
		q.mu.Lock()
		for _, m := range moved {
			s := q.sink(m.sink)
			s.dead--
			s.ready = append(s.ready, m.seq)
			s.signal()
		}
		q.mu.Unlock()
	}
	err := q.submit(context.Background(), o, true)
	return len(moved), err
}

// Purge implements router.DeadLetters.
func (q *Queue) Purge(ids []string) (int, error) {
	var sinks []string
	o := &op{apply: func(tx *bolt.Tx, w *writeBatch) error {
		sinks = sinks[:0]
		seqs, err := selectDead(tx, ids)
		if err != nil {
			return err
		}
		dead := tx.Bucket(bucketDead)
		for _, seq := range seqs {
			st, err := decodeState(dead.Get(seqKey(seq)), true)
			if err != nil {
				return err
			}
			if err := dead.Delete(seqKey(seq)); err != nil {
				return hard(err)
			}
			if err := q.unref(tx, w, st.event); err != nil {
				return hard(err)
			}
			sinks = append(sinks, st.sink)
		}
		return nil
	}}
	o.after = func(err error) {
		if err != nil {
			return
		}
		q.mu.Lock()
		for _, s := range sinks {
			q.sink(s).dead--
		}
		q.mu.Unlock()
	}
	err := q.submit(context.Background(), o, true)
	return len(sinks), err
}

var _ router.DeadLetters = (*Queue)(nil)
