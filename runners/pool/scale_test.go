package pool

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// idLauncher launches fakeWorkers, each after its id's delay, and records
// which pid each id got.
type idLauncher struct {
	fakeLauncher
	delays map[int]time.Duration
	mu     sync.Mutex
	pids   map[int]int
}

func (l *idLauncher) Launch(ctx context.Context, id int) (Worker, error) {
	time.Sleep(l.delays[id])
	w, err := l.fakeLauncher.Launch(ctx, id)
	if err == nil {
		l.mu.Lock()
		if l.pids == nil {
			l.pids = map[int]int{}
		}
		l.pids[id] = w.PID()
		l.mu.Unlock()
	}
	return w, err
}

func (l *idLauncher) pidOf(id int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pids[id]
}

// fakeShare is a budget of free places shared with nobody but the test.
type fakeShare struct {
	mu       sync.Mutex
	free     int
	held     int
	wanting  bool
	unwants  int
	grants   chan struct{}
	reclaims chan struct{}
}

func newShare(free int) *fakeShare {
	return &fakeShare{free: free, grants: make(chan struct{}, 8), reclaims: make(chan struct{}, 8)}
}

func (s *fakeShare) Acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free > 0 {
		s.free--
		s.held++
		return true
	}
	s.wanting = true
	return false
}

func (s *fakeShare) Grants() <-chan struct{}   { return s.grants }
func (s *fakeShare) Reclaims() <-chan struct{} { return s.reclaims }

func (s *fakeShare) Unwant() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wanting = false
	s.unwants++
}

func (s *fakeShare) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.free++
	s.held--
}

// grant hands the waiting pool one place, as another app's release would.
func (s *fakeShare) grant() {
	s.mu.Lock()
	s.held++
	s.mu.Unlock()
	s.grants <- struct{}{}
}

func (s *fakeShare) state() (held, free int, wanting bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held, s.free, s.wanting
}

// startPool is newPool without the test's defaults: MinWorkers as given.
func startPool(t *testing.T, opts Options, l Launcher) *Pool {
	t.Helper()
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}
	}
	p := New(opts, l, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

// burst sends n requests to path at once and returns their errors.
func burst(p *Pool, n int, path string) <-chan error {
	errs := make(chan error, n)
	for range n {
		go func() { errs <- serve(p, path) }()
	}
	return errs
}

func wait(t *testing.T, errs <-chan error, n int) {
	t.Helper()
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("request: %v", err)
		}
	}
}

// TestIDsAreLaunchOrder: a worker's id is given when its launch starts, so
// a slow first launch keeps id 0 (it used to be numbered by readiness:
// the log said worker=1 for the pid /stats showed as worker 0).
func TestIDsAreLaunchOrder(t *testing.T) {
	l := &idLauncher{fakeLauncher: fakeLauncher{behave: ok},
		delays: map[int]time.Duration{0: 60 * time.Millisecond, 1: 0, 2: 20 * time.Millisecond}}
	p := startPool(t, Options{Workers: 3, QueueWait: time.Second}, l)
	check := func() {
		t.Helper()
		for _, r := range p.Stats().Runners {
			if want := l.pidOf(r.ID); r.PID != want {
				t.Errorf("runner %d has pid %d; its launch got pid %d", r.ID, r.PID, want)
			}
		}
	}
	check()
	old := l.pidOf(1)
	l.workers()[0].Kill() // the first ready: worker 1
	waitFor(t, "replacement", func() bool { return l.pidOf(3) != 0 && len(p.PIDs()) == 3 })
	check()
	for _, r := range p.Stats().Runners {
		if r.PID == old || r.ID == 1 {
			t.Errorf("crashed worker 1 (pid %d) still listed: %+v", old, r)
		}
	}
}

// TestGrowAndShrink: min 1, max 4: a burst of slow requests grows the pool
// to 4 runners, never more, and once idle for WorkerIdle it shrinks back
// to 1, counting each scale event and exit.
func TestGrowAndShrink(t *testing.T) {
	l := &fakeLauncher{behave: byPath, delay: 5 * time.Millisecond}
	p := startPool(t, Options{Workers: 4, MinWorkers: 1, WorkerIdle: 200 * time.Millisecond,
		QueueSize: 100, QueueWait: 5 * time.Second}, l)
	if n := len(p.PIDs()); n != 1 {
		t.Fatalf("started with %d runners, want the floor, 1", n)
	}
	start := time.Now()
	errs := burst(p, 8, "/slow?300ms")
	waitFor(t, "grown to 4", func() bool { return len(p.PIDs()) == 4 })
	if d := time.Since(start); d > time.Second {
		t.Errorf("grew to 4 after %v, want within a second", d)
	}
	wait(t, errs, 8)
	if n := len(l.workers()); n != 4 {
		t.Errorf("%d runners launched, want 4 (the ceiling)", n)
	}
	idleFrom := time.Now()
	waitFor(t, "shrunk to 1", func() bool { return len(p.PIDs()) == 1 && p.Exits()[ReasonScaleDown] == 3 })
	if d := time.Since(idleFrom); d < 150*time.Millisecond {
		t.Errorf("shrank %v after the burst, before worker_idle (200ms)", d)
	}
	s := p.Stats()
	if s.ScaleUps != 3 || s.ScaleDowns != 3 || s.Target != 1 || s.Min != 1 || s.Max != 4 {
		t.Errorf("stats: ups %d downs %d target %d min %d max %d, want 3 3 1 1 4",
			s.ScaleUps, s.ScaleDowns, s.Target, s.Min, s.Max)
	}
	if err := serve(p, "/"); err != nil {
		t.Fatalf("after shrinking: %v", err)
	}
}

