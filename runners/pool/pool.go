// Package pool supervises one app's runner processes: it starts them, hands
// each request to a free slot (waiting in a bounded queue when none is
// free), enforces the request deadline, and replaces runners that die.
package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Worker is one started runner with Slots() request slots.
type Worker interface {
	PID() int
	Slots() int
	// Serve streams one request through slot i. Errors that mean the
	// worker is unusable wrap ErrWorkerGone.
	Serve(i int, w http.ResponseWriter, r *http.Request) error
	// Kill ends the process at once; Stop asks first and kills at ctx end.
	Kill()
	Stop(ctx context.Context)
	// Done is closed when the process has exited; Exit then says how.
	Done() <-chan struct{}
	Exit() string
}

// Launcher starts workers. Launch returns once the worker is ready to serve,
// or with an error (unwrapping to *proc.SpawnError for spawn failures).
type Launcher interface {
	Launch(ctx context.Context, id int) (Worker, error)
}

// Errors ServeHTTP callers branch on.
var (
	ErrQueueFull    = errors.New("queue full")
	ErrQueueTimeout = errors.New("timed out waiting for a free runner")
	ErrTimeout      = errors.New("request deadline exceeded")
	ErrWorkerGone   = errors.New("runner went away")
	ErrStopped      = errors.New("app is shutting down")
)

// Options configure a Pool.
type Options struct {
	Name        string
	Workers     int
	QueueSize   int           // requests that may wait for a free slot
	QueueWait   time.Duration // how long one may wait
	Timeout     time.Duration // per-request deadline; 0 = none
	MaxRequests int           // recycle a worker after this many; 0 = never
	Backoff     Backoff
}

// Pool is one app's set of workers.
type Pool struct {
	opts     Options
	launcher Launcher
	log      *slog.Logger
	slots    slotQueue

	ctx    context.Context // ends at Shutdown: stops respawns
	cancel context.CancelFunc
	wg     sync.WaitGroup // member watchers

	mu      sync.Mutex
	members map[int]*member
}

type member struct {
	id       int
	w        Worker
	started  time.Time
	requests atomic.Int64
	busy     atomic.Int32
	gone     atomic.Bool // dead or retiring: its slots are not handed out
}

type slotRef struct {
	m *member
	i int
}

// New makes a pool; Start launches its workers.
func New(opts Options, l Launcher, log *slog.Logger) *Pool {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{opts: opts, launcher: l, log: log, ctx: ctx, cancel: cancel,
		members: map[int]*member{}, slots: slotQueue{max: opts.QueueSize}}
}

// Start launches every worker concurrently and returns once all are ready.
// If any fails, the others are stopped and the first error is returned.
func (p *Pool) Start(ctx context.Context) error {
	type result struct {
		id  int
		w   Worker
		err error
	}
	results := make(chan result, p.opts.Workers)
	for id := range p.opts.Workers {
		// Each launch reports exactly once on results.
		go func() {
			w, err := p.launcher.Launch(ctx, id)
			results <- result{id, w, err}
		}()
	}
	var first error
	var ok []result
	for range p.opts.Workers {
		r := <-results
		if r.err != nil {
			if first == nil {
				first = r.err
			}
			continue
		}
		ok = append(ok, r)
	}
	if first != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, r := range ok {
			r.w.Stop(stopCtx)
		}
		return first
	}
	for _, r := range ok {
		p.add(r.id, r.w)
	}
	return nil
}

// add puts a ready worker in service and watches for its exit.
func (p *Pool) add(id int, w Worker) {
	m := &member{id: id, w: w, started: time.Now()}
	p.mu.Lock()
	p.members[id] = m
	p.mu.Unlock()
	for i := range w.Slots() {
		p.slots.release(slotRef{m, i})
	}
	p.wg.Add(1)
	// Ends when the worker exits; respawning stops at Shutdown.
	go p.watch(m)
}

func (p *Pool) watch(m *member) {
	defer p.wg.Done()
	<-m.w.Done()
	m.gone.Store(true)
	life := time.Since(m.started)
	if p.ctx.Err() != nil {
		return
	}
	p.log.Warn("runner exited", "app", p.opts.Name, "worker", m.id, "pid", m.w.PID(),
		"exit", m.w.Exit(), "requests", m.requests.Load(), "uptime", life.Round(time.Millisecond))
	p.respawn(m.id, life)
}

