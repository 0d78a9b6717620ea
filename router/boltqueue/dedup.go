package boltqueue

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Dedup keys live in time slots, one nested bucket per slot of a quarter
// window, so that forgetting old keys is dropping whole buckets, never
// scanning keys. A key is looked up in the slots covering the window.

const slotsPerWindow = 4

func (q *Queue) slotLen() int64 {
	l := int64(q.opts.DedupWindow / slotsPerWindow / time.Second)
	return max(l, 1)
}

func slotName(slot int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(slot))
}

func dedupKey(source, id string) []byte {
	b := make([]byte, 0, len(source)+1+len(id))
	b = append(b, source...)
	b = append(b, 0)
	return append(b, id...)
}

// seen reports whether (source, id) was accepted within the window.
func (q *Queue) seen(tx *bolt.Tx, source, id string, now time.Time) bool {
	if q.opts.DedupWindow <= 0 || id == "" {
		return false
	}
	root := tx.Bucket(bucketDedup)
	cur := now.Unix() / q.slotLen()
	key := dedupKey(source, id)
	for s := cur - slotsPerWindow; s <= cur; s++ {
		if b := root.Bucket(slotName(s)); b != nil && b.Get(key) != nil {
			return true
		}
	}
	return false
}

// remember records (source, id) in the current slot.
func (q *Queue) remember(tx *bolt.Tx, source, id string, now time.Time) error {
	if q.opts.DedupWindow <= 0 || id == "" {
		return nil
	}
	b, err := tx.Bucket(bucketDedup).CreateBucketIfNotExists(slotName(now.Unix() / q.slotLen()))
	if err != nil {
		return err
	}
	// Not nil: within the transaction that wrote it, bbolt's Get returns a
	// nil value as nil, and seen would miss a key written by another
	// request of the same group commit.
	return b.Put(dedupKey(source, id), []byte{1})
}

// sweepDedup drops slots older than the window, at most once a slot.
func (q *Queue) sweepDedup(tx *bolt.Tx, now time.Time) error {
	if now.Sub(q.lastSweep) < time.Duration(q.slotLen())*time.Second {
		return nil
	}
	q.lastSweep = now
	oldest := now.Unix()/q.slotLen() - slotsPerWindow
	root := tx.Bucket(bucketDedup)
	var stale [][]byte
	c := root.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) == 8 && int64(binary.BigEndian.Uint64(k)) < oldest {
			stale = append(stale, append([]byte(nil), k...))
		}
	}
	for _, k := range stale {
		if err := root.DeleteBucket(k); err != nil {
			return err
		}
	}
	return nil
}

// Seen reports, without writing, whether (source, id) was accepted within
// the dedup window. Enqueue checks again under the write lock, so a race
// between two deliveries of the same event still routes it once.
func (q *Queue) Seen(source, id string) bool {
	if q.opts.DedupWindow <= 0 {
		return false
	}
	found := false
	q.db.View(func(tx *bolt.Tx) error {
		found = q.seen(tx, source, id, time.Now())
		return nil
	})
	return found
}
