package sdk

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestRawConns: a connection is taken whether it arrives before or after
// the request asks, and one its request abandoned is closed, even when it
// arrives after the abandon.
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
		}},
		{"asked first", func(t *testing.T, rc *rawConns) {
			f, _ := pipeFile(t)
			go func() { time.Sleep(20 * time.Millisecond); rc.arrive(2, f) }()
			if got, err := rc.take(ctx, 2); err != nil || got != f {
				t.Fatalf("take: %v %v", got, err)
			}
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
