package logqueue

// The in-memory index: what is queued where, in a few flat, pointer-free
// tables, so that a million pending deliveries cost tens of megabytes and
// the garbage collector has nothing to scan.

// loc is where a record starts: a segment and an offset in it.
type loc struct{ seg, off uint32 }

// eslot is one stored event.
type eslot struct {
	loc
	n       uint32 // the event record's frame length
	pending uint16 // deliveries queued or in flight
	dead    uint16 // dead letters
}

// Delivery states in memory.
const (
	dFree     = iota
	dReady    // in its sink's ready list
	dDelayed  // in its sink's delay heap
	dInFlight // handed out by Next
	dDead     // a dead letter
	dPending  // Enqueue'd, not yet committed: invisible
)

// dslot is one delivery.
type dslot struct {
	id uint64
	// at is when it was queued (pending) or its death's order number
	// (dead; see deadList).
	at int64
	// detail is the record holding its attempts and last error: a state
	// or dead record, or its event record when that holds its state (a
	// copy); zero when fresh.
	detail loc
	ev     uint32 // eslot index
	sink   uint16
	state  uint8
	raw    bool // a dead letter for an event record that cannot be read
}

const chunkBits = 14

// slab is a growable table of T in fixed chunks, so that growing never
// copies the whole table, with a free list of indexes.
type slab[T any] struct {
	chunks [][]T
	free   []uint32
	n      uint32 // indexes handed out so far, free or not
}

func (s *slab[T]) alloc() uint32 {
	if k := len(s.free); k > 0 {
		i := s.free[k-1]
		s.free = s.free[:k-1]
		return i
	}
	i := s.n
	if int(i>>chunkBits) == len(s.chunks) {
		s.chunks = append(s.chunks, make([]T, 1<<chunkBits))
	}
	s.n++
	return i
}

func (s *slab[T]) release(i uint32) {
	var zero T
	*s.at(i) = zero
	s.free = append(s.free, i)
}

func (s *slab[T]) at(i uint32) *T { return &s.chunks[i>>chunkBits][i&(1<<chunkBits-1)] }

// idIndex finds a delivery's slot by its id: open addressing with linear
// probing over slot numbers (+1, so that 0 is empty), the ids themselves
// living in the slots.
type idIndex struct {
	table []uint32
	n     int
	mask  uint64
	shift uint
}

func (x *idIndex) hash(id uint64) uint64 { return (id * 0x9E3779B97F4A7C15) >> x.shift }

func (x *idIndex) find(ds *slab[dslot], id uint64) (uint32, bool) {
	if x.n == 0 {
		return 0, false
	}
	for i := x.hash(id); ; i = (i + 1) & x.mask {
		ref := x.table[i]
		if ref == 0 {
			return 0, false
		}
		if ds.at(ref-1).id == id {
			return ref - 1, true
		}
	}
}

func (x *idIndex) insert(ds *slab[dslot], slot uint32) {
	if (x.n+1)*10 > len(x.table)*7 {
		x.grow(ds)
	}
	id := ds.at(slot).id
	i := x.hash(id)
	for x.table[i] != 0 {
		i = (i + 1) & x.mask
	}
	x.table[i] = slot + 1
	x.n++
}

func (x *idIndex) grow(ds *slab[dslot]) {
	old := x.table
	size := max(1024, 2*len(old))
	x.table = make([]uint32, size)
	x.mask = uint64(size - 1)
	x.shift = 64
	for s := size; s > 1; s >>= 1 {
		x.shift--
	}
	x.n = 0
	for _, ref := range old {
		if ref != 0 {
			x.insert(ds, ref-1)
		}
	}
}

// remove deletes id, shifting later entries of its probe run back so that
// no tombstones are needed.
func (x *idIndex) remove(ds *slab[dslot], id uint64) {
	if x.n == 0 {
		return
	}
	i := x.hash(id)
	for {
		ref := x.table[i]
		if ref == 0 {
			return
		}
		if ds.at(ref-1).id == id {
			break
		}
		i = (i + 1) & x.mask
	}
	x.n--
	for j := (i + 1) & x.mask; ; j = (j + 1) & x.mask {
		ref := x.table[j]
		if ref == 0 {
			break
		}
		home := x.hash(ds.at(ref - 1).id)
		// Move j back to the hole at i unless its home lies in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			x.table[i] = ref
			i = j
		}
	}
	x.table[i] = 0
}

// fifo is a growable ring of slot numbers: a sink's ready deliveries.
type fifo struct {
	buf  []uint32
	head int
	n    int
}

func (f *fifo) push(v uint32) {
	if f.n == len(f.buf) {
		nb := make([]uint32, max(64, 2*len(f.buf)))
		for i := range f.n {
			nb[i] = f.buf[(f.head+i)%len(f.buf)]
		}
		f.buf, f.head = nb, 0
	}
	f.buf[(f.head+f.n)%len(f.buf)] = v
	f.n++
}

func (f *fifo) pop() uint32 {
	v := f.buf[f.head]
	f.head = (f.head + 1) % len(f.buf)
	f.n--
	if f.n == 0 && len(f.buf) > 4096 {
		f.buf, f.head = nil, 0 // give a drained backlog's memory back
	}
	return v
}

func (f *fifo) front() uint32 { return f.buf[f.head] }

// filter keeps the slots for which keep is true, in order.
func (f *fifo) filter(keep func(uint32) bool) {
	var nb []uint32
	for i := range f.n {
		if v := f.buf[(f.head+i)%len(f.buf)]; keep(v) {
			nb = append(nb, v)
		}
	}
	f.buf, f.head, f.n = nb, 0, len(nb)
}

// delay is a min-heap of deliveries waiting for their next attempt.
type delay []delayed

type delayed struct {
	at   int64 // unix nanoseconds
	slot uint32
}

func (h *delay) push(d delayed) {
	*h = append(*h, d)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *delay) pop() delayed {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	*h = s[:last]
	h.down(0)
	return top
}

func (h delay) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].at < h[l].at {
			m = r
		}
		if h[i].at <= h[m].at {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// filter keeps the entries for which keep is true and restores the heap.
func (h *delay) filter(keep func(delayed) bool) {
	s := (*h)[:0]
	for _, d := range *h {
		if keep(d) {
			s = append(s, d)
		}
	}
	*h = s
	for i := len(s)/2 - 1; i >= 0; i-- {
		s.down(i)
	}
}
