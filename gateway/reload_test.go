package gateway

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/config"
)

// TestRetire: a retired table says it is idle exactly when its last pin
// goes, whoever holds it, and a pin after that (acquireTable's retry on a
// swapped table, a WebSocket's end re-pinning) neither reopens nor closes
// it twice.
func TestRetire(t *testing.T) {
	type step struct {
		pin      bool // else release
		wantIdle bool // after the step
	}
	tests := []struct {
		name       string
		pinned     int // requests pinning the table when it is retired
		steps      []step
		idleAtOnce bool
	}{
		{"no request", 0, []step{{true, true}, {false, true}}, true},
		{"two requests", 2, []step{{false, false}, {false, true}}, false},
		{"a retry pins and releases meanwhile", 1, []step{{true, false}, {false, false}, {false, true}}, false},
		{"a WebSocket unpins last, then re-pins at its end", 1, []step{{false, true}, {true, true}, {false, true}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := &table{}
			for range tc.pinned {
				tb.pin()
			}
			idle := tb.retire()
			if got := closed(idle); got != tc.idleAtOnce {
				t.Fatalf("idle at retire: %v, want %v", got, tc.idleAtOnce)
			}
			for i, s := range tc.steps {
				if s.pin {
					tb.pin()
				} else {
					tb.release()
				}
				if got := closed(idle); got != s.wantIdle {
					t.Fatalf("step %d (pin %v): idle %v, want %v", i, s.pin, got, s.wantIdle)
				}
			}
		})
	}
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestDrainLaterWaitsForLastRequest: the old generation's drain does not
// start while a request that loaded it runs, and starts once it ends
// (before, a 5 ms poll of refs noticed).
func TestDrainLaterWaitsForLastRequest(t *testing.T) {
	g := &Gateway{log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		cfg: &config.Config{Limits: config.Limits{ShutdownTimeout: time.Minute}}}
	old := &table{}
	g.routes.Store(old)
	req := g.acquireTable()
	g.routes.Store(&table{})
	started := make(chan error, 1)
	g.drainLater(old, func(ctx context.Context) { started <- ctx.Err() })
	select {
	case <-started:
		t.Fatal("the drain started while a request pinned the old table")
	case <-time.After(50 * time.Millisecond): // a window for a wrong start to show
	}
	req.release()
	select {
	case err := <-started:
		if err != nil {
			t.Errorf("drain started with its bound gone: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the drain did not start after the last request ended")
	}
	g.draining.Wait()
}

// TestRetireRacingRequests: requests pinning and releasing while the table
// is retired never leave it idle-less once they are all done (the last
// release and retire each check the other's write: one of them closes).
func TestRetireRacingRequests(t *testing.T) {
	for round := range 200 {
		tb := &table{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					tb.pin()
					tb.release()
				}
			}()
		}
		idle := tb.retire()
		wg.Wait()
		if !closed(idle) {
			t.Fatalf("round %d: all requests done, refs %d, but not idle", round, tb.refs.Load())
		}
	}
}
