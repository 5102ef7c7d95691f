// Package pool supervises one app's runner processes: it starts them, hands
// each request to a free slot (waiting in a bounded queue when none is
// free), enforces the request deadline, recycles runners (max requests, max
// RSS) with their replacement ready first, and replaces runners that die.
package pool

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gwhq/gw/internal/reqinfo"
)

// Worker is one started runner with Slots() request slots.
type Worker interface {
	PID() int
	Slots() int
	// Serve streams one request through slot i. Errors that mean the
	// worker is unusable wrap ErrWorkerGone.
	Serve(i int, w http.ResponseWriter, r *http.Request) error
	// Abort ends the request on slot i at once (its deadline passed):
	// Serve(i) must then return promptly, and the slot may be unusable.
	// The pool calls it only while Serve(i) runs, at most once per request.
	Abort(i int)
	// Kill ends the process at once; Stop asks first and kills at ctx end.
	Kill()
	Stop(ctx context.Context)
	// Done is closed when the process has exited; Exit then says how.
	Done() <-chan struct{}
	Exit() string
}

// StackDumper is a Worker that can log the stacks of what it is running
// (the slowlog).
type StackDumper interface {
	DumpStacks()
}

// Launcher starts workers. Launch returns once the worker is ready to serve,
// or with an error (unwrapping to *proc.SpawnError for spawn failures).
type Launcher interface {
	Launch(ctx context.Context, id int) (Worker, error)
}

// Errors Serve callers branch on.
var (
	ErrQueueFull    = errors.New("queue full")
	ErrQueueTimeout = errors.New("timed out waiting for a free runner")
	ErrTimeout      = errors.New("request deadline exceeded")
	ErrWorkerGone   = errors.New("runner went away")
	ErrStopped      = errors.New("app is shutting down")
	ErrAppFailed    = errors.New("app is failing to start its runners")
	// ErrNotDelivered (with ErrWorkerGone) says the request never reached
	// the runner: it was dead before it could be handed the request.
	ErrNotDelivered = errors.New("request not delivered")
)

// Reason says why a runner left the pool.
type Reason string

// Exit reasons, recorded for every runner that leaves.
const (
	ReasonCrash       Reason = "crash"
	ReasonMaxRequests Reason = "max_requests"
	ReasonMaxRSS      Reason = "max_rss"
	ReasonDeadline    Reason = "deadline"
	ReasonHealth      Reason = "health"
	ReasonReload      Reason = "reload"
	ReasonShutdown    Reason = "shutdown"
)

// Options configure a Pool.
type Options struct {
	Name        string
	Workers     int
	QueueSize   int           // requests that may wait for a free slot
	QueueWait   time.Duration // how long one may wait
	Timeout     time.Duration // per-request deadline; 0 = none
	SlowAfter   time.Duration // log the runner's stacks for requests slower than this; 0 = off
	MaxRequests int           // recycle a worker after about this many; 0 = never
	// HardMaxRequests is a count at which a worker exits by itself (php-cgi
	// with PHP_FCGI_MAX_REQUESTS): it takes no request past it, even
	// before its replacement is ready. 0 = none.
	HardMaxRequests int
	MaxRSS          int64         // recycle a worker whose RSS exceeds this (bytes); 0 = off
	KillGrace       time.Duration // SIGTERM to SIGKILL when stopping a runner (default 5s)
	Backoff         Backoff
	// FailAfter is how many launches in a row may fail, with no runner
	// left, before the app is marked failed and answers 503 at once
	// (default 3).
	FailAfter int
	// RSS reads a process's resident set size in bytes (default: from
	// /proc). Tests inject their own.
	RSS func(pid int) (int64, error)
}

// Pool is one app's set of workers.
type Pool struct {
	opts     Options
	launcher Launcher
	log      *slog.Logger
	slots    slotQueue

	ctx    context.Context // ends when the pool drains: stops respawns
	cancel context.CancelFunc
	wg     sync.WaitGroup // member watchers and retirements

	mu      sync.Mutex
	members map[*member]struct{} // every process not yet exited
	nextID  int
	exits   map[Reason]int

	failed   atomic.Bool
	inflight atomic.Int64

	// Counters for Stats; recorded with atomics only.
	starting  atomic.Int32 // launches under way
	respawns  atomic.Int64
	lastExit  Reason // under mu
	queueWait Histogram
	latency   Histogram
	spawn     Histogram
}