// TestOnDemandColdStart: with no runner kept, the first request starts
// one and is served by it; after WorkerIdle it goes, and the next request
// starts another.
func TestOnDemandColdStart(t *testing.T) {
	l := &fakeLauncher{behave: ok, delay: 30 * time.Millisecond}
	p := startPool(t, Options{Workers: 2, MinWorkers: OnDemand, WorkerIdle: 100 * time.Millisecond,
		QueueWait: 5 * time.Second}, l)
	for round := range 2 {
		if n := len(p.PIDs()); n != 0 {
			t.Fatalf("round %d: %d runners before any request, want 0", round, n)
		}
		start := time.Now()
		if err := serve(p, "/"); err != nil {
			t.Fatalf("round %d: first request: %v", round, err)
		}
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Errorf("round %d: served in %v without a launch (30ms)?", round, d)
		}
		waitFor(t, "idle runner retired", func() bool {
			return len(p.PIDs()) == 0 && p.Exits()[ReasonScaleDown] == round+1
		})
	}
	if n, downs := len(l.workers()), p.Exits()[ReasonScaleDown]; n != 2 || downs != 2 {
		t.Errorf("launched %d, scaled down %d; want 2 and 2", n, downs)
	}
}

// TestOnDemandLaunchFailures: a request waiting for a first runner keeps
// waiting while launches fail and back off; each failure is counted.
// Past FailAfter with no runner, the app fails fast.
func TestOnDemandLaunchFailures(t *testing.T) {
	l := &fakeLauncher{behave: ok}
	l.fail.Store(2)
	p := startPool(t, Options{Workers: 1, MinWorkers: OnDemand, FailAfter: 5, QueueWait: 5 * time.Second}, l)
	if err := serve(p, "/"); err != nil {
		t.Fatalf("after 2 failed launches: %v", err)
	}
	if n := p.Exits()[ReasonFailedBoot]; n != 2 {
		t.Errorf("failed_boot %d, want 2", n)
	}

	l2 := &fakeLauncher{behave: ok}
	l2.fail.Store(1 << 20)
	p2 := startPool(t, Options{Workers: 1, MinWorkers: OnDemand, FailAfter: 2, QueueWait: 5 * time.Second}, l2)
	if err := serve(p2, "/"); !errors.Is(err, ErrAppFailed) {
		t.Fatalf("launches failing: %v, want ErrAppFailed", err)
	}
	if n := p2.Exits()[ReasonFailedBoot]; n < 2 {
		t.Errorf("failed_boot %d, want at least 2", n)
	}
}

// TestKilledAtStartNeverFailsTheApp: runners killed from outside while
// they start (an operator, the OOM killer) back off like any failed
// launch, but the app keeps queueing requests instead of answering 503 at
// once: it was never shown unable to start.
func TestKilledAtStartNeverFailsTheApp(t *testing.T) {
	l := &fakeLauncher{behave: ok, killed: true}
	l.fail.Store(4)
	p := startPool(t, Options{Workers: 1, MinWorkers: OnDemand, FailAfter: 2, QueueWait: 10 * time.Second,
		Backoff: Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}}, l)
	if err := serve(p, "/"); err != nil {
		t.Fatalf("after 4 launches killed at start: %v, want served", err)
	}
	if n := p.Exits()[ReasonFailedBoot]; n != 4 {
		t.Errorf("failed_boot %d, want 4", n)
	}
}

