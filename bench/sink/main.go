// Command sink is the load test's receiving end: it answers 200 to POSTs
// on any path, counts the events it receives by the "bench_id" and
// "bench_ts" that bench/loadgen put in them, wherever they are in the body
// (several per body count as several; JSON-escaped copies inside an
// envelope count too), measures end-to-end latency from bench_ts and counts
// duplicate bench_ids.
//
//	GET /stats         JSON figures; /stats?kv=1 the same as one key=value line
//	GET /reset         zero everything
//	GET /pause         hold every POST unanswered until /resume (a sink that
//	                   is down without failing: deliveries stay pending)
//	GET /resume        answer held and later POSTs again
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"switchboard/bench/latency"
)

// Both patterns also match JSON-escaped copies (\"bench_ts\":...), so an
// event sent as a string inside an envelope is still found.
var (
	reTS = regexp.MustCompile(`\\?"bench_ts\\?"\s*:\s*(\d{1,19})`)
	reID = regexp.MustCompile(`\\?"bench_id\\?"\s*:\s*\\?"([^"\\]{1,200})`)
)

// marks returns the bench_ts values and bench_ids found in body.
func marks(body []byte) (ts []int64, ids []string) {
	for _, m := range reTS.FindAllSubmatch(body, -1) {
		if v, err := strconv.ParseInt(string(m[1]), 10, 64); err == nil {
			ts = append(ts, v)
		}
	}
	for _, m := range reID.FindAllSubmatch(body, -1) {
		ids = append(ids, string(m[1]))
	}
	return ts, ids
}

type sink struct {
	failFrac float64
	sleep    time.Duration

	requests  atomic.Int64
	failed    atomic.Int64 // answered 500 on purpose
	delivered atomic.Int64 // events answered 200
	noMarks   atomic.Int64 // bodies answered 200 with neither bench_ts nor bench_id

	pauseMu sync.Mutex
	resumed chan struct{} // closed while not paused

	mu          sync.Mutex
	seen        map[string]struct{}
	dups        int64
	first, last time.Time
	e2e         latency.Recorder
}

func newSink() *sink {
	s := &sink{seen: map[string]struct{}{}, resumed: make(chan struct{})}
	close(s.resumed)
	return s
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		s.control(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.requests.Add(1)
	s.pauseMu.Lock()
	resumed := s.resumed
	s.pauseMu.Unlock()
	select {
	case <-resumed:
	case <-r.Context().Done():
		return // the sender gave up: not delivered, it will send again
	}
	if s.sleep > 0 {
		time.Sleep(s.sleep)
	}
	if s.failFrac > 0 && rand.Float64() < s.failFrac {
		s.failed.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	s.count(body, time.Now())
	w.WriteHeader(http.StatusOK)
}

func (s *sink) count(body []byte, now time.Time) {
	ts, ids := marks(body)
	n := max(len(ts), len(ids))
	if n == 0 {
		n = 1
		s.noMarks.Add(1)
	}
	s.delivered.Add(int64(n))
	var lat []int64
	for _, t := range ts {
		lat = append(lat, now.UnixNano()-t)
	}
	s.e2e.Merge(lat)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first.IsZero() {
		s.first = now
	}
	s.last = now
	for _, id := range ids {
		if _, ok := s.seen[id]; ok {
			s.dups++
		} else {
			s.seen[id] = struct{}{}
		}
	}
}

func (s *sink) control(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/stats":
		st := s.stats()
		if r.URL.Query().Get("kv") != "" {
			fmt.Fprintln(w, st.kv())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
		return
	case "/reset":
		s.reset()
	case "/pause":
		s.pauseMu.Lock()
		select {
		case <-s.resumed:
			s.resumed = make(chan struct{})
		default:
		}
		s.pauseMu.Unlock()
	case "/resume":
		s.pauseMu.Lock()
		select {
		case <-s.resumed:
		default:
			close(s.resumed)
		}
		s.pauseMu.Unlock()
	default:
		http.NotFound(w, r)
		return
	}
	io.WriteString(w, "ok\n")
}

type stats struct {
	Requests  int64           `json:"requests"`
	Failed    int64           `json:"failed_500"`
	Delivered int64           `json:"delivered"`
	Unique    int64           `json:"unique"`
	Dups      int64           `json:"duplicates"`
	NoMarks   int64           `json:"no_bench_marks"`
	WindowS   float64         `json:"window_s"`
	Rate      float64         `json:"rate_per_s"`
	E2E       latency.Summary `json:"e2e"`
}

func (s *sink) stats() stats {
	s.mu.Lock()
	st := stats{Dups: s.dups, Unique: int64(len(s.seen))}
	if !s.first.IsZero() {
		st.WindowS = s.last.Sub(s.first).Seconds()
	}
	s.mu.Unlock()
	st.Requests, st.Failed, st.Delivered, st.NoMarks = s.requests.Load(), s.failed.Load(), s.delivered.Load(), s.noMarks.Load()
	if st.WindowS > 0 {
		st.Rate = float64(st.Delivered) / st.WindowS
	}
	st.E2E = s.e2e.Summary()
	return st
}

func (st stats) kv() string {
	return fmt.Sprintf("delivered=%d dups=%d sink_rate=%.0f %s sink_500=%d no_marks=%d",
		st.Delivered, st.Dups, st.Rate, st.E2E.KV("e2e"), st.Failed, st.NoMarks)
}

func (s *sink) reset() {
	s.mu.Lock()
	s.seen = map[string]struct{}{}
	s.dups = 0
	s.first, s.last = time.Time{}, time.Time{}
	s.mu.Unlock()
	s.requests.Store(0)
	s.failed.Store(0)
	s.delivered.Store(0)
	s.noMarks.Store(0)
	s.e2e.Reset()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9100", "listen address (loopback only)")
	fail := flag.Float64("fail", 0, "fraction of POSTs answered 500 (0..1)")
	sleep := flag.Duration("sleep", 0, "wait this long before answering each POST")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Fatalf("refusing -addr %q: the sink listens on loopback only", *addr)
	}
	s := newSink()
	s.failFrac, s.sleep = *fail, *sleep
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		<-ch
		b, _ := json.Marshal(s.stats())
		fmt.Println(string(b))
		os.Exit(0)
	}()
	log.Fatal(http.ListenAndServe(*addr, s))
}
