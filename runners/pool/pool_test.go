package pool

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeWorker is an in-process Worker: Serve runs behave(), Kill ends it.
type fakeWorker struct {
	pid    int
	slots  int
	behave func(w http.ResponseWriter, r *http.Request, killed <-chan struct{}) error
	once   sync.Once
	done   chan struct{}
}

func (f *fakeWorker) PID() int   { return f.pid }
func (f *fakeWorker) Slots() int { return f.slots }
func (f *fakeWorker) Serve(i int, w http.ResponseWriter, r *http.Request) error {
	return f.behave(w, r, f.done)
}
func (f *fakeWorker) Kill()                    { f.once.Do(func() { close(f.done) }) }
func (f *fakeWorker) Stop(ctx context.Context) { f.Kill() }
func (f *fakeWorker) Done() <-chan struct{}    { return f.done }
func (f *fakeWorker) Exit() string             { return "killed" }

// fakeLauncher makes fakeWorkers; failFirst launches fail before it works.
type fakeLauncher struct {
	mu        sync.Mutex
	launched  []*fakeWorker
	failFirst int
	attempts  atomic.Int32
	behave    func(w http.ResponseWriter, r *http.Request, killed <-chan struct{}) error
	slots     int
}

func (l *fakeLauncher) Launch(ctx context.Context, id int) (Worker, error) {
	if int(l.attempts.Add(1)) <= l.failFirst {
		return nil, errors.New("import failed")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := &fakeWorker{pid: 1000 + len(l.launched), slots: max(l.slots, 1), behave: l.behave, done: make(chan struct{})}
	l.launched = append(l.launched, w)
	return w, nil
}

func (l *fakeLauncher) workers() []*fakeWorker {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*fakeWorker(nil), l.launched...)
}

func ok(w http.ResponseWriter, r *http.Request, killed <-chan struct{}) error {
	w.WriteHeader(200)
	return nil
}

// hang blocks until the worker is killed, as a wedged runner does.
func hang(w http.ResponseWriter, r *http.Request, killed <-chan struct{}) error {
	<-killed
	return ErrWorkerGone
}

func newPool(t *testing.T, opts Options, l *fakeLauncher) *Pool {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Backoff = Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}
	p := New(opts, l, log)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	return p
}

func serve(p *Pool) error {
	return p.Serve(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}

func TestStartFailureStopsTheOthers(t *testing.T) {
	l := &fakeLauncher{failFirst: 1, behave: ok}
	p := New(Options{Workers: 3}, l, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := p.Start(context.Background()); err == nil {
		t.Fatal("Start succeeded with a failing worker")
	}
	for _, w := range l.workers() {
		select {
		case <-w.Done():
		default:
			t.Errorf("worker %d left running after a failed start", w.pid)
		}
	}
}

func TestQueueFull(t *testing.T) {
	l := &fakeLauncher{behave: hang}
	p := newPool(t, Options{Workers: 1, QueueSize: 2, QueueWait: time.Minute}, l)
	started := make(chan error, 3)
	for range 3 { // one in service, two waiting
		go func() { started <- serve(p) }()
	}
	waitFor(t, func() bool { p.slots.mu.Lock(); defer p.slots.mu.Unlock(); return len(p.slots.waiters) == 2 })
	if err := serve(p); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("4th request: %v, want ErrQueueFull", err)
	}
	p.Shutdown(context.Background())
}

func TestQueueWaitTimeout(t *testing.T) {
	l := &fakeLauncher{behave: hang}
	p := newPool(t, Options{Workers: 1, QueueSize: 10, QueueWait: 50 * time.Millisecond}, l)
	go serve(p)
	waitFor(t, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.members[0].busy.Load() == 1 })
	if err := serve(p); !errors.Is(err, ErrQueueTimeout) {
		t.Fatalf("got %v, want ErrQueueTimeout", err)
	}
}

func TestDeadlineKillsAndRespawns(t *testing.T) {
	l := &fakeLauncher{behave: hang}
	p := newPool(t, Options{Workers: 1, Timeout: 50 * time.Millisecond, QueueWait: time.Second}, l)
	if err := serve(p); !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	waitFor(t, func() bool { return len(p.PIDs()) == 1 && len(l.workers()) == 2 })
	if got := p.PIDs(); got[0] != 1001 {
		t.Errorf("live pids %v, want the replacement 1001", got)
	}
}

func TestCrashLoopBacksOffThenRecovers(t *testing.T) {
	l := &fakeLauncher{behave: ok}
	p := newPool(t, Options{Workers: 1}, l)
	l.failFirst = int(l.attempts.Load()) + 3 // the next 3 respawns fail
	l.workers()[0].Kill()
	waitFor(t, func() bool { return len(p.PIDs()) == 1 && len(l.workers()) == 2 })
	if got := l.attempts.Load(); got != 5 {
		t.Errorf("launch attempts %d, want 5 (1 start + 3 failures + 1 success)", got)
	}
	if err := serve(p); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestMaxRequestsRecycles(t *testing.T) {
	l := &fakeLauncher{behave: ok}
	p := newPool(t, Options{Workers: 1, MaxRequests: 3, QueueWait: time.Second}, l)
	for i := range 7 {
		if err := serve(p); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := len(l.workers()); n < 3 {
		t.Errorf("%d workers launched for 7 requests at max 3, want at least 3", n)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		n    int
		want time.Duration
	}{
		{0, 0}, {-1, 0}, {1, 100 * time.Millisecond}, {2, 200 * time.Millisecond},
		{4, 800 * time.Millisecond}, {5, time.Second}, {50, time.Second},
	}
	for _, tc := range tests {
		if got := b.Delay(tc.n); got != tc.want {
			t.Errorf("Delay(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	if got := (Backoff{}).Delay(1); got != 100*time.Millisecond {
		t.Errorf("default base = %v", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