// TestShare: places come from the budget. With none free, a queued request
// waits for a grant; a grant nobody needs any more goes back; a reclaim
// retires an idle runner above the floor, or the next to become idle;
// Drain gives every place back.
func TestShare(t *testing.T) {
	sh := newShare(1)
	l := &fakeLauncher{behave: byPath}
	p := startPool(t, Options{Workers: 3, MinWorkers: 1, WorkerIdle: time.Minute, Share: sh,
		QueueSize: 10, QueueWait: 5 * time.Second}, l)
	errs := burst(p, 2, "/slow?200ms")
	waitFor(t, "waiting for a place", func() bool { _, _, w := sh.state(); return w })
	if n := len(l.workers()); n != 1 {
		t.Fatalf("%d runners with one place", n)
	}
	sh.grant()
	waitFor(t, "granted runner", func() bool { return len(p.PIDs()) == 2 })
	wait(t, errs, 2)
	waitFor(t, "unwanted", func() bool { _, _, w := sh.state(); return !w })

	sh.grant() // nobody waits now: it must come back
	waitFor(t, "unneeded grant released", func() bool { h, _, _ := sh.state(); return h == 2 })

	sh.reclaims <- struct{}{}
	waitFor(t, "reclaimed", func() bool { return len(p.PIDs()) == 1 && p.Exits()[ReasonScaleDown] == 1 })
	if h, _, _ := sh.state(); h != 1 {
		t.Errorf("holding %d places after the reclaim, want 1", h)
	}
	if n := p.Exits()[ReasonScaleDown]; n != 1 {
		t.Errorf("scale_down %d, want 1", n)
	}

	// Above the floor with every runner busy: the reclaim waits for one to
	// become idle.
	sh.mu.Lock()
	sh.free = 1
	sh.mu.Unlock()
	errs = burst(p, 2, "/slow?200ms")
	waitFor(t, "grown", func() bool { return len(p.PIDs()) == 2 && p.inflight.Load() == 2 })
	sh.reclaims <- struct{}{}
	wait(t, errs, 2)
	waitFor(t, "reclaimed once idle", func() bool { return len(p.PIDs()) == 1 && p.Exits()[ReasonScaleDown] == 2 })

	p.Shutdown(context.Background())
	if h, _, _ := sh.state(); h != 0 {
		t.Errorf("holding %d places after Drain, want 0", h)
	}
}

func TestStartNeedsPlaces(t *testing.T) {
	sh := newShare(1)
	p := New(Options{Workers: 2, Share: sh}, &fakeLauncher{behave: ok}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	err := p.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "max_runners") {
		t.Fatalf("Start with 1 place for 2 runners: %v, want an error naming max_runners", err)
	}
	if h, _, _ := sh.state(); h != 0 {
		t.Errorf("holding %d places after a failed Start", h)
	}
}

func TestScale(t *testing.T) {
	sh := newShare(5)
	l := &fakeLauncher{behave: byPath}
	p := startPool(t, Options{Workers: 2, Share: sh, QueueWait: time.Second}, l)
	if err := p.Scale(4); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "4 runners", func() bool { return len(p.PIDs()) == 4 })
	if lo, hi := p.Floor(); lo != 4 || hi != 4 {
		t.Errorf("Floor() = %d, %d; want 4, 4", lo, hi)
	}
	if err := p.Scale(6); err == nil {
		t.Error("Scale(6) with one free place succeeded")
	}
	if h, _, _ := sh.state(); h != 4 || len(p.PIDs()) != 4 {
		t.Errorf("a failed Scale changed things: %d places, %d runners", h, len(p.PIDs()))
	}
	errs := burst(p, 1, "/slow?100ms")
	waitFor(t, "one busy", func() bool { return p.inflight.Load() == 1 })
	if err := p.Scale(1); err != nil {
		t.Fatal(err)
	}
	wait(t, errs, 1)
	waitFor(t, "1 runner", func() bool { return len(p.PIDs()) == 1 && p.Exits()[ReasonScaleDown] == 3 })
	if h, _, _ := sh.state(); h != 1 {
		t.Errorf("holding %d places at 1 runner", h)
	}
	if lo, hi := p.Floor(); lo != 1 || hi != 4 {
		t.Errorf("Floor() = %d, %d; want 1, 4", lo, hi)
	}
}

// TestRestartRolling: every runner is replaced, each replacement ready
// before its predecessor stops taking requests.
func TestRestartRolling(t *testing.T) {
	l := &fakeLauncher{behave: byPath, delay: 10 * time.Millisecond}
	p := startPool(t, Options{Workers: 2, QueueWait: time.Second}, l)
	before := p.PIDs()
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
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both restarted", func() bool { return p.Exits()[ReasonRestart] == 2 })
	close(stop)
	watch.Wait()
	if dips.Load() > 0 {
		t.Errorf("capacity dipped below 2 runners %d times", dips.Load())
	}
	for _, pid := range p.PIDs() {
		for _, old := range before {
			if pid == old {
				t.Errorf("pid %d survived the restart", pid)
			}
		}
	}
	if err := serve(p, "/"); err != nil {
		t.Fatal(err)
	}
}
