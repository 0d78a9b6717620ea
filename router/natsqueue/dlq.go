package natsqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"switchboard/router"
)

// A dead letter's id is its sequence in the dead-letter stream: the same
// on every replica, and in `nats stream get STREAM_DLQ <id>`.

const adminTimeout = 30 * time.Second

// allDead returns every dead letter, oldest first, read with an ordered
// consumer that fetches headers only.
func (q *Queue) allDead() ([]router.DeadLetter, error) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	info, err := q.dlq.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cons, err := q.dlq.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{HeadersOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	out := make([]router.DeadLetter, 0, info.State.Msgs)
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read dead letters: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			out = append(out, deadLetter(meta.Sequence.Stream, m.Headers()))
			if meta.Sequence.Stream >= last || meta.NumPending == 0 {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read dead letters: %w", err)
		}
		if n == 0 {
			return out, nil // the rest was purged or replayed meanwhile
		}
	}
}

// GetDead implements router.DeadLetters.
func (q *Queue) GetDead(id string) (*router.DeadLetter, error) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	m, err := q.getDead(ctx, id)
	if err != nil {
		return nil, err
	}
	dl := deadLetter(m.Sequence, m.Header)
	ev, err := decodeEvent(m.Data)
	if err != nil {
		dl.LastError += fmt.Sprintf(" (the stored event cannot be read: %v)", err)
	} else {
		dl.Event = ev
	}
	return &dl, nil
}

func (q *Queue) getDead(ctx context.Context, id string) (*jetstream.RawStreamMsg, error) {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil || seq == 0 {
		return nil, router.ErrNotFound
	}
	m, err := q.dlq.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, router.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read dead letter %s: %w", id, err)
	}
	return m, nil
}

// selectDead resolves ids (nil: all) to dead-letter messages, failing with
// router.ErrNotFound before anything is changed if one is unknown.
func (q *Queue) selectDead(ctx context.Context, ids []string) ([]*jetstream.RawStreamMsg, error) {
	if ids == nil {
		list, err := q.allDead()
		if err != nil {
			return nil, err
		}
		for _, dl := range list {
			ids = append(ids, dl.ID)
		}
	}
	out := make([]*jetstream.RawStreamMsg, 0, len(ids))
	for _, id := range ids {
		m, err := q.getDead(ctx, id)
		if errors.Is(err, router.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", router.ErrNotFound, id)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Replay implements router.DeadLetters: each dead letter is queued for its
// sink again (fresh attempt count), and deleted once the stream has it. A
// failure in between leaves both: replayed twice, never lost.
func (q *Queue) Replay(ids []string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	msgs, err := q.selectDead(ctx, ids)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range msgs {
		sink := m.Header.Get(hdrSink)
		h := nats.Header{}
		// Two operators replaying the same dead letter at once queue it once.
		h.Set(jetstream.MsgIDHeader, "replay:"+strconv.FormatUint(m.Sequence, 10))
		if _, err := q.js.PublishMsg(ctx, &nats.Msg{Subject: q.names.subject(sink), Header: h, Data: m.Data}); err != nil {
			if isStoreLimit(err, "maximum") {
				err = fmt.Errorf("%w (%v)", router.ErrQueueFull, err)
			}
			return n, fmt.Errorf("replay dead letter %d: %w", m.Sequence, err)
		}
		if err := q.dlq.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return n, fmt.Errorf("dead letter %d was replayed but stays listed: %w", m.Sequence, err)
		}
		n++
	}
	return n, nil
}

// Purge implements router.DeadLetters.
func (q *Queue) Purge(ids []string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if ids == nil {
		info, err := q.dlq.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("purge dead letters: %w", err)
		}
		// Up to what was there when asked: a delivery dying meanwhile is
		// not purged unseen.
		if err := q.dlq.Purge(ctx, jetstream.WithPurgeSequence(info.State.LastSeq+1)); err != nil {
			return 0, fmt.Errorf("purge dead letters: %w", err)
		}
		return int(info.State.Msgs), nil
	}
	msgs, err := q.selectDead(ctx, ids)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range msgs {
		err := q.dlq.DeleteMsg(ctx, m.Sequence)
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return n, fmt.Errorf("purge dead letter %d: %w", m.Sequence, err)
		}
		if err == nil {
			n++
		}
	}
	return n, nil
}

