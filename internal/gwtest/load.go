package gwtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// LoadResult counts every response of a bounded load run.
type LoadResult struct {
	OK, Failed, Refused int64
	Statuses            map[int]int64
	Errors              map[string]int64
}

func (r *LoadResult) String() string {
	return fmt.Sprintf("%d ok, %d failed (statuses %v, errors %v), %d refused", r.OK, r.Failed, r.Statuses, r.Errors, r.Refused)
}

// Load sends GET url from conns concurrent clients until ctx ends and counts
// every answer. Half the clients keep connections alive; the other half open
// a new connection per request, so refused connections show up.
func Load(ctx context.Context, url string, conns int) *LoadResult {
	res := &LoadResult{Statuses: map[int]int64{}, Errors: map[string]int64{}}
	var mu sync.Mutex
	var ok, failed, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range conns {
		tr := &http.Transport{DisableKeepAlives: i%2 == 1, MaxIdleConnsPerHost: 1}
		client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		wg.Add(1)
		// Each client stops when ctx ends.
		go func() {
			defer wg.Done()
			defer tr.CloseIdleConnections()
			for ctx.Err() == nil {
				req, _ := http.NewRequest("GET", url, nil)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					if errors.Is(err, syscall.ECONNREFUSED) {
						refused.Add(1)
					}
					failed.Add(1)
					mu.Lock()
					res.Errors[err.Error()]++
					mu.Unlock()
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && err == nil {
					ok.Add(1)
					continue
				}
				failed.Add(1)
				mu.Lock()
				res.Statuses[resp.StatusCode]++
				if err != nil {
					res.Errors[err.Error()]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.OK, res.Failed, res.Refused = ok.Load(), failed.Load(), refused.Load()
	return res
}