// respawn replaces worker id, backing off while replacements keep failing.
func (p *Pool) respawn(id int, life time.Duration) {
	failures := 0
	if life >= p.opts.Backoff.stableAfter() {
		failures = -1 // a long-lived worker's exit is not a crash loop
	}
	for {
		failures++
		if d := p.opts.Backoff.Delay(failures); d > 0 {
			select {
			case <-time.After(d):
			case <-p.ctx.Done():
				return
			}
		}
		w, err := p.launcher.Launch(p.ctx, id)
		if err == nil {
			if p.ctx.Err() != nil {
				w.Kill()
				return
			}
			p.log.Info("runner respawned", "app", p.opts.Name, "worker", id, "pid", w.PID())
			p.add(id, w)
			return
		}
		if p.ctx.Err() != nil {
			return
		}
		p.log.Error("runner respawn failed", "app", p.opts.Name, "worker", id, "attempt", failures, "err", err)
	}
}

// Serve hands r to a free slot, waiting for one in the queue, and streams
// the response to w under the request deadline.
func (p *Pool) Serve(w http.ResponseWriter, r *http.Request) error {
	if p.ctx.Err() != nil {
		return ErrStopped
	}
	s, err := p.acquire(r.Context())
	if err != nil {
		return err
	}
	m := s.m
	m.busy.Add(1)
	var timedOut atomic.Bool
	var timer *time.Timer
	if p.opts.Timeout > 0 {
		timer = time.AfterFunc(p.opts.Timeout, func() {
			timedOut.Store(true)
			p.log.Error("request deadline exceeded, killing runner", "app", p.opts.Name,
				"worker", m.id, "pid", m.w.PID(), "timeout", p.opts.Timeout, "path", r.URL.Path)
			m.w.Kill()
		})
	}
	err = m.w.Serve(s.i, w, r)
	if timer != nil {
		timer.Stop()
	}
	m.busy.Add(-1)
	n := m.requests.Add(1)
	switch {
	case timedOut.Load():
		m.gone.Store(true)
		return fmt.Errorf("%w after %v", ErrTimeout, p.opts.Timeout)
	case errors.Is(err, ErrWorkerGone):
		// The slot is unusable; the worker is dead or desynced. Kill it so
		// the watcher replaces it.
		m.gone.Store(true)
		m.w.Kill()
		return err
	}
	if p.opts.MaxRequests > 0 && n >= int64(p.opts.MaxRequests) && m.gone.CompareAndSwap(false, true) {
		p.log.Info("runner reached max requests, recycling", "app", p.opts.Name, "worker", m.id, "pid", m.w.PID(), "requests", n)
		// The watcher respawns it once it exits; Stop waits for its
		// other slots to go idle first.
		go p.retire(m)
	}
	p.slots.release(s)
	return err
}

// retire stops m once its busy slots are done.
func (p *Pool) retire(m *member) {
	for m.busy.Load() > 0 {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-m.w.Done():
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m.w.Stop(ctx)
}

func (p *Pool) acquire(ctx context.Context) (slotRef, error) {
	if s, ok := p.slots.tryAcquire(); ok {
		return s, nil // the common case: no timer, no context
	}
	if p.opts.QueueWait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, p.opts.QueueWait, ErrQueueTimeout)
		defer cancel()
	}
	s, err := p.slots.acquire(ctx)
	if err != nil && errors.Is(context.Cause(ctx), ErrQueueTimeout) {
		return s, ErrQueueTimeout
	}
	return s, err
}

// Shutdown stops respawning and stops every worker, asking first and killing
// at ctx's end. In-flight requests are the caller's to drain before this.
func (p *Pool) Shutdown(ctx context.Context) {
	p.cancel()
	p.mu.Lock()
	ms := make([]*member, 0, len(p.members))
	for _, m := range p.members {
		ms = append(ms, m)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		// Each stop returns once its process is gone.
		go func() { defer wg.Done(); m.w.Stop(ctx) }()
	}
	wg.Wait()
	p.wg.Wait()
}

// PIDs lists the live workers' process ids (for tests and stats).
func (p *Pool) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, m := range p.members {
		if !m.gone.Load() {
			pids = append(pids, m.w.PID())
		}
	}
	return pids
}
