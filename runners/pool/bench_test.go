package pool

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchWorker answers at once: what is measured is the pool's own work
// per request (take a slot, account, give it back).
type benchWorker struct {
	slots int
	done  chan struct{}
}

func (w *benchWorker) PID() int                                            { return 1 }
func (w *benchWorker) Slots() int                                          { return w.slots }
func (w *benchWorker) Serve(int, http.ResponseWriter, *http.Request) error { return nil }
func (w *benchWorker) Abort(int)                                           {}
func (w *benchWorker) Kill()                                               { w.stop() }
func (w *benchWorker) Stop(context.Context)                                { w.stop() }
func (w *benchWorker) Done() <-chan struct{}                               { return w.done }
func (w *benchWorker) Exit() string                                        { return "exit 0" }
func (w *benchWorker) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
}

type benchLauncher struct{ slots int }

func (l benchLauncher) Launch(context.Context, int) (Worker, error) {
	return &benchWorker{slots: l.slots, done: make(chan struct{})}, nil
}

// BenchmarkServe: the pool's cost per request, 2 runners of 4 slots, at
// 1 and 8 concurrent callers (8: requests queue for slots).
func BenchmarkServe(b *testing.B) {
	for _, par := range []int{1, 8} {
		b.Run(map[int]string{1: "serial", 8: "queued"}[par], func(b *testing.B) {
			p := New(Options{Name: "bench", Workers: 2, QueueSize: 1024}, benchLauncher{slots: 4}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err := p.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			r := httptest.NewRequest("GET", "/", nil)
			b.ReportAllocs()
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := p.Serve(nil, r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
