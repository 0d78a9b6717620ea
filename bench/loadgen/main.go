// Command loadgen posts provider-shaped webhook events to a router on this
// machine, as fast as it answers over -c keep-alive connections or at a
// fixed -rate, for -d or -n events, and prints one line of key=value
// figures. Half the events are MOBtexting whatsapp:message:status, half
// Bird voice.outbound; a fraction -match has status "failed", and
// payload.channel is x0..x<channels-1>. Every event carries a unique
// "bench_id" and "bench_ts" (unix nanoseconds when it was built), which the
// counting sink (bench/sink) reads back to measure end-to-end latency.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"switchboard/bench/latency"
)

type options struct {
	target   string
	conc     int
	rate     float64
	dur      time.Duration
	count    int64
	match    float64
	channels int
	timeout  time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.target, "url", "http://127.0.0.1:9200/events", "where to POST (loopback only)")
	flag.IntVar(&o.conc, "c", 32, "concurrent keep-alive connections")
	flag.Float64Var(&o.rate, "rate", 0, "events/s in total; 0 = as fast as answers come")
	flag.DurationVar(&o.dur, "d", 10*time.Second, "how long to send, at most")
	flag.Int64Var(&o.count, "n", 0, "stop after this many events (0 = no limit)")
	flag.Float64Var(&o.match, "match", 0.10, `fraction of events with status "failed"`)
	flag.IntVar(&o.channels, "channels", 1, "payload.channel takes x0..x<channels-1>, uniformly")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.Parse()
	u, err := url.Parse(o.target)
	if err != nil {
		log.Fatal(err)
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Fatalf("refusing %q: loadgen only posts to this machine", u.Host)
	}
	if o.channels < 1 || o.conc < 1 {
		log.Fatal("-c and -channels must be at least 1")
	}
	fmt.Println(run(o))
}

var (
	mobOK   = []string{"sent", "delivered", "read", "deleted"}
	voiceOK = []string{"ringing", "answered", "completed", "busy", "no-answer"}
)

// build appends one event to b.
func build(b []byte, rng *rand.Rand, o *options, id string) (out []byte, failed bool) {
	failed = rng.Float64() < o.match
	ch := strconv.Itoa(rng.IntN(o.channels))
	if rng.IntN(2) == 0 {
		st := mobOK[rng.IntN(len(mobOK))]
		if failed {
			st = "failed"
		}
		b = append(b, `{"event":"whatsapp:message:status","payload":{"id":"`...)
		b = append(b, id...)
		b = append(b, `","channel":"x`...)
		b = append(b, ch...)
		b = append(b, `","from":"919019120123","to":"919019912345","status":"`...)
		b = append(b, st...)
		b = append(b, `","delivered_at":"2021-06-18T14:48:06.886358Z","processed_at":"2021-06-18T14:48:06.886358Z","timestamp":"2021-06-18T14:48:06.886358Z","error":{"code":null,"message":null},"bench_id":"`...)
	} else {
		st := voiceOK[rng.IntN(len(voiceOK))]
		if failed {
			st = "failed"
		}
		b = append(b, `{"event":"voice.outbound","payload":{"callId":"`...)
		b = append(b, id...)
		b = append(b, `","channel":"x`...)
		b = append(b, ch...)
		b = append(b, `","channelId":"b827924e-9789-4c2f-a4d5-b352175354f6","status":"`...)
		b = append(b, st...)
		b = append(b, `","direction":"outgoing","source":"+31612345678","destination":"+31687654321","duration":42,"createdAt":"2024-03-01T10:00:00Z","bench_id":"`...)
	}
	b = append(b, id...)
	b = append(b, `","bench_ts":`...)
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	return append(b, `}}`...), failed
}

type counts struct {
	sent, accepted, non2xx, errors, matched, bytes atomic.Int64
}

func run(o options) string {
	client := &http.Client{Timeout: o.timeout, Transport: &http.Transport{
		MaxIdleConns: o.conc * 2, MaxIdleConnsPerHost: o.conc * 2, MaxConnsPerHost: o.conc,
		IdleConnTimeout: 30 * time.Second, DisableCompression: true,
	}}
	var c counts
	var rec latency.Recorder
	deadline := time.Now().Add(o.dur)
	var tokens <-chan time.Time
	if o.rate > 0 {
		tokens = pace(o, deadline)
	}
	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range o.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec.Merge(worker(client, &o, &c, tokens, deadline, runID+"-"+strconv.Itoa(w)))
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	s := rec.Summary()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	reqBytes := int64(0)
	if n := c.sent.Load(); n > 0 {
		reqBytes = c.bytes.Load() / n
	}
	return fmt.Sprintf("accepted_per_s=%.0f accepted=%d non2xx=%d errors=%d match_accepted=%d %s lg_cpu_cores=%.2f req_bytes=%d",
		float64(c.accepted.Load())/el, c.accepted.Load(), c.non2xx.Load(), c.errors.Load(), c.matched.Load(),
		s.KV("in"), cpu/el, reqBytes)
}

// pace hands out the scheduled send time of each event at a fixed rate;
// latency counts from the scheduled time, so a router that stalls is not
// hidden by requests that were never sent (coordinated omission).
func pace(o options, deadline time.Time) <-chan time.Time {
	tokens := make(chan time.Time, o.conc*4)
	go func() {
		defer close(tokens)
		start := time.Now()
		var issued int64
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for now := range tk.C {
			if now.After(deadline) {
				return
			}
			for due := int64(now.Sub(start).Seconds() * o.rate); issued < due; issued++ {
				if o.count > 0 && issued >= o.count {
					return
				}
				tokens <- start.Add(time.Duration(float64(issued) / o.rate * float64(time.Second)))
			}
		}
	}()
	return tokens
}

// worker sends events on one connection until the deadline, the count or
// the pacer ends, and returns its latency samples.
func worker(client *http.Client, o *options, c *counts, tokens <-chan time.Time, deadline time.Time, id string) []int64 {
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var samples []int64
	buf := make([]byte, 0, 1024)
	for seq := 1; ; seq++ {
		var t0 time.Time
		if tokens != nil {
			s, ok := <-tokens
			if !ok {
				return samples
			}
			t0 = s
		} else {
			t0 = time.Now()
			if t0.After(deadline) {
				return samples
			}
		}
		if n := c.sent.Add(1); o.count > 0 && n > o.count {
			c.sent.Add(-1)
			return samples
		}
		var failed bool
		buf, failed = build(buf[:0], rng, o, id+"-"+strconv.Itoa(seq))
		c.bytes.Add(int64(len(buf)))
		req, _ := http.NewRequest(http.MethodPost, o.target, bytes.NewReader(buf))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			c.errors.Add(1)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		samples = append(samples, int64(time.Since(t0)))
		if resp.StatusCode/100 != 2 {
			c.non2xx.Add(1)
			continue
		}
		c.accepted.Add(1)
		if failed {
			c.matched.Add(1)
		}
	}
}
