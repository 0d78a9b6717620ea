package logqueue

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"slices"
	"time"
)

// Dedup remembers accepted (source, id) pairs, so that a provider's retry
// of an event, or a captured request replayed within its signature's
// validity window, is acknowledged and not routed again.
//
// A key is the first 128 bits of SHA-256(source NUL id): small, and two
// different ids never collide in practice. Keys are kept in memory in
// generations: for each horizon (how long a source's keys are kept), one
// set per quarter horizon of acceptance time; a generation is dropped
// whole once its newest key is past the horizon, so a key is remembered
// between one and one and a quarter horizons and forgetting costs no scan.
//
// On disk a key first rides in its event's record (written and fsynced
// with it), or, for an event with no deliveries, is only in memory; about
// once a second the writer appends the keys accepted since the last time
// to the dedup chunks (ddp-*.log), so that queue segments never have to be
// kept for their keys. Chunks are deleted once every key in them is past
// its horizon.
type dedupKey [16]byte

func keyOf(source, id string) dedupKey {
	var stack [256]byte
	b := stack[:0]
	if len(source)+len(id)+1 > len(stack) {
		b = make([]byte, 0, len(source)+len(id)+1)
	}
	b = append(b, source...)
	b = append(b, 0)
	b = append(b, id...)
	sum := sha256.Sum256(b)
	return dedupKey(sum[:16])
}

// dedupEntry is a key with when it may be forgotten.
type dedupEntry struct {
	key     dedupKey
	expiry  int64 // unix seconds
	horizon int64 // seconds
}

type generation struct {
	n    int64 // its number: acceptance time / span
	last int64 // newest acceptance time it may hold, unix seconds
	keys keySet
}

// dedupSet holds the keys of one horizon, a handful of generations.
type dedupSet struct {
	horizon int64
	span    int64
	gens    []*generation
}

func (s *dedupSet) gen(n int64) *generation {
	for _, g := range s.gens {
		if g.n == n {
			return g
		}
	}
	return nil
}

// dedup is every horizon's set: usually one or two (dedup_window, and a
// signed source's validity window).
type dedup struct {
	sets []*dedupSet
	n    int
}

func (d *dedup) set(horizon int64) *dedupSet {
	for _, s := range d.sets {
		if s.horizon == horizon {
			return s
		}
	}
	return nil
}

func (d *dedup) contains(k dedupKey) bool {
	for _, s := range d.sets {
		for _, g := range s.gens {
			if g.keys.has(k) {
				return true
			}
		}
	}
	return false
}

// add remembers e unless it has already expired at now.
func (d *dedup) add(e dedupEntry, now int64) {
	if e.expiry <= now || e.horizon <= 0 {
		return
	}
	s := d.set(e.horizon)
	if s == nil {
		s = &dedupSet{horizon: e.horizon, span: max(e.horizon/4, 1)}
		d.sets = append(d.sets, s)
	}
	accepted := e.expiry - e.horizon
	n := floorDiv(accepted, s.span)
	g := s.gen(n)
	if g == nil {
		g = &generation{n: n, last: (n+1)*s.span - 1}
		s.gens = append(s.gens, g)
	}
	if g.keys.add(e.key) {
		d.n++
	}
}

// sweep drops the generations whose every key is past its horizon.
func (d *dedup) sweep(now int64) {
	for _, s := range d.sets {
		s.gens = slices.DeleteFunc(s.gens, func(g *generation) bool {
			if g.last+s.horizon < now {
				d.n -= g.keys.n
				return true
			}
			return false
		})
	}
	d.sets = slices.DeleteFunc(d.sets, func(s *dedupSet) bool { return len(s.gens) == 0 })
}

// keySet is a set of keys in one flat table (open addressing, linear
// probing), about 26 bytes a key: half what a map costs, which matters at
// millions of ids. Keys are hash prefixes already, so their first bytes
// place them; the all-zero key is kept aside, as zero marks a free slot.
type keySet struct {
	slots   []dedupKey
	n       int
	hasZero bool
}

func (s *keySet) home(k *dedupKey) int {
	hi, _ := bits.Mul64(binary.LittleEndian.Uint64(k[:8]), uint64(len(s.slots)))
	return int(hi)
}

func (s *keySet) has(k dedupKey) bool {
	if k == (dedupKey{}) {
		return s.hasZero
	}
	if len(s.slots) == 0 {
		return false
	}
	for i := s.home(&k); ; {
		switch s.slots[i] {
		case k:
			return true
		case dedupKey{}:
			return false
		}
		if i++; i == len(s.slots) {
			i = 0
		}
	}
}

// add adds k and reports whether it was new.
func (s *keySet) add(k dedupKey) bool {
	if k == (dedupKey{}) {
		added := !s.hasZero
		s.hasZero = true
		if added {
			s.n++
		}
		return added
	}
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	i := s.home(&k)
	for s.slots[i] != (dedupKey{}) {
		if s.slots[i] == k {
			return false
		}
		if i++; i == len(s.slots) {
			i = 0
		}
	}
	s.slots[i] = k
	s.n++
	return true
}

// grow makes the table half as big again: the load stays between 50 and
// 75 %, where an insert probes a few slots (up to 90 %, as before, filling
// a million keys at a restart took a fifth longer).
func (s *keySet) grow() {
	old := s.slots
	s.slots = make([]dedupKey, max(64, len(old)*3/2))
	for _, k := range old {
		if k == (dedupKey{}) {
			continue
		}
		i := s.home(&k)
		for s.slots[i] != (dedupKey{}) {
			if i++; i == len(s.slots) {
				i = 0
			}
		}
		s.slots[i] = k
	}
}

func (s *keySet) each(fn func(dedupKey)) {
	if s.hasZero {
		fn(dedupKey{})
	}
	for _, k := range s.slots {
		if k != (dedupKey{}) {
			fn(k)
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// entryFor makes the dedup entry of an event accepted at now, kept for
// horizon; ok is false when it is not to be remembered.
func entryFor(source, id string, horizon time.Duration, now time.Time) (dedupEntry, bool) {
	h := int64(horizon / time.Second)
	if id == "" || h <= 0 {
		return dedupEntry{}, false
	}
	return dedupEntry{key: keyOf(source, id), expiry: now.Unix() + h, horizon: h}, true
}

// appendDedupRecord frames keys as one dedup record.
func appendDedupRecord(b []byte, keys []dedupEntry) []byte {
	b, start := beginFrame(b, recDedup)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, e := range keys {
		b = append(b, e.key[:]...)
		b = binary.AppendVarint(b, e.expiry)
		b = binary.AppendUvarint(b, uint64(e.horizon))
	}
	return endFrame(b, start)
}

func (r *reader) dedupEntries(fn func(dedupEntry)) {
	n := r.count(18)
	for range n {
		e := dedupEntry{key: r.key(), expiry: r.varint(), horizon: int64(min(r.uvarint(), 1<<40))}
		if r.err != nil {
			return
		}
		fn(e)
	}
}
