package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// liveRunners reads /stats: each app's runners that take requests
// (starting and draining ones excluded).
func liveRunners(t *testing.T, stats string) map[string]int {
	t.Helper()
	resp, err := http.Get(stats + "/stats")
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	defer resp.Body.Close()
	var s struct {
		Apps []struct {
			Name    string `json:"name"`
			Runners []struct {
				State string `json:"state"`
			} `json:"runners"`
		} `json:"apps"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("stats: %v", err)
	}
	out := map[string]int{}
	for _, a := range s.Apps {
		for _, r := range a.Runners {
			if r.State == "idle" || r.State == "busy" {
				out[a.Name]++
			}
		}
	}
	return out
}

// latencies sends GET url from n clients until ctx ends and returns every
// successful request's latency, with the count of failures.
func latencies(ctx context.Context, url string, n int) (lat []time.Duration, failed int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		// Each client stops when ctx ends.
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 20 * time.Second}
			for ctx.Err() == nil {
				start := time.Now()
				resp, err := c.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(start)
				mu.Lock()
				if err == nil && resp.StatusCode == 200 {
					lat = append(lat, d)
				} else if ctx.Err() == nil {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lat, failed
}

func p99(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)*99)/100]
}

// TestFairShare: two apps share max_runners 4 with weights 1:1. "flood" is
// sent 1 s requests from 12 clients and grows to every place it can (3:
// calm keeps its floor of 1). When calm's own load needs a second runner,
// flood gives one back (its fair share is 2) and calm keeps both while the
// flood goes on; calm's p99 under the flood is reported beside its p99
// alone with the same two runners.
func TestFairShare(t *testing.T) {
	py := gwtest.RequirePython(t)
	cfg := writeFile(t, "gw.yaml", fmt.Sprintf(`
max_runners: 4
listen: {http: "127.0.0.1:0", stats: "127.0.0.1:0"}
apps:
  - {name: flood, path: %[1]q, interpreter: %[2]q, mount: /flood, workers: 4, min_workers: 1, worker_idle: 60s, timeout: 30s}
  - {name: calm, path: %[1]q, interpreter: %[2]q, mount: /calm, workers: 2, min_workers: 1, worker_idle: 60s, timeout: 30s}
`, suitePath("python/suite.py"), py))
	s := gwtest.Start(t, "-c", cfg)
	stats := "http://" + s.Addr("stats")

	floodCtx, stopFlood := context.WithTimeout(context.Background(), 20*time.Second)
	defer stopFlood()
	floodDone := make(chan int, 1)
	// Ends with floodCtx.
	go func() {
		_, failed := latencies(floodCtx, s.URL+"/flood/sleep?1", 12)
		floodDone <- failed
	}()
	waitFor(t, "flood at 3 runners", func() bool { return liveRunners(t, stats)["flood"] == 3 })

	calmCtx, stopCalm := context.WithTimeout(context.Background(), 6*time.Second)
	defer stopCalm()
	type result struct {
		lat    []time.Duration
		failed int
	}
	calmDone := make(chan result, 1)
	started := time.Now()
	// Ends with calmCtx.
	go func() { l, f := latencies(calmCtx, s.URL+"/calm/sleep?0.1", 4); calmDone <- result{l, f} }()
	waitFor(t, "calm at its share", func() bool { return liveRunners(t, stats)["calm"] == 2 })
	took := time.Since(started)
	// Held while the flood goes on.
	for range 10 {
		n := liveRunners(t, stats)
		if n["calm"] != 2 || n["flood"] > 2 {
			t.Fatalf("runners %v under contention: want calm 2, flood at most 2", n)
		}
		time.Sleep(300 * time.Millisecond)
	}
	under := <-calmDone
	stopFlood()
	if f := <-floodDone; f != 0 {
		t.Errorf("flood: %d failed requests", f)
	}

	// Calm alone, with the same two runners.
	aloneCtx, stopAlone := context.WithTimeout(context.Background(), 3*time.Second)
	defer stopAlone()
	alone, failed := latencies(aloneCtx, s.URL+"/calm/sleep?0.1", 4)
	if under.failed != 0 || failed != 0 {
		t.Fatalf("calm: %d failed under the flood, %d alone", under.failed, failed)
	}
	// The first second of calm's load waited for flood to give a runner
	// back (a 1 s request had to finish); the rest is the steady state.
	var steady []time.Duration
	for i, d := range under.lat {
		if i >= len(under.lat)/3 {
			steady = append(steady, d)
		}
	}
	t.Logf("calm got its second runner %v after its load began; p99 under the flood %v (steady state %v, %d requests), alone %v (%d requests)",
		took.Round(time.Millisecond), p99(under.lat), p99(steady), len(under.lat), p99(alone), len(alone))
	resp, err := http.Get(stats + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Budget struct {
			Max  int `json:"max_runners"`
			Apps []struct {
				Name  string  `json:"name"`
				Share float64 `json:"fair_share"`
			} `json:"apps"`
		} `json:"budget"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Budget.Max != 4 || len(st.Budget.Apps) != 2 {
		t.Errorf("/stats budget %+v, want max_runners 4 and both apps", st.Budget)
	}
	if p99(steady) > 2*p99(alone)+100*time.Millisecond {
		t.Errorf("calm's steady p99 under the flood %v, alone %v: the flood took its share", p99(steady), p99(alone))
	}
}
