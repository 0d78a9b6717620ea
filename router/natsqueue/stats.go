package natsqueue

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"switchboard/router"
)

// statsCache keeps the last answer of Stats for a second: the daemon's
// gauges and a scrape may ask at once, and each answer costs a request
// per sink.
type statsCache struct {
	at    time.Time
	stats map[string][2]int
}

// Stats returns, per sink, the deliveries queued or in flight (on every
// replica) and the dead letters kept.
func (q *Queue) Stats() map[string][2]int {
	q.mu.Lock()
	if c := q.stats; time.Since(c.at) < time.Second && c.stats != nil {
		q.mu.Unlock()
		return c.stats
	}
	q.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out := map[string][2]int{}
	pending, err := q.subjectCounts(ctx, q.work, q.names.stream+".d.")
	if err != nil {
		return nil
	}
	dead, err := q.subjectCounts(ctx, q.dlq, q.names.stream+".dlq.")
	if err != nil {
		return nil
	}
	for sink, n := range pending {
		v := out[sink]
		v[0] = n
		out[sink] = v
	}
	for sink, n := range dead {
		v := out[sink]
		v[1] = n
		out[sink] = v
	}
	q.mu.Lock()
	for sink := range q.conc {
		if _, ok := out[sink]; !ok {
			out[sink] = [2]int{} // a configured sink shows 0, not nothing
		}
	}
	q.stats = statsCache{at: time.Now(), stats: out}
	q.mu.Unlock()
	return out
}

// subjectCounts returns the messages per sink of a stream whose subjects
// are prefix + sink. In the work stream that is every delivery not yet
// acked: waiting, in flight or waiting for its retry.
func (q *Queue) subjectCounts(ctx context.Context, s jetstream.Stream, prefix string) (map[string]int, error) {
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		if sink, ok := strings.CutPrefix(subj, prefix); ok {
			out[sink] = int(n)
		}
	}
	return out, nil
}

// OldestPending returns, per sink with deliveries queued, how long the
// oldest of them has been waiting: the first message of its subject.
func (q *Queue) OldestPending(now time.Time) map[string]time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out := map[string]time.Duration{}
	for sink, v := range q.Stats() {
		if v[0] == 0 {
			continue
		}
		m, err := q.work.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(q.names.subject(sink)))
		if err == nil {
			out[sink] = now.Sub(m.Time)
		}
	}
	return out
}

// DeadLetterSinks moves the queued deliveries of every sink for which
// keep returns false to the dead letters, with reason as their error:
// deliveries to sinks the config no longer has. A sink that another
// replica still pulls from (during a rolling update, say) is left alone.
func (q *Queue) DeadLetterSinks(keep func(sink string) bool, reason string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	pending, err := q.subjectCounts(ctx, q.work, q.names.stream+".d.")
	if err != nil {
		return 0, err
	}
	total := 0
	for sink, n := range pending {
		if n == 0 || keep(sink) {
			continue
		}
		q.stopPump(sink)
		moved, err := q.drainSink(ctx, sink, reason)
		total += moved
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (q *Queue) stopPump(sink string) {
	q.mu.Lock()
	p := q.pumps[sink]
	delete(q.pumps, sink)
	q.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

func (q *Queue) drainSink(ctx context.Context, sink, reason string) (int, error) {
	cons, err := q.work.Consumer(ctx, sink)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		cons, err = q.work.CreateOrUpdateConsumer(ctx, q.consumerConfig(sink, 1))
	case err == nil:
		if info := cons.CachedInfo(); info.NumWaiting > 0 || info.NumAckPending > 0 {
			q.log.Warn("a sink this replica no longer has is still delivered by another replica; its queued deliveries stay queued",
				"sink", sink, "reason", reason)
			return 0, nil
		}
	}
	if err != nil {
		return 0, err
	}
	moved := 0
	for {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return moved, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var d *router.Delivery
			ev, _ := decodeEvent(m.Data())
			if meta, err := m.Metadata(); err == nil {
				d = &router.Delivery{Attempts: int(meta.NumDelivered) - 1}
			}
			if err := q.bury(sink, m, ev, d, reason); err != nil {
				m.Nak()
				return moved, err
			}
			moved++
		}
		if n == 0 {
			return moved, batch.Error()
		}
	}
}

// Bytes returns the bytes the work stream holds (every pending delivery,
// one message per sink) and queue.max_bytes.
func (q *Queue) Bytes() (used, limit int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := q.work.Info(ctx)
	if err != nil {
		return 0, max(q.opts.MaxBytes, 0)
	}
	return int64(info.State.Bytes), max(q.opts.MaxBytes, 0)
}
