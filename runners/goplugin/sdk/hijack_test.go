package sdk

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestRawConns: a connection is taken whether it arrives before or after
// the request asks, and one its request abandoned is closed, even when it
// arrives after the abandon. No entry outlives its request: abandon after
// a take used to leave one behind (a Hijack failing after take, then
// service.serve's abandon), one per such request.
func TestRawConns(t *testing.T) {
	pipeFile := func(t *testing.T) (*os.File, *os.File) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		return r, w
	}
	closed := func(f *os.File) bool { return f.Fd() == ^uintptr(0) } // os.File's Fd after Close
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, rc *rawConns)
	}{
		{"arrives first", func(t *testing.T, rc *rawConns) {
			f, _ := pipeFile(t)
			rc.arrive(1, f)
			if got, err := rc.take(ctx, 1); err != nil || got != f {
				t.Fatalf("take: %v %v", got, err)
			}
			rc.abandon(1) // its request's end, as service.serve does
			if closed(f) {
				t.Error("a taken connection closed at its request's end")
			}
		}},
		{"taken, then taken again", func(t *testing.T, rc *rawConns) {
			// A Hijack that failed after take (the head's send) and is
			// called again gets an error at once, not the 5 s wait.
			f, _ := pipeFile(t)
			rc.arrive(6, f)
			rc.take(ctx, 6)
			c, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if _, err := rc.take(c, 6); err == nil || c.Err() != nil {
				t.Errorf("second take: %v (ctx %v), want \"already taken\" at once", err, c.Err())
			}
			rc.abandon(6)
		}},
		{"asked first", func(t *testing.T, rc *rawConns) {
			f, _ := pipeFile(t)
			go func() { time.Sleep(20 * time.Millisecond); rc.arrive(2, f) }()
			if got, err := rc.take(ctx, 2); err != nil || got != f {
				t.Fatalf("take: %v %v", got, err)
			}
			rc.abandon(2)
		}},
		{"abandoned after arrival", func(t *testing.T, rc *rawConns) {
			f, _ := pipeFile(t)
			rc.arrive(3, f)
			rc.abandon(3)
			if !closed(f) {
				t.Error("not closed")
			}
		}},
		{"abandoned before arrival", func(t *testing.T, rc *rawConns) {
			f, _ := pipeFile(t)
			rc.abandon(4)
			rc.arrive(4, f)
			if !closed(f) {
				t.Error("not closed")
			}
		}},
		{"canceled wait, then its request's end", func(t *testing.T, rc *rawConns) {
			c, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := rc.take(c, 5); err == nil {
				t.Fatal("take returned no error")
			}
			f, _ := pipeFile(t)
			rc.abandon(5) // service.serve does, for a request that did not hijack
			rc.arrive(5, f)
			if !closed(f) {
				t.Error("not closed")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := &rawConns{m: make(map[uint32]*rawEntry)}
			tc.run(t, rc)
			if len(rc.m) != 0 {
				t.Errorf("%d entries left", len(rc.m))
			}
		})
	}
}
