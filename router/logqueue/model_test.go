package logqueue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"switchboard/router"
)

// The queue against a model, under random operations with restarts,
// tiny segments (so that rolling, compaction and deletion run all the
// time), delayed retries and a queue.max_bytes small enough that sinks
// keep reaching their share: after every operation the counts agree and
// each sink's pending bytes match its deliveries, every share decision
// follows the rule, after every restart the dead letters agree, and at the
// end every pending delivery is delivered once.
func TestRandomOperationsAgreeWithAModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4}
	steps := 1500
	if testing.Short() {
		seeds, steps = seeds[:1], 400
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { runModel(t, seed, steps) })
	}
}

type key struct{ event, sink string }

type model struct {
	t        *testing.T
	q        *Queue
	rnd      *rand.Rand
	pending  map[key]bool
	dead     map[key]bool
	inflight map[string]*router.Delivery // by delivery id
	n        int
	shared   int // deliveries that went to the dead letters past their share
}

// modelMaxBytes gives each of the three sinks room for about ten events.
const modelMaxBytes = 3 * 10 * 400

var modelSinks = []string{"a", "b", "c"}

func runModel(t *testing.T, seed uint64, steps int) {
	m := &model{t: t, rnd: rand.New(rand.NewPCG(seed, seed)), pending: map[key]bool{}, dead: map[key]bool{},
		inflight: map[string]*router.Delivery{}}
	m.q = open(t, Options{SegmentSize: 2048, DedupWindow: time.Hour, MaxBytes: modelMaxBytes})
	m.q.SetSinks(len(modelSinks))
	for step := range steps {
		switch r := m.rnd.IntN(100); {
		case r < 22:
			m.enqueue()
		case r < 52:
			m.take()
		case r < 80:
			m.settle()
		case r < 84:
			m.replay()
		case r < 87:
			m.purge()
		case r < 90:
			tick(t, m.q)
		case r < 92:
			m.drain()
		case r < 94:
			m.removeSink()
		case r < 97:
			m.restart()
		default:
			m.crash()
		}
		m.checkCounts(step)
		if err := m.q.checkInvariants(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
	}
	t.Logf("seed %d: segments %d..%d, %d events, %d pending, %d dead (%d past their share), compaction stuck at %d",
		seed, m.q.seg.first, m.q.seg.last, m.n, len(m.pending), len(m.dead), m.shared, m.q.w.compBroken)
	if m.shared == 0 {
		t.Errorf("no delivery went past its sink's share: the model does not exercise the rule")
	}
	for _, d := range m.inflight {
		m.q.Done(d)
		delete(m.pending, key{d.Event.ID, d.Sink})
	}
	m.inflight = map[string]*router.Delivery{}
	m.restart()
	for _, sink := range modelSinks {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			d, err := m.q.Next(ctx, sink)
			cancel()
			if err != nil {
				break
			}
			k := key{d.Event.ID, sink}
			if !m.pending[k] {
				t.Fatalf("at the end, %v delivered but not pending", k)
			}
			delete(m.pending, k)
			m.q.Done(d)
		}
	}
	if len(m.pending) > 0 {
		t.Errorf("never delivered: %v", m.pending)
	}
}

func (m *model) enqueue() {
	var batch []router.Routed
	for range 1 + m.rnd.IntN(3) {
		m.n++
		id := fmt.Sprint("m", m.n)
		var sinks []string
		for _, s := range modelSinks {
			if m.rnd.IntN(2) == 0 {
				sinks = append(sinks, s)
			}
		}
		batch = append(batch, router.Routed{Event: event("app", id), Sinks: sinks})
	}
	// Every earlier operation is applied (checkInvariants waited): what
	// the sinks hold now is what Enqueue decides from.
	q := m.q
	q.mu.Lock()
	had := map[string]int64{}
	for _, s := range modelSinks {
		had[s] = q.st.sinks[q.sink(s)].bytes
	}
	firstID := q.st.nextID + 1
	share := q.share()
	q.mu.Unlock()
	if err := q.Enqueue(context.Background(), batch); err != nil {
		if errors.Is(err, router.ErrQueueFull) && m.overShare(had, share) {
			return // replays took a sink past its share: max_bytes holds
		}
		m.t.Fatalf("Enqueue: %v (sinks hold %v of %d each)", err, had, share)
	}
	m.checkShares(batch, had, share, firstID)
}

// overShare reports whether some sink holds more than its share, as only
// replays can make it.
func (m *model) overShare(had map[string]int64, share int64) bool {
	for _, b := range had {
		if b > share {
			return true
		}
	}
	return false
}