type member struct {
	id       int
	w        Worker
	started  time.Time
	limit    int64 // requests before recycling (jittered), 0 = none
	requests atomic.Int64
	busy     atomic.Int32
	stuck    atomic.Int32 // slots abandoned at a deadline
	gone     atomic.Bool  // takes no new requests (dead or retiring)
	retiring atomic.Bool  // a retirement is under way
	reason   atomic.Pointer[Reason]
	slots    []slotState
}

// slotState is one slot's current request, as the watchdog sees it.
type slotState struct {
	since atomic.Int64 // when the current request started (unix ns); 0 = idle
	// Under mu, which orders the watchdog's Abort against the request's
	// end, so a deadline never hits the slot's next request.
	mu           sync.Mutex
	seq          uint64 // requests started on this slot
	method, path string // the current request's, for the slowlog
	slowSeq      uint64 // seq of the last request whose stacks were dumped
	abortSeq     uint64 // seq of the last request aborted at its deadline
}

type slotRef struct {
	m *member
	i int
}

// New makes a pool; Start launches its workers.
func New(opts Options, l Launcher, log *slog.Logger) *Pool {
	opts.Workers = max(opts.Workers, 1)
	if opts.KillGrace <= 0 {
		opts.KillGrace = 5 * time.Second
	}
	if opts.FailAfter <= 0 {
		opts.FailAfter = 3
	}
	if opts.RSS == nil {
		opts.RSS = procRSS
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{opts: opts, launcher: l, log: log.With("app", opts.Name), ctx: ctx, cancel: cancel,
		members: map[*member]struct{}{}, exits: map[Reason]int{}, slots: slotQueue{max: opts.QueueSize}}
}

// Start launches every worker concurrently and returns once all are ready.
// If any fails, the others are stopped and the first error is returned.
func (p *Pool) Start(ctx context.Context) error {
	type result struct {
		w   Worker
		err error
	}
	results := make(chan result, p.opts.Workers)
	for range p.opts.Workers {
		id := p.newID()
		// Each launch reports exactly once on results.
		go func() {
			w, err := p.launch(ctx, id)
			results <- result{w, err}
		}()
	}
	var first error
	var ok []Worker
	for range p.opts.Workers {
		r := <-results
		switch {
		case r.err != nil && first == nil:
			first = r.err
		case r.err == nil:
			ok = append(ok, r.w)
		}
	}
	if first != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), p.opts.KillGrace)
		defer cancel()
		for _, w := range ok {
			w.Stop(stopCtx)
		}
		return first
	}
	for i, w := range ok {
		p.add(i, w)
	}
	p.wg.Add(2)
	// The monitor and the watchdog end when the pool drains.
	go p.monitor()
	go p.watchdog()
	return nil
}

// launch starts one runner, counting it as starting meanwhile and timing it.
func (p *Pool) launch(ctx context.Context, id int) (Worker, error) {
	p.starting.Add(1)
	defer p.starting.Add(-1)
	start := time.Now()
	w, err := p.launcher.Launch(ctx, id)
	if err == nil {
		p.spawn.Observe(time.Since(start))
	}
	return w, err
}

func (p *Pool) newID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.nextID
	p.nextID++
	return id
}

// add puts a ready worker in service and watches for its exit.
func (p *Pool) add(id int, w Worker) *member {
	m := &member{id: id, w: w, started: time.Now(), slots: make([]slotState, w.Slots())}
	if n := p.opts.MaxRequests; n > 0 {
		// Up to 10% early, so runners started together do not all
		// recycle together (uWSGI's max-requests-delta).
		m.limit = int64(n - rand.IntN(n/10+1))
	}
	p.mu.Lock()
	if p.ctx.Err() != nil {
		// Draining: Drain has taken its list of members to stop; this one
		// arrived too late to be on it.
		p.mu.Unlock()
		w.Kill()
		return nil
	}
	p.members[m] = struct{}{}
	p.mu.Unlock()
	if p.failed.CompareAndSwap(true, false) {
		p.slots.setErr(nil)
		p.log.Warn("app recovered: a runner started again")
	}
	for i := range w.Slots() {
		p.slots.release(slotRef{m, i})
	}
	p.wg.Add(1)
	// Ends when the worker exits.
	go p.watch(m)
	return m
}

