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
	pid     int
	slots   int
	behave  func(w http.ResponseWriter, r *http.Request, killed <-chan struct{}) error
	once    sync.Once
	done    chan struct{}
	stopped atomic.Bool // ended by Stop rather than Kill
	dumps   atomic.Int32
	mu      sync.Mutex
	aborts  map[int]chan struct{} // per slot: closed by Abort
	limit   string                // LimitHit's answer; set before Kill
	cpu     float64               // CPUSeconds' answer; set before Kill
}

func (f *fakeWorker) PID() int   { return f.pid }
func (f *fakeWorker) Slots() int { return f.slots }

// Serve runs behave; Abort ends the exchange, as closing a slot does.
func (f *fakeWorker) Serve(i int, w http.ResponseWriter, r *http.Request) error {
	aborted := make(chan struct{})
	f.mu.Lock()
	if f.aborts == nil {
		f.aborts = map[int]chan struct{}{}
	}
	f.aborts[i] = aborted
	f.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- f.behave(w, r, f.done) }()
	select {
	case err := <-errc:
		return err
	case <-aborted:
		return ErrWorkerGone
	}
}

func (f *fakeWorker) Abort(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.aborts[i])
}

func (f *fakeWorker) Kill()                    { f.once.Do(func() { close(f.done) }) }
func (f *fakeWorker) Stop(ctx context.Context) { f.stopped.Store(true); f.Kill() }
func (f *fakeWorker) Done() <-chan struct{}    { return f.done }
func (f *fakeWorker) Exit() string             { return "killed" }
func (f *fakeWorker) DumpStacks()              { f.dumps.Add(1) }
func (f *fakeWorker) LimitHit() string         { return f.limit }
func (f *fakeWorker) CPUSeconds() float64      { return f.cpu }

// fakeLauncher makes fakeWorkers; fail makes launches fail while it is set.
type fakeLauncher struct {
	mu       sync.Mutex
	launched []*fakeWorker
	fail     atomic.Int32 // launches left to fail
	killed   bool         // failures say the runner was killed while starting
	attempts atomic.Int32
	delay    time.Duration // how long a launch takes
	behave   func(w http.ResponseWriter, r *http.Request, killed <-chan struct{}) error
	slots    int
}