// checkShares follows Enqueue's deliveries (ids are handed out in batch
// and sink order) and checks each decision: queued only while its sink
// stays within its share, a dead letter only when it would not.
func (m *model) checkShares(batch []router.Routed, had map[string]int64, share int64, id uint64) {
	q := m.q
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range batch {
		for _, sink := range r.Sinks {
			k := key{r.Event.ID, sink}
			di, ok := q.st.ids.find(&q.st.dels, id)
			id++
			if !ok {
				m.t.Fatalf("delivery %d of %v is not in the queue", id-1, k)
			}
			ds := q.st.dels.at(di)
			size := int64(q.st.events.at(ds.ev).n)
			if ds.state == dDead {
				if had[sink]+size <= share {
					m.t.Fatalf("%v went to the dead letters with %d + %d bytes of a %d-byte share", k, had[sink], size, share)
				}
				m.dead[k] = true
				m.shared++
				continue
			}
			if had[sink]+size > share {
				m.t.Fatalf("%v was queued with %d + %d bytes of a %d-byte share", k, had[sink], size, share)
			}
			had[sink] += size
			m.pending[k] = true
		}
	}
}

// drain delivers everything due for one sink: it came back.
func (m *model) drain() {
	sink := modelSinks[m.rnd.IntN(len(modelSinks))]
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		d, err := m.q.Next(ctx, sink)
		cancel()
		if err != nil {
			return
		}
		delete(m.pending, key{d.Event.ID, sink})
		m.q.Done(d)
	}
}

func (m *model) take() {
	sink := modelSinks[m.rnd.IntN(len(modelSinks))]
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	d, err := m.q.Next(ctx, sink)
	cancel()
	if err != nil {
		return
	}
	k := key{d.Event.ID, sink}
	if !m.pending[k] || m.inflight[d.ID] != nil {
		m.t.Fatalf("Next handed out %v (delivery %s), which is not pending or already in flight", k, d.ID)
	}
	sameEvent(m.t, d.Event, event("app", d.Event.ID))
	m.inflight[d.ID] = d
}