// ListDead implements router.DeadLetters: one page of dead letters, newest
// first, without events. The cursor is the sequence to continue below.
func (q *Queue) ListDead(query router.DeadQuery) (router.DeadPage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	page := router.DeadPage{Items: []router.DeadLetter{}}
	limit := query.Limit
	if limit <= 0 {
		limit = router.DefaultDeadPage
	}
	info, err := q.dlq.Info(ctx)
	if err != nil {
		return page, fmt.Errorf("read dead letters: %w", err)
	}
	seq := info.State.LastSeq
	if query.Cursor != "" {
		c, err := strconv.ParseUint(query.Cursor, 10, 64)
		if err != nil || c == 0 {
			return page, fmt.Errorf("%w: %q", router.ErrBadCursor, query.Cursor)
		}
		seq = min(seq, c-1)
	}
	text := strings.ToLower(query.Text)
	for ; seq >= info.State.FirstSeq && seq > 0; seq-- {
		if len(page.Items) == limit {
			page.NextCursor = strconv.FormatUint(seq+1, 10)
			return page, nil
		}
		m, err := q.dlq.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return page, fmt.Errorf("read dead letters: %w", err)
		}
		dl := deadLetter(seq, m.Header)
		if query.Sink != "" && dl.Sink != query.Sink || text != "" && !strings.Contains(strings.ToLower(dl.LastError), text) {
			continue
		}
		page.Items = append(page.Items, dl)
	}
	return page, nil
}

// sweepEvery is how often each replica checks the dead-letter limits: a
// stream info request, about as often as the embedded queue checks them,
// so that the limits hold within seconds there too.
const sweepEvery = 2 * time.Second

// sweepDeadLetters drops the oldest dead letters past the age and size
// limits, every sweepEvery. Every replica sweeps; deleting by sequence
// means each dead letter is dropped, logged and counted once.
func (q *Queue) sweepDeadLetters() {
	defer q.wg.Done()
	if q.opts.DeadLetterMaxAge <= 0 && q.opts.DeadLetterMaxBytes <= 0 {
		return
	}
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		q.dropOldDeadLetters(time.Now())
		select {
		case <-q.closing:
			return
		case <-t.C:
		}
	}
}

// dropOldDeadLetters drops dead letters, oldest first, while the oldest is
// past DeadLetterMaxAge or all of them take more than DeadLetterMaxBytes.
func (q *Queue) dropOldDeadLetters(now time.Time) int {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	dropped := 0
	for range 100_000 {
		info, err := q.dlq.Info(ctx)
		if err != nil || info.State.Msgs == 0 {
			return dropped
		}
		st := info.State
		old := q.opts.DeadLetterMaxAge > 0 && now.Sub(st.FirstTime) > q.opts.DeadLetterMaxAge
		big := q.opts.DeadLetterMaxBytes > 0 && int64(st.Bytes) > q.opts.DeadLetterMaxBytes
		if !old && !big {
			return dropped
		}
		m, err := q.dlq.GetMsg(ctx, st.FirstSeq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // another replica dropped it
		}
		if err != nil {
			return dropped
		}
		if err := q.dlq.DeleteMsg(ctx, m.Sequence); err != nil {
			continue
		}
		dropped++
		dl := deadLetter(m.Sequence, m.Header)
		limit := "queue.dead_letter_max_age " + q.opts.DeadLetterMaxAge.String()
		if !old {
			limit = fmt.Sprintf("queue.dead_letter_max_bytes %d", q.opts.DeadLetterMaxBytes)
		}
		q.log.Error("dead letter dropped: past the dead-letter limit", "dead_letter", dl.ID, "sink", dl.Sink,
			"event_id", dl.EventID, "source", dl.Source, "dead_at", dl.DeadAt, "limit", limit)
		if q.opts.Dropped != nil {
			q.opts.Dropped(dl)
		}
	}
	return dropped
}
