package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMarks(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		ts   []int64
		ids  []string
	}{
		{"event as sent", `{"payload":{"bench_id":"a-1","bench_ts":1763600000123456789}}`, []int64{1763600000123456789}, []string{"a-1"}},
		{"spaces", `{"bench_id" : "a-1", "bench_ts" :  5}`, []int64{5}, []string{"a-1"}},
		{"escaped in an envelope", `{"text":"{\"bench_id\":\"a-2\",\"bench_ts\":7}"}`, []int64{7}, []string{"a-2"}},
		{"a batch", `[{"bench_id":"a","bench_ts":1},{"bench_id":"b","bench_ts":2}]`, []int64{1, 2}, []string{"a", "b"}},
		{"none", `{"id":"x"}`, nil, nil},
		{"ts beyond int64 is not a time", `{"bench_ts":99999999999999999999}`, nil, nil},
		{"a string ts is not a time", `{"bench_ts":"5"}`, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, ids := marks([]byte(tc.body))
			if !slices.Equal(ts, tc.ts) || !slices.Equal(ids, tc.ids) {
				t.Errorf("marks = %v %q, want %v %q", ts, ids, tc.ts, tc.ids)
			}
		})
	}
}

func FuzzMarks(f *testing.F) {
	f.Add([]byte(`{"bench_id":"a-1","bench_ts":1763600000123456789}`))
	f.Add([]byte(`{"text":"{\"bench_id\":\"a-2\",\"bench_ts\":7}"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ts, ids := marks(body)
		for _, id := range ids {
			if id == "" || strings.ContainsAny(id, `"\`) {
				t.Errorf("id %q", id)
			}
		}
		if len(ts) > strings.Count(string(body), "bench_ts") {
			t.Errorf("%d times from %d marks", len(ts), strings.Count(string(body), "bench_ts"))
		}
	})
}

// TestPauseHoldsDeliveriesUntilResume: while paused nothing is answered or
// counted; a sender that gives up is not counted; on resume the held
// deliveries are answered and counted once.
func TestPauseHoldsDeliveriesUntilResume(t *testing.T) {
	s := newSink()
	srv := httptest.NewServer(s)
	defer srv.Close()
	get := func(path string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get("/pause")
	gaveUp := &http.Client{Timeout: 50 * time.Millisecond}
	if resp, err := gaveUp.Post(srv.URL+"/in", "application/json", strings.NewReader(`{"bench_id":"gone","bench_ts":1}`)); err == nil {
		resp.Body.Close()
		t.Fatalf("a paused sink answered %d", resp.StatusCode)
	}
	var wg sync.WaitGroup
	codes := make([]int, 3)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(srv.URL+"/in", "application/json", strings.NewReader(`{"bench_id":"held","bench_ts":1}`))
			if err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.requests.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.stats().Delivered; got != 0 {
		t.Fatalf("counted %d while paused", got)
	}
	get("/resume")
	wg.Wait()
	st := s.stats()
	if !slices.Equal(codes, []int{200, 200, 200}) || st.Delivered != 3 || st.Dups != 2 || st.Unique != 1 {
		t.Errorf("codes %v, stats %+v; want three 200s counted, two of them duplicates", codes, st)
	}
}
