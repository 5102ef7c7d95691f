package pool

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	var h Histogram
	for range 90 {
		h.Observe(2 * time.Millisecond) // bucket (1ms, 2.5ms]
	}
	for range 10 {
		h.Observe(800 * time.Millisecond) // bucket (0.5s, 1s]
	}
	s := h.Snapshot()
	if s.Count != 100 || s.Sum != 90*2*time.Millisecond+10*800*time.Millisecond {
		t.Fatalf("count %d sum %v", s.Count, s.Sum)
	}
	tests := []struct {
		q      float64
		lo, hi time.Duration
	}{
		{0.5, time.Millisecond, 2500 * time.Microsecond},
		{0.9, time.Millisecond, 2500 * time.Microsecond},
		{0.99, 500 * time.Millisecond, time.Second},
	}
	for _, tc := range tests {
		if got := s.Quantile(tc.q); got < tc.lo || got > tc.hi {
			t.Errorf("p%v = %v, want within [%v, %v]", tc.q*100, got, tc.lo, tc.hi)
		}
	}
	if (Snapshot{}).Quantile(0.5) != 0 {
		t.Error("empty histogram has a quantile")
	}
}

func TestPoolStats(t *testing.T) {
	l := &fakeLauncher{behave: byPath, slots: 2}
	p := newPool(t, Options{Workers: 2, Timeout: 100 * time.Millisecond, QueueWait: time.Second}, l)
	for range 5 {
		if err := serve(p, "/"); err != nil {
			t.Fatal(err)
		}
	}
	busy := make(chan error)
	go func() { busy <- serve(p, "/slow?50ms") }()
	waitFor(t, "busy", func() bool { return p.Stats().States["busy"] == 1 })
	st := p.Stats()
	if st.Workers != 2 || len(st.Runners) != 2 || st.InFlight != 1 {
		t.Errorf("stats %+v", st)
	}
	var age float64
	for _, r := range st.Runners {
		age = max(age, r.RequestAge)
	}
	if age <= 0 {
		t.Errorf("no request age for the busy runner: %+v", st.Runners)
	}
	<-busy
	serve(p, "/hang") // deadline
	waitFor(t, "deadline exit", func() bool { return p.Stats().Exits[ReasonDeadline] == 1 })
	st = p.Stats()
	if st.Requests != 7 || st.LastExit != ReasonDeadline || st.Spawn.Count < 3 || st.QueueWait.Count != 7 {
		t.Errorf("requests %d last exit %q spawns %d queue waits %d", st.Requests, st.LastExit, st.Spawn.Count, st.QueueWait.Count)
	}
}

// TestNotDeliveredRetries: a runner found dead when handed a request (its
// socket refused the head) does not fail the request: another runner takes
// it.
func TestNotDeliveredRetries(t *testing.T) {
	var first atomic.Bool
	l := &fakeLauncher{behave: func(w http.ResponseWriter, r *http.Request, killed <-chan struct{}) error {
		if first.CompareAndSwap(false, true) {
			return fmt.Errorf("%w: %w", ErrWorkerGone, ErrNotDelivered)
		}
		w.WriteHeader(200)
		return nil
	}}
	p := newPool(t, Options{Workers: 2, QueueWait: time.Second}, l)
	rec := httptest.NewRecorder()
	if err := p.Serve(rec, httptest.NewRequest("GET", "/", nil)); err != nil || rec.Code != 200 {
		t.Fatalf("err %v, status %d: an undelivered request was not retried", err, rec.Code)
	}
}