func (l *fakeLauncher) Launch(ctx context.Context, id int) (Worker, error) {
	l.attempts.Add(1)
	time.Sleep(l.delay)
	if l.fail.Add(-1) >= 0 {
		if l.killed {
			return nil, killedErr{}
		}
		return nil, errors.New("import failed")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := &fakeWorker{pid: 1000 + len(l.launched), slots: max(l.slots, 1), behave: l.behave, done: make(chan struct{})}
	l.launched = append(l.launched, w)
	return w, nil
}

// killedErr is a launch that failed because the runner was killed while
// it started (proc.SpawnError with a SIGKILL).
type killedErr struct{}

func (killedErr) Error() string       { return "runner exited during its start (killed by signal: killed)" }
func (killedErr) KilledAtStart() bool { return true }

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

// byPath: /hang hangs, /slow?D takes D (default 100 ms), anything else
// answers at once.
func byPath(w http.ResponseWriter, r *http.Request, killed <-chan struct{}) error {
	switch r.URL.Path {
	case "/hang":
		return hang(w, r, killed)
	case "/slow":
		d, err := time.ParseDuration(r.URL.RawQuery)
		if err != nil {
			d = 100 * time.Millisecond
		}
		select {
		case <-time.After(d):
		case <-killed:
			return ErrWorkerGone
		}
	}
	return ok(w, r, killed)
}

func newPool(t *testing.T, opts Options, l *fakeLauncher) *Pool {
	t.Helper()
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}
	}
	p := New(opts, l, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Bounded: some tests leave requests hanging on purpose.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

func serve(p *Pool, path string) error {
	if path == "" {
		path = "/"
	}
	return p.Serve(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStartFailureStopsTheOthers(t *testing.T) {
	l := &fakeLauncher{behave: ok}
	l.fail.Store(1)
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
	for range 3 { // one in service, two waiting
		go serve(p, "")
	}
	waitFor(t, "2 queued", func() bool { return p.slots.waiting() == 2 })
	if err := serve(p, ""); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("4th request: %v, want ErrQueueFull", err)
	}
}

func TestQueueWaitTimeout(t *testing.T) {
	l := &fakeLauncher{behave: hang}
	p := newPool(t, Options{Workers: 1, QueueSize: 10, QueueWait: 50 * time.Millisecond}, l)
	go serve(p, "")
	waitFor(t, "busy", func() bool { return p.inflight.Load() == 1 })
	if err := serve(p, ""); !errors.Is(err, ErrQueueTimeout) {
		t.Fatalf("got %v, want ErrQueueTimeout", err)
	}
}

// TestQueueWaitTimerReuse: the queue's timers are pooled, so a timer that
// fired for one request must not cut short the next one's wait.
func TestQueueWaitTimerReuse(t *testing.T) {
	l := &fakeLauncher{behave: byPath}
	// Margins wide enough for a loaded machine under -race: the slow
	// request outlasts the wait by 450ms, the quick one is 130ms inside it.
	p := newPool(t, Options{Workers: 1, QueueSize: 10, QueueWait: 150 * time.Millisecond}, l)
	for range 5 {
		go serve(p, "/slow?600ms")
		waitFor(t, "busy", func() bool { return p.inflight.Load() == 1 })
		if err := serve(p, "/"); !errors.Is(err, ErrQueueTimeout) {
			t.Fatalf("behind a 600ms request: %v, want ErrQueueTimeout", err)
		}
		waitFor(t, "idle", func() bool { return p.inflight.Load() == 0 })
		go serve(p, "/slow?20ms")
		waitFor(t, "busy", func() bool { return p.inflight.Load() == 1 })
		if err := serve(p, "/"); err != nil {
			t.Fatalf("behind a 20ms request: %v (a stale timer?)", err)
		}
	}
}

// TestDeadlineIsPerRequest: the watchdog measures each request, not how
// long a slot has been busy: back-to-back requests each under the deadline
// never time out, however long they keep the slot busy together.
func TestDeadlineIsPerRequest(t *testing.T) {
	l := &fakeLauncher{behave: byPath}
	p := newPool(t, Options{Workers: 1, Timeout: 60 * time.Millisecond, QueueWait: time.Second}, l)
	for i := range 10 {
		if err := serve(p, "/slow?30ms"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if err := serve(p, "/hang"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("hung request: %v, want ErrTimeout", err)
	}
}

// TestDeadlineSparesOtherSlots: a request past its deadline gets ErrTimeout
// at once; the runner's other slots finish their requests before it is
// stopped, and a replacement takes over.
func TestDeadlineSparesOtherSlots(t *testing.T) {
	l := &fakeLauncher{behave: byPath, slots: 2}
	p := newPool(t, Options{Workers: 1, Timeout: 50 * time.Millisecond, QueueWait: time.Second}, l)
	slowDone := make(chan error, 1)
	go func() {
		// Runs on the other slot from 20 ms to 60 ms: past the hung
		// request's deadline (50 ms), within its own (70 ms).
		time.Sleep(20 * time.Millisecond)
		slowDone <- serve(p, "/slow?40ms")
	}()
	start := time.Now()
	if err := serve(p, "/hang"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("deadline of 50ms answered after %v", d)
	}
	if err := <-slowDone; err != nil {
		t.Fatalf("the innocent request on the same runner failed: %v", err)
	}
	first := l.workers()[0]
	waitFor(t, "first runner stopped", func() bool {
		select {
		case <-first.Done():
			return true
		default:
			return false
		}
	})
	if !first.stopped.Load() {
		t.Error("runner was killed outright instead of stopped after its other slot finished")
	}
	waitFor(t, "replacement serving", func() bool { return len(p.PIDs()) == 1 && p.PIDs()[0] != first.pid })
	waitFor(t, "exit recorded as deadline", func() bool { return p.Exits()[ReasonDeadline] == 1 })
}

func TestSlowlogDumpsStacks(t *testing.T) {
	l := &fakeLauncher{behave: byPath}
	p := newPool(t, Options{Workers: 1, SlowAfter: 20 * time.Millisecond, QueueWait: time.Second}, l)
	if err := serve(p, "/slow"); err != nil {
		t.Fatal(err)
	}
	if err := serve(p, "/"); err != nil {
		t.Fatal(err)
	}
	if n := l.workers()[0].dumps.Load(); n != 1 {
		t.Errorf("stack dumps %d, want 1 (only for the slow request)", n)
	}
}

// TestCrashLoopMarksFailedThenRecovers: with no runner left and launches
// failing, the app answers ErrAppFailed at once (not after the queue wait),
// and recovers when a launch succeeds.
func TestCrashLoopMarksFailedThenRecovers(t *testing.T) {
	l := &fakeLauncher{behave: ok}
	p := newPool(t, Options{Workers: 1, QueueWait: time.Minute, FailAfter: 3,
		Backoff: Backoff{Base: 20 * time.Millisecond, Max: 20 * time.Millisecond}}, l)
	l.fail.Store(1 << 20)
	l.workers()[0].Kill()
	waitFor(t, "failed", p.failed.Load)
	start := time.Now()
	if err := serve(p, ""); !errors.Is(err, ErrAppFailed) {
		t.Fatalf("got %v, want ErrAppFailed", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("failed app answered after %v, want at once", d)
	}
	l.fail.Store(0)
	waitFor(t, "recovered", func() bool { return !p.failed.Load() && len(p.PIDs()) == 1 })
	if err := serve(p, ""); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if p.Exits()[ReasonCrash] != 1 {
		t.Errorf("exits %v, want one crash", p.Exits())
	}
}

// TestMaxRequestsNeverDipsCapacity: recycling starts the replacement first;
// at no point are fewer runners taking requests than configured.
func TestMaxRequestsNeverDipsCapacity(t *testing.T) {
	l := &fakeLauncher{behave: byPath, delay: 3 * time.Millisecond}
	p := newPool(t, Options{Workers: 2, MaxRequests: 10, QueueWait: time.Second}, l)
	var dips atomic.Int32
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if p.live() < 2 {
				dips.Add(1)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if err := serve(p, "/slow?1ms"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	// 200 requests at about 10 per runner: most runners were recycled.
	waitFor(t, "recycled runners stopped", func() bool { return p.Exits()[ReasonMaxRequests] >= 8 })
	if dips.Load() > 0 {
		t.Errorf("capacity dipped below 2 runners %d times", dips.Load())
	}
}

// TestHardMaxRequests: a runner that exits by itself at N (php-cgi) never
// gets request N+1.
func TestHardMaxRequests(t *testing.T) {
	var mu sync.Mutex
	served := map[int]int{}
	l := &fakeLauncher{}
	l.behave = func(w http.ResponseWriter, r *http.Request, killed <-chan struct{}) error {
		mu.Lock()
		defer mu.Unlock()
		served[len(l.launched)]++ // the newest runner serves: one worker
		return nil
	}
	p := newPool(t, Options{Workers: 1, HardMaxRequests: 3, QueueWait: time.Second}, l)
	for i := range 12 {
		if err := serve(p, "/"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	for gen, n := range served {
		if n > 3 {
			t.Errorf("runner %d was handed %d requests, over its hard limit 3", gen, n)
		}
	}
}

func TestMaxRSSRecycles(t *testing.T) {
	l := &fakeLauncher{behave: ok}
	var big atomic.Int64
	big.Store(1000) // pid over the limit
	p := newPool(t, Options{Workers: 1, MaxRSS: 100 << 20, QueueWait: time.Second,
		RSS: func(pid int) (int64, error) {
			if int64(pid) == big.Load() {
				return 200 << 20, nil
			}
			return 10 << 20, nil
		}}, l)
	waitFor(t, "recycled for RSS", func() bool { return p.Exits()[ReasonMaxRSS] == 1 })
	if pids := p.PIDs(); len(pids) != 1 || pids[0] == 1000 {
		t.Errorf("live %v, want the replacement only", pids)
	}
}

// TestDrainServesQueued: requests already queued when a pool drains (a
// reload swapped the route table) are served, not failed.
func TestDrainServesQueued(t *testing.T) {
	l := &fakeLauncher{behave: byPath}
	p := newPool(t, Options{Workers: 1, QueueWait: time.Minute}, l)
	errs := make(chan error, 5)
	for range 5 {
		go func() { errs <- serve(p, "/slow") }()
	}
	waitFor(t, "queued", func() bool { return p.slots.waiting() >= 3 })
	p.Drain(context.Background(), ReasonReload)
	for range 5 {
		if err := <-errs; err != nil {
			t.Errorf("queued request failed during drain: %v", err)
		}
	}
	if p.Exits()[ReasonReload] != 1 {
		t.Errorf("exits %v, want one reload", p.Exits())
	}
	if err := serve(p, "/"); !errors.Is(err, ErrStopped) {
		t.Errorf("after drain: %v, want ErrStopped", err)
	}
}
