// Package latency records latency samples for the load generator and the
// counting sink and reports percentiles.
package latency

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// maxSamples bounds memory (32 MB of samples); past it, new samples
// replace old ones round-robin, which keeps the recent tail.
const maxSamples = 4 << 20

// Recorder is a latency recorder safe for concurrent use.
type Recorder struct {
	mu  sync.Mutex
	s   []int64
	n   int64
	max int64
}

// Add records one sample.
func (r *Recorder) Add(d time.Duration) {
	r.mu.Lock()
	r.add(int64(d))
	r.mu.Unlock()
}

func (r *Recorder) add(d int64) {
	if len(r.s) < maxSamples {
		r.s = append(r.s, d)
	} else {
		r.s[r.n%maxSamples] = d
	}
	r.n++
	r.max = max(r.max, d)
}

// Merge records a goroutine's own samples under one lock.
func (r *Recorder) Merge(samples []int64) {
	r.mu.Lock()
	for _, d := range samples {
		r.add(d)
	}
	r.mu.Unlock()
}

// Reset forgets every sample.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.s, r.n, r.max = r.s[:0], 0, 0
	r.mu.Unlock()
}

// Summary is percentiles in milliseconds.
type Summary struct {
	N   int64   `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Summary returns the percentiles of the samples so far.
func (r *Recorder) Summary() Summary {
	r.mu.Lock()
	s := slices.Clone(r.s)
	n, mx := r.n, r.max
	r.mu.Unlock()
	if len(s) == 0 {
		return Summary{}
	}
	slices.Sort(s)
	at := func(q float64) float64 { return ms(s[int(q*float64(len(s)-1))]) }
	return Summary{N: n, P50: at(0.50), P99: at(0.99), Max: ms(mx)}
}

func ms(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }

// KV renders the summary as key=value pairs named after prefix.
func (s Summary) KV(prefix string) string {
	return fmt.Sprintf("%s_p50_ms=%.3f %s_p99_ms=%.3f %s_max_ms=%.3f", prefix, s.P50, prefix, s.P99, prefix, s.Max)
}