func (m *model) settle() {
	if len(m.inflight) == 0 {
		return
	}
	ids := make([]string, 0, len(m.inflight))
	for id := range m.inflight {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	d := m.inflight[ids[m.rnd.IntN(len(ids))]]
	delete(m.inflight, d.ID)
	k := key{d.Event.ID, d.Sink}
	d.Attempts++
	d.LastTry = time.Now()
	d.LastError = fmt.Sprint("failure ", d.Attempts)
	switch r := m.rnd.IntN(6); {
	case r < 4:
		m.q.Done(d)
		delete(m.pending, k)
	case r < 5:
		d.NotBefore = time.Now().Add(time.Duration(m.rnd.IntN(2)) * 20 * time.Millisecond)
		m.q.Retry(d)
	default:
		m.q.Dead(d)
		delete(m.pending, k)
		m.dead[k] = true
	}
}

// deadIDs returns the dead letters of sink ("" for all), waiting for every
// death submitted to be written.
func (m *model) deadList() []router.DeadLetter {
	var list []router.DeadLetter
	eventually(m.t, "the dead letters", func() bool {
		list, _ = listDead(m.q)
		return len(list) == len(m.dead)
	})
	return list
}

func (m *model) replay() {
	list := m.deadList()
	sink := modelSinks[m.rnd.IntN(len(modelSinks))]
	var ids []string
	for _, dl := range list {
		if dl.Sink == sink {
			ids = append(ids, dl.ID)
			k := key{dl.EventID, sink}
			delete(m.dead, k)
			m.pending[k] = true
		}
	}
	if len(ids) == 0 {
		return
	}
	if n, err := m.q.Replay(ids); err != nil || n != len(ids) {
		m.t.Fatalf("Replay(%v) = %d, %v", ids, n, err)
	}
}

func (m *model) purge() {
	list := m.deadList()
	if len(list) == 0 {
		return
	}
	dl := list[m.rnd.IntN(len(list))]
	if n, err := m.q.Purge([]string{dl.ID}); err != nil || n != 1 {
		m.t.Fatalf("Purge(%s) = %d, %v", dl.ID, n, err)
	}
	delete(m.dead, key{dl.EventID, dl.Sink})
}

// removeSink moves c's queued deliveries to the dead letters, as a reload
// that removes the sink does (its deliveries in flight stay with their
// worker).
func (m *model) removeSink() {
	inflight := map[key]bool{}
	for _, d := range m.inflight {
		inflight[key{d.Event.ID, d.Sink}] = true
	}
	want := 0
	for k := range m.pending {
		if k.sink == "c" && !inflight[k] {
			delete(m.pending, k)
			m.dead[k] = true
			want++
		}
	}
	// Retries not yet written are in flight for the queue too: wait.
	eventually(m.t, "retries to be written", func() bool {
		m.q.mu.Lock()
		defer m.q.mu.Unlock()
		s := m.q.st.sinks[m.q.sink("c")]
		return s.inFlight == countSink(m.inflight, "c")
	})
	if n, err := m.q.DeadLetterSinks(func(s string) bool { return s != "c" }, "sink removed"); err != nil || n != want {
		m.t.Fatalf("DeadLetterSinks = %d, %v; want %d", n, err, want)
	}
}

func countSink(inflight map[string]*router.Delivery, sink string) int {
	n := 0
	for _, d := range inflight {
		if d.Sink == sink {
			n++
		}
	}
	return n
}

// restart closes and reopens the queue: deliveries in flight go back to
// pending, as after a crash.
func (m *model) restart() {
	m.q = reopen(m.t, m.q)
	m.q.SetSinks(len(modelSinks))
	m.inflight = map[string]*router.Delivery{}
	m.checkDead()
}

// checkDead checks that every dead letter of the model is in the queue.
func (m *model) checkDead() {
	list := m.deadList()
	got := map[key]bool{}
	for _, dl := range list {
		got[key{dl.EventID, dl.Sink}] = true
		if dl.LastError == "" {
			m.t.Errorf("dead letter %s lost its error", dl.ID)
		}
	}
	for k := range m.dead {
		if !got[k] {
			m.t.Fatalf("after restart dead letter %v is missing", k)
		}
	}
}

// crash restarts from a copy of the queue's files taken in the writer
// right after the oldest segment was compacted but before it could be
// deleted (its dedup keys not yet saved), as a kill -9 can leave it: the
// start reads every live event twice, original then copy, and must count
// each once.
func (m *model) crash() {
	q := m.q
	var dir string
	err := q.barrierOp(func() error {
		if q.seg.first >= q.seg.last {
			return nil
		}
		saved := q.w.dedupSeg
		q.w.dedupSeg = q.seg.first
		defer func() { q.w.dedupSeg = saved }()
		q.w.compSeg, q.w.compOff = q.seg.first, 0
		for q.w.compSeg != 0 {
			if err := q.compactStep(); err != nil {
				return err
			}
		}
		dir = m.t.TempDir()
		return os.CopyFS(dir, os.DirFS(q.dir))
	})
	if err != nil {
		m.t.Fatalf("compaction before the crash: %v", err)
	}
	if dir == "" {
		m.restart()
		return
	}
	q.Close()
	opts := q.opts
	opts.Dir = dir
	m.q = open(m.t, opts)
	m.q.SetSinks(len(modelSinks))
	m.inflight = map[string]*router.Delivery{}
	m.checkDead()
}

func (m *model) checkCounts(step int) {
	want := map[string][2]int{}
	for k := range m.pending {
		w := want[k.sink]
		w[0]++
		want[k.sink] = w
	}
	for k := range m.dead {
		w := want[k.sink]
		w[1]++
		want[k.sink] = w
	}
	got := m.q.Stats()
	for _, s := range modelSinks {
		if got[s] != want[s] {
			m.t.Fatalf("step %d: sink %s: queue says %v (queued, dead), model %v", step, s, got[s], want[s])
		}
	}
}

// checkInvariants recomputes from the tables what the queue keeps as
// running totals: bytes by kind, and each segment's live records.
func (q *Queue) checkInvariants() error {
	// Let the writer apply what is submitted first.
	q.barrierOp(func() error { return nil })
	q.mu.Lock()
	defer q.mu.Unlock()
	var pending, dead int64
	recs := map[uint32]int64{}
	for c := range q.st.events.chunks {
		for _, e := range q.st.events.chunks[c] {
			switch {
			case e.pending > 0:
				pending += int64(e.n)
			case e.dead > 0:
				dead += int64(e.n)
			default:
				continue
			}
			recs[e.seg]++
		}
	}
	for c := range q.st.dels.chunks {
		for _, d := range q.st.dels.chunks[c] {
			if d.state == dFree || d.detail == (loc{}) {
				continue
			}
			if e := q.st.events.at(d.ev); d.detail != e.loc {
				recs[d.detail.seg]++
			}
		}
	}
	if pending != q.st.bytes || dead != q.st.deadBytes {
		return fmt.Errorf("totals say %d pending and %d dead bytes; the tables %d and %d", q.st.bytes, q.st.deadBytes, pending, dead)
	}
	// Each sink counts the stored size of every event it has a delivery
	// queued or in flight for.
	sinkBytes := make([]int64, len(q.st.sinks))
	for c := range q.st.dels.chunks {
		for _, d := range q.st.dels.chunks[c] {
			switch d.state {
			case dReady, dDelayed, dInFlight:
				sinkBytes[d.sink] += int64(q.st.events.at(d.ev).n)
			}
		}
	}
	for i, s := range q.st.sinks {
		if s.bytes != sinkBytes[i] {
			return fmt.Errorf("sink %s counts %d pending bytes; its deliveries %d", s.name, s.bytes, sinkBytes[i])
		}
		if s.reserved != 0 || s.reservedBytes != 0 {
			return fmt.Errorf("sink %s keeps %d deliveries (%d bytes) reserved with no Enqueue under way", s.name, s.reserved, s.reservedBytes)
		}
	}
	for n, sf := range q.seg.files {
		if sf.liveRecs != recs[uint32(n)] {
			return fmt.Errorf("segment %d counts %d live records; the tables %d", n, sf.liveRecs, recs[uint32(n)])
		}
	}
	return nil
}