// watch waits for m's exit, records why, and replaces it when nothing
// planned its exit (a crash or a failed health check).
func (p *Pool) watch(m *member) {
	defer p.wg.Done()
	<-m.w.Done()
	m.gone.Store(true)
	reason := ReasonCrash
	if r := m.reason.Load(); r != nil {
		reason = *r
	}
	p.mu.Lock()
	delete(p.members, m)
	p.exits[reason]++
	p.lastExit = reason
	p.mu.Unlock()
	life := time.Since(m.started).Round(time.Millisecond)
	level := slog.LevelInfo
	if reason == ReasonCrash || reason == ReasonHealth || reason == ReasonDeadline {
		level = slog.LevelWarn
	}
	p.log.Log(context.Background(), level, "runner exited", "worker", m.id, "pid", m.w.PID(),
		"reason", reason, "exit", m.w.Exit(), "requests", m.requests.Load(), "uptime", life)
	if m.retiring.Load() || p.ctx.Err() != nil {
		return // its replacement is already arranged, or we are stopping
	}
	p.respawn(life >= p.opts.Backoff.stableAfter())
}

// respawn starts a replacement, backing off while launches keep failing.
// After FailAfter failures with no runner alive, the app answers 503 at
// once instead of queueing requests nobody will serve.
func (p *Pool) respawn(stable bool) {
	failures := 0
	if stable {
		failures = -1 // a long-lived runner's exit is no crash loop
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
		id := p.newID()
		w, err := p.launch(p.ctx, id)
		if err == nil {
			if p.ctx.Err() != nil {
				w.Kill()
				return
			}
			p.respawns.Add(1)
			p.log.Info("runner respawned", "worker", id, "pid", w.PID())
			p.add(id, w)
			return
		}
		if p.ctx.Err() != nil {
			return
		}
		p.log.Error("runner respawn failed", "worker", id, "attempt", failures, "err", err)
		if failures >= p.opts.FailAfter && p.live() == 0 && p.failed.CompareAndSwap(false, true) {
			p.log.Error("app failed: its runners keep crashing at start; answering 503 while retrying",
				"retry_every", p.opts.Backoff.maxDelay(), "err", err)
			p.slots.setErr(ErrAppFailed)
		}
	}
}

// busy counts slots serving a request (abandoned ones excluded). Slots are
// counted busy the moment the queue hands them out, before Serve runs.
func (p *Pool) busy() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for m := range p.members {
		n += int(m.busy.Load())
	}
	return n
}

// live counts members that take requests.
func (p *Pool) live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for m := range p.members {
		if !m.gone.Load() {
			n++
		}
	}
	return n
}

// Serve hands r to a free slot, waiting for one in the queue, and streams
// the response to w under the request deadline.
func (p *Pool) Serve(w http.ResponseWriter, r *http.Request) error {
	err := p.serveOnce(w, r)
	if errors.Is(err, ErrNotDelivered) {
		// The runner died before it could take the request: nothing
		// reached the app (nor came back), so another runner may serve it.
		err = p.serveOnce(w, r)
	}
	return err
}

func (p *Pool) serveOnce(w http.ResponseWriter, r *http.Request) error {
	if p.ctx.Err() != nil {
		return ErrStopped
	}
	queued := time.Now()
	s, err := p.acquire(r.Context())
	timing := reqinfo.TimingFrom(r.Context()) // nil unless the access log is on
	if err != nil {
		if timing != nil {
			timing.QueueWait = time.Since(queued)
		}
		return err
	}
	start := time.Now()
	p.queueWait.Observe(start.Sub(queued))
	m := s.m // counted busy by the slot queue
	defer func() { p.latency.Observe(time.Since(start)) }()
	st := &m.slots[s.i]
	st.mu.Lock()
	st.seq++
	seq := st.seq
	st.method, st.path = r.Method, r.URL.Path
	st.since.Store(start.UnixNano())
	st.mu.Unlock()
	p.inflight.Add(1)
	// The deadline and the slowlog are the watchdog's: no timer or context
	// per request on the hot path.
	err = m.w.Serve(s.i, w, r)
	if timing != nil {
		timing.QueueWait, timing.AppTime, timing.PID = start.Sub(queued), time.Since(start), m.w.PID()
	}
	st.mu.Lock()
	st.since.Store(0)
	timedOut := st.abortSeq == seq
	st.mu.Unlock()
	p.inflight.Add(-1)
	n := m.requests.Add(1)
	if timedOut {
		// The slot is abandoned mid-request; the other slots finish their
		// requests before the runner is stopped (the deadline is the
		// request's, not the worker's).
		m.stuck.Add(1)
		m.busy.Add(-1)
		p.log.Error("request deadline exceeded: answering 504 and replacing the runner", "worker", m.id,
			"pid", m.w.PID(), "timeout", p.opts.Timeout, "method", r.Method, "path", r.URL.Path)
		p.retire(m, ReasonDeadline, true)
		return ErrTimeout
	}
	m.busy.Add(-1)
	if errors.Is(err, ErrWorkerGone) {
		// Dead or desynced: kill it so the watcher replaces it.
		p.slots.markGone(m)
		m.w.Kill()
		return err
	}
	if hard := int64(p.opts.HardMaxRequests); hard > 0 && n >= hard {
		p.retire(m, ReasonMaxRequests, true)
	} else if m.limit > 0 && n >= m.limit {
		// It keeps serving until its replacement is ready.
		p.retire(m, ReasonMaxRequests, false)
	}
	p.slots.release(s)
	return err
}

