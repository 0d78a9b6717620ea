package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"switchboard/daemon/history"
	"switchboard/redact"
	"switchboard/router"
)

// The live tap: GET /api/tap?source=&when= streams, as server-sent
// events, what the ingest pipeline makes of each request as it happens:
// accepted (with the rules matched and the sinks chosen), filtered,
// duplicate, or rejected with the reason.
//
// It costs the accept path one atomic load while nobody watches, and
// never slows it when someone does: each watcher has a bounded buffer,
// and an event that finds it full is dropped for that watcher alone and
// counted; the watcher is told how many it missed ("dropped" events). The
// `when` filter runs on the watcher's goroutine, not the accept path.
const (
	tapBuffer     = 1024
	maxTaps       = 16
	tapPing       = 15 * time.Second
	tapFlushBatch = 64
)

// TapItem is one outcome as the tap streams it: the JSON of each "event"
// of GET /api/tap, which `switchboard tap` reads.
type TapItem struct {
	At       time.Time       `json:"at"`
	Outcome  string          `json:"outcome"`
	Source   string          `json:"source,omitempty"`
	ID       string          `json:"id,omitempty"`
	Event    string          `json:"event_name,omitempty"`
	Status   string          `json:"status,omitempty"`
	Rules    []string        `json:"rules,omitempty"`
	Sinks    []string        `json:"sinks,omitempty"`
	HeldBack []string        `json:"held_back,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Error    string          `json:"error,omitempty"`
	Code     int             `json:"http_status,omitempty"`
	Body     json.RawMessage `json:"event,omitempty"` // the normalized event
	CutAt    int             `json:"payload_cut_at,omitempty"`

	ev   *router.Event // for the when filter, and Body
	once sync.Once
	json []byte // the item rendered, once for every watcher
}

// render encodes the item, on the first watcher's goroutine: the accept
// path only hands it over.
func (it *TapItem) render() []byte {
	it.once.Do(func() {
		if it.ev != nil {
			v := history.NewEntry(it.ev, it.Outcome, it.Rules, it.Sinks, it.HeldBack).View()
			it.Body, it.CutAt = v.Event, v.CutAt
		}
		b, err := json.Marshal(it)
		if err == nil {
			it.json = redact.Current().Bytes(b)
		}
	})
	return it.json
}

type tapWatcher struct {
	source  string
	ch      chan *TapItem
	dropped atomic.Int64
}

// tapHub fans items out to the watchers. The list is copied on each
// change, so that publishing takes no lock.
type tapHub struct {
	mu       sync.Mutex
	watchers atomic.Pointer[[]*tapWatcher]
}

// active is the accept path's one check.
func (h *tapHub) active() bool {
	l := h.watchers.Load()
	return l != nil && len(*l) > 0
}

func (h *tapHub) count() int {
	if l := h.watchers.Load(); l != nil {
		return len(*l)
	}
	return 0
}

func (h *tapHub) subscribe(source string) (*tapWatcher, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var cur []*tapWatcher
	if l := h.watchers.Load(); l != nil {
		cur = *l
	}
	if len(cur) >= maxTaps {
		return nil, false
	}
	w := &tapWatcher{source: source, ch: make(chan *TapItem, tapBuffer)}
	next := append(slices.Clone(cur), w)
	h.watchers.Store(&next)
	return w, true
}

func (h *tapHub) unsubscribe(w *tapWatcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l := h.watchers.Load(); l != nil {
		next := slices.DeleteFunc(slices.Clone(*l), func(x *tapWatcher) bool { return x == w })
		h.watchers.Store(&next)
	}
}

// publish hands it to every watcher of its source without waiting.
func (h *tapHub) publish(it *TapItem) {
	l := h.watchers.Load()
	if l == nil {
		return
	}
	for _, w := range *l {
		if w.source != "" && w.source != it.Source {
			continue
		}
		select {
		case w.ch <- it:
		default:
			w.dropped.Add(1)
		}
	}
}

// eventItem is the tap's view of an event; its payload is cut as the
// history cuts it, when rendered.
func eventItem(ev *router.Event, outcome string, rules, sinks, heldBack []string) *TapItem {
	return &TapItem{At: ev.ReceivedAt, Outcome: outcome, Source: ev.Source, ID: ev.ID, Event: ev.Event, Status: ev.Status,
		Rules: rules, Sinks: sinks, HeldBack: heldBack, ev: ev}
}

// serveTap is GET /api/tap.
func (d *Daemon) serveTap(w http.ResponseWriter, r *http.Request) {
	source := r.URL.Query().Get("source")
	if source != "" && d.snap.Load().Sources[source] == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("no source named %q is configured", source)})
		return
	}
	var cond *router.Condition
	if when := r.URL.Query().Get("when"); when != "" {
		var err error
		if cond, err = router.CompileCondition(when); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "when: " + err.Error()})
			return
		}
	}
	tw, ok := d.tap.subscribe(source)
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": fmt.Sprintf("%d taps are open already; close one", maxTaps)})
		return
	}
	defer d.tap.unsubscribe(tw)
	rc := http.NewResponseController(w)
	// The admin server's read timeout would end a long-lived answer.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not hold events back
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\nevent: hello\ndata: {\"source\":%q}\n\n", source)
	if rc.Flush() != nil {
		return
	}
	d.log.Info("tap opened", "source", source, "when", r.URL.Query().Get("when"), "remote", r.RemoteAddr)
	defer d.log.Info("tap closed", "remote", r.RemoteAddr)
	ping := time.NewTicker(tapPing)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.ctx.Done():
			return
		case <-ping.C:
			if !tapDropped(w, tw) {
				fmt.Fprint(w, ": ping\n\n")
			}
		case it := <-tw.ch:
			tapDropped(w, tw)
			writeTapItem(w, it, cond)
			for n := 1; n < tapFlushBatch && len(tw.ch) > 0; n++ {
				writeTapItem(w, <-tw.ch, cond)
			}
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// tapDropped tells the watcher how many items it missed, if any.
func tapDropped(w http.ResponseWriter, tw *tapWatcher) bool {
	n := tw.dropped.Swap(0)
	if n > 0 {
		fmt.Fprintf(w, "event: dropped\ndata: {\"dropped\":%d}\n\n", n)
	}
	return n > 0
}

func writeTapItem(w http.ResponseWriter, it *TapItem, cond *router.Condition) {
	if cond != nil {
		if it.ev == nil {
			return // a rejected request has no event to test
		}
		if ok, _ := cond.Match(it.ev); !ok {
			return
		}
	}
	b := it.render()
	if b == nil {
		return
	}
	w.Write([]byte("event: tap\ndata: "))
	w.Write(b)
	w.Write([]byte("\n\n"))
}