// retire replaces m: the replacement is started and ready first, so
// capacity never dips; then m takes no new requests, finishes the ones it
// has and is stopped. now means m takes no new requests from this moment
// (it is compromised or at its hard limit).
func (p *Pool) retire(m *member, reason Reason, now bool) {
	if now {
		p.slots.markGone(m)
	}
	if !m.retiring.CompareAndSwap(false, true) {
		return
	}
	m.reason.Store(&reason)
	p.log.Info("recycling runner", "worker", m.id, "pid", m.w.PID(), "reason", reason, "requests", m.requests.Load())
	p.wg.Add(1)
	// Ends once m has exited (or the pool is draining, which stops it).
	go func() {
		defer p.wg.Done()
		if p.ctx.Err() == nil {
			id := p.newID()
			if w, err := p.launch(p.ctx, id); err == nil {
				p.add(id, w)
			} else if p.ctx.Err() == nil {
				p.log.Error("replacement runner failed to start; respawning with backoff", "worker", id, "err", err)
				// m.retiring stays set, so its exit does not respawn:
				// this goroutine does, with backoff.
				defer p.respawn(false)
			}
		}
		p.slots.markGone(m)
		p.stopWhenIdle(m)
	}()
}

// stopWhenIdle waits until m's only busy slots are abandoned ones, then
// stops it: SIGTERM, SIGKILL after the grace.
func (p *Pool) stopWhenIdle(m *member) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for m.busy.Load() > 0 {
		select {
		case <-tick.C:
		case <-m.w.Done():
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.KillGrace)
	defer cancel()
	m.w.Stop(ctx)
}

func (p *Pool) acquire(ctx context.Context) (slotRef, error) {
	if s, ok := p.slots.tryAcquire(); ok {
		return s, nil // the common case: no timer, no context
	}
	return p.slots.acquire(ctx, p.opts.QueueWait)
}

// Drain stops the pool: no respawns; requests already queued or running
// finish (no new ones arrive once the route table no longer points here)
// until ctx ends; then every runner is stopped (SIGTERM, SIGKILL after the
// grace) with reason as its exit reason.
func (p *Pool) Drain(ctx context.Context, reason Reason) {
	p.mu.Lock()
	p.cancel() // under mu: add() sees it before adding anyone
	p.mu.Unlock()
	tick := time.NewTicker(5 * time.Millisecond)
	for ctx.Err() == nil && (p.busy() > 0 || p.slots.waiting() > 0) {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	tick.Stop()
	p.slots.setErr(ErrStopped)
	p.mu.Lock()
	ms := make([]*member, 0, len(p.members))
	for m := range p.members {
		ms = append(ms, m)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		p.slots.markGone(m)
		if m.retiring.CompareAndSwap(false, true) {
			m.reason.Store(&reason)
		}
		wg.Add(1)
		// Each stop returns once its process is gone.
		go func() {
			defer wg.Done()
			stopCtx, cancel := context.WithTimeout(context.Background(), p.opts.KillGrace)
			defer cancel()
			m.w.Stop(stopCtx)
		}()
	}
	wg.Wait()
	p.wg.Wait()
}

// Shutdown is Drain for gw's own exit.
func (p *Pool) Shutdown(ctx context.Context) { p.Drain(ctx, ReasonShutdown) }

// PIDs lists the live workers' process ids (for tests and stats).
func (p *Pool) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for m := range p.members {
		if !m.gone.Load() {
			pids = append(pids, m.w.PID())
		}
	}
	return pids
}

// Exits counts the runners that left, by reason.
func (p *Pool) Exits() map[Reason]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Reason]int, len(p.exits))
	for k, v := range p.exits {
		out[k] = v
	}
	return out
}
