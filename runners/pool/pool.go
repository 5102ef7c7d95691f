// Package pool supervises one app's runner processes: it starts them, hands
// each request to a free slot (waiting in a bounded queue when none is
// free), enforces the request deadline, recycles runners (max requests, max
// RSS) with their replacement ready first, replaces runners that die, and
// grows and shrinks the set between a floor and a ceiling with demand.
//
// One goroutine per pool, the owner (owner.go), holds the set of runners
// and every decision about it; requests reach it only through events.
package pool

import (
	"context"
	"errors"
	"fmt"
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

// Reason says why a runner left the pool (or, for ReasonFailedBoot, never
// joined it).
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
	ReasonScaleDown   Reason = "scale_down"  // idle above the floor, or reclaimed by the budget
	ReasonFailedBoot  Reason = "failed_boot" // a launch that failed: no process joined
	ReasonRestart     Reason = "restart"     // gw ctl restart
	// A limit of the app's limits: ended the runner; respawned as after a
	// crash. The Worker says which (LimitHitter).
	ReasonMemory    Reason = "memory"     // address space (RLIMIT_AS)
	ReasonCPUTime   Reason = "cpu_time"   // RLIMIT_CPU
	ReasonMemoryMax Reason = "memory_max" // the app cgroup's OOM killer
)

// LimitHitter is a Worker that can tell, once exited, which of its app's
// resource limits ended it: a Reason above, or "" for none.
type LimitHitter interface {
	LimitHit() string
}

// CPUReporter is a Worker that can tell, once exited, the CPU time it
// used (rusage at wait), so the app's CPU total keeps it.
type CPUReporter interface {
	CPUSeconds() float64
}

// limitReason is the exit reason of a runner that died on its own: the
// limit it hit, or a crash.
func limitReason(w Worker) Reason {
	if l, ok := w.(LimitHitter); ok {
		switch r := Reason(l.LimitHit()); r {
		case ReasonMemory, ReasonCPUTime, ReasonMemoryMax:
			return r
		}
	}
	return ReasonCrash
}

// crashLike are the exits refilled with the crash backoff.
func crashLike(r Reason) bool {
	switch r {
	case ReasonCrash, ReasonHealth, ReasonMemory, ReasonCPUTime, ReasonMemoryMax:
		return true
	}
	return false
}

// Reasons lists every Reason, for metrics that show each one.
var Reasons = []Reason{ReasonCrash, ReasonDeadline, ReasonMaxRequests, ReasonMaxRSS, ReasonHealth,
	ReasonReload, ReasonShutdown, ReasonScaleDown, ReasonFailedBoot, ReasonRestart,
	ReasonMemory, ReasonCPUTime, ReasonMemoryMax}

// OnDemand as Options.MinWorkers keeps no runner while the app is idle:
// the first request starts one (php-fpm's ondemand).
const OnDemand = -1

// Options configure a Pool.
type Options struct {
	// CPU is the app's CPU total, shared by the pools of its successive
	// generations so that it survives reloads; nil: the pool's own.
	CPU     *CPUTotal
	Name    string
	Workers int // the ceiling: at most this many runners
	// MinWorkers is the floor: runners kept however idle. 0 means equal to
	// Workers (a fixed pool, so the zero value keeps its old meaning);
	// OnDemand means none.
	MinWorkers int
	// WorkerIdle is how long a runner above the floor may stay idle before
	// it is retired (default 30s).
	WorkerIdle  time.Duration
	Share       Share         // the app's part of a shared runner budget; nil = unlimited
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
	share    Share
	launcher Launcher
	log      *slog.Logger
	slots    slotQueue

	ctx    context.Context // ends when the pool drains: cancels launches
	cancel context.CancelFunc
	wg     sync.WaitGroup // the owner, launches, exit watchers, stops

	// Events for the owner (owner.go). slots.kick, which never blocks its
	// sender, says "look again"; the others carry one event each.
	exited   chan *member
	launched chan launched
	cmds     chan func()
	stopNow  chan struct{} // closed by Drain once requests are done or its ctx ended
	quiet    chan struct{} // closed by the owner once a drain has nothing left to serve
	done     chan struct{} // closed when the owner returns
	running  atomic.Bool   // the owner was started
	drainOne sync.Once
	stopOne  sync.Once

	// wantIdle asks Serve for a kick whenever a runner goes idle (a
	// drain or a reclaim is waiting for one).
	wantIdle atomic.Bool
	failed   atomic.Bool
	inflight atomic.Int64

	// What Stats and PIDs read; only the owner writes, under mu.
	mu       sync.Mutex
	members  map[*member]struct{} // every process not yet exited
	exits    map[Reason]int
	lastExit Reason
	floor    int // MinWorkers, as resolved (Scale moves it)
	ceiling  int // Workers (Scale may raise it)
	target   int // places held: the runners the pool means to have
	starting int // launches under way
	respawns int64
	ups      int64
	downs    int64

	own ownerState // the owner goroutine's alone

	queueWait Histogram
	latency   Histogram
	spawn     Histogram
}

type member struct {
	id       int
	number   int // uWSGI's worker id (number.go)
	w        Worker
	started  time.Time
	limit    int64 // requests before recycling (jittered), 0 = none
	requests atomic.Int64
	busy     atomic.Int32
	conns    atomic.Int32 // long-lived connections open on it (Conn)
	stuck    atomic.Int32 // slots abandoned at a deadline
	idle     atomic.Int64 // when busy last fell to 0 (unix ns)
	gone     atomic.Bool  // takes no new requests (dead or retiring)
	// want is a retirement Serve or the RSS check asks of the owner.
	want  atomic.Pointer[Reason]
	slots []slotState

	// The slot queue's, under its mu: this runner's free slots (it is in
	// the queue's list exactly while it has one) and when a slot of it
	// was last handed out.
	free     []int
	lastUsed uint64

	// The owner's alone.
	reason    Reason // why it leaves; "" = it crashed
	replacing bool   // its replacement is starting
	stopping  bool   // Stop was called
	exited    bool
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
	if opts.CPU == nil {
		opts.CPU = &CPUTotal{}
	}
	floor := opts.MinWorkers
	switch {
	case floor == 0:
		floor = opts.Workers
	case floor < 0:
		floor = 0
	}
	floor = min(floor, opts.Workers)
	if opts.WorkerIdle <= 0 {
		opts.WorkerIdle = 30 * time.Second
	}
	if opts.KillGrace <= 0 {
		opts.KillGrace = 5 * time.Second
	}
	if opts.FailAfter <= 0 {
		opts.FailAfter = 3
	}
	if opts.RSS == nil {
		opts.RSS = procRSS
	}
	share := opts.Share
	if share == nil {
		share = unlimited{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{opts: opts, share: share, launcher: l, log: log.With("app", opts.Name), ctx: ctx, cancel: cancel,
		slots:  slotQueue{max: opts.QueueSize, kick: make(chan struct{}, 1)},
		exited: make(chan *member), launched: make(chan launched), cmds: make(chan func()),
		stopNow: make(chan struct{}), quiet: make(chan struct{}), done: make(chan struct{}),
		members: map[*member]struct{}{}, exits: map[Reason]int{}, floor: floor, ceiling: opts.Workers,
		own: ownerState{numbers: numbers{}}}
}

// Start launches the floor's runners concurrently, returns once all are
// ready, and starts the owner. If any fails, the others are stopped and
// the first error is returned.
func (p *Pool) Start(ctx context.Context) error {
	n := p.floor
	for i := range n {
		if !p.share.Acquire() {
			for range i {
				p.share.Release()
			}
			return fmt.Errorf("start %s: its %d runners do not fit in max_runners", p.opts.Name, n)
		}
	}
	type result struct {
		id  int
		w   Worker
		err error
	}
	results := make(chan result, n)
	for range n {
		id := p.own.newID()
		number := p.own.numbers.take() // id+1: the first launches' ids are 0..n-1
		// Each launch reports exactly once on results.
		go func() {
			w, err := p.launch(withNumber(ctx, number), id)
			results <- result{id, w, err}
		}()
	}
	var first error
	ok := make([]Worker, n) // by id: ids are launch order, not ready order
	for range n {
		r := <-results
		switch {
		case r.err != nil:
			p.countExit(ReasonFailedBoot)
			if first == nil {
				first = r.err
			}
		default:
			ok[r.id] = r.w
		}
	}
	if first != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), p.opts.KillGrace)
		defer cancel()
		for _, w := range ok {
			if w != nil {
				w.Stop(stopCtx)
			}
		}
		for range n {
			p.share.Release()
		}
		p.cancel()
		return first
	}
	p.mu.Lock()
	p.target = n
	p.mu.Unlock()
	for id, w := range ok {
		p.add(id, id+1, w)
	}
	if n == 0 {
		p.log.Info("runners start on demand", "max", p.ceiling)
	}
	p.running.Store(true)
	p.wg.Add(1)
	// The owner returns once Drain has stopped every runner.
	go p.run()
	return nil
}

// launch starts one runner and times it.
func (p *Pool) launch(ctx context.Context, id int) (Worker, error) {
	start := time.Now()
	w, err := p.launcher.Launch(ctx, id)
	if err == nil {
		p.spawn.Observe(time.Since(start))
	}
	return w, err
}

// add puts a ready worker in service and watches for its exit.
func (p *Pool) add(id, number int, w Worker) *member {
	now := time.Now()
	m := &member{id: id, number: number, w: w, started: now, slots: make([]slotState, w.Slots())}
	m.idle.Store(now.UnixNano())
	if n := p.opts.MaxRequests; n > 0 {
		// Up to 10% early, so runners started together do not all
		// recycle together (uWSGI's max-requests-delta).
		m.limit = int64(n - rand.IntN(n/10+1))
	}
	p.mu.Lock()
	p.members[m] = struct{}{}
	p.mu.Unlock()
	p.own.slotsPer = w.Slots()
	if p.failed.CompareAndSwap(true, false) {
		p.slots.setErr(nil)
		p.log.Warn("app recovered: a runner started again")
	}
	for i := range w.Slots() {
		p.slots.release(slotRef{m, i})
	}
	p.wg.Add(1)
	// Ends when the worker exits: the owner receives until none is left.
	go func() {
		defer p.wg.Done()
		<-m.w.Done()
		p.exited <- m
	}()
	return m
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
	return p.ServeConn(w, r, nil)
}

// ServeConn is Serve for a request that may leave a long-lived connection
// open on its runner after its slot is free (an upgrade: a WebSocket
// session, a hijacked connection). Its slot is taken from the runner with
// the fewest such connections open, then the fewest busy slots, and c
// counts against that runner from then until c.Close: the caller closes
// c when the connection ends, or as soon as it knows none stayed open.
// A nil c is Serve.
func (p *Pool) ServeConn(w http.ResponseWriter, r *http.Request, c *Conn) error {
	err := p.serveOnce(w, r, c)
	if errors.Is(err, ErrNotDelivered) {
		// The runner died before it could take the request: nothing
		// reached the app (nor came back), so another runner may serve it.
		err = p.serveOnce(w, r, c)
	}
	return err
}

// Conn is a connection an upgrade request (ServeConn) may leave open on
// its runner. The pool knows no protocol: the caller says when it ends.
type Conn struct{ m *member }

// Close ends c's count on its runner. It may be called again, and on a
// Conn that no runner took; one goroutine at a time.
func (c *Conn) Close() {
	if c.m != nil {
		c.m.conns.Add(-1)
		c.m = nil
	}
}

func (p *Pool) serveOnce(w http.ResponseWriter, r *http.Request, c *Conn) error {
	if p.ctx.Err() != nil {
		return ErrStopped
	}
	queued := time.Now()
	s, err := p.acquire(r.Context(), c != nil)
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
	if c != nil {
		// Counted from the handshake on, so upgrades arriving together
		// spread (busy, taken under the queue's lock, covers the instant
		// before this).
		c.Close() // a retry's first runner
		c.m = m
		m.conns.Add(1)
	}
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
	end := time.Now()
	p.latency.Observe(end.Sub(start))
	if timing != nil {
		timing.QueueWait, timing.AppTime, timing.PID = start.Sub(queued), end.Sub(start), m.w.PID()
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
		p.log.Error("request deadline exceeded: answering 504 and replacing the runner", "worker", m.id,
			"pid", m.w.PID(), "timeout", p.opts.Timeout, "method", r.Method, "path", r.URL.Path)
		p.retire(m, ReasonDeadline, true)
		p.idled(m, end)
		return ErrTimeout
	}
	if errors.Is(err, ErrWorkerGone) {
		// Dead or desynced: kill it, and the owner replaces it.
		p.slots.markGone(m)
		m.w.Kill()
		p.idled(m, end)
		return err
	}
	if hard := int64(p.opts.HardMaxRequests); hard > 0 && n >= hard {
		p.retire(m, ReasonMaxRequests, true)
	} else if m.limit > 0 && n >= m.limit {
		// It keeps serving until its replacement is ready.
		p.retire(m, ReasonMaxRequests, false)
	}
	p.idled(m, end)
	p.slots.release(s)
	return err
}

// idled ends one busy count of m. When m goes idle and someone waits for
// that (a runner retiring, a drain, a reclaim), the owner is told.
func (p *Pool) idled(m *member, now time.Time) {
	if m.busy.Add(-1) != 0 {
		return
	}
	m.idle.Store(now.UnixNano())
	if m.gone.Load() || p.wantIdle.Load() {
		p.slots.signal()
	}
}

// retire asks the owner to replace m: the replacement is started and
// ready first, so capacity never dips; then m takes no new requests,
// finishes the ones it has and is stopped. now means m takes no new
// requests from this moment (it is compromised or at its hard limit).
func (p *Pool) retire(m *member, reason Reason, now bool) {
	if now {
		p.slots.markGone(m)
	}
	if m.want.CompareAndSwap(nil, &reason) {
		p.log.Info("recycling runner", "worker", m.id, "pid", m.w.PID(), "reason", reason, "requests", m.requests.Load())
		p.slots.signal()
	}
}

func (p *Pool) acquire(ctx context.Context, conn bool) (slotRef, error) {
	if s, ok := p.slots.tryAcquire(conn); ok {
		return s, nil // the common case: no timer, no context
	}
	return p.slots.acquire(ctx, p.opts.QueueWait, conn)
}

// do runs f on the owner goroutine and waits for it; false if the owner
// has returned.
func (p *Pool) do(f func()) bool {
	if !p.running.Load() {
		return false
	}
	ran := make(chan struct{})
	select {
	case p.cmds <- func() { f(); close(ran) }:
		<-ran
		return true
	case <-p.done:
		return false
	}
}

// Drain stops the pool: no respawns; requests already queued or running
// finish (no new ones arrive once the route table no longer points here)
// until ctx ends; then every runner is stopped (SIGTERM, SIGKILL after the
// grace) with reason as its exit reason, and every budget place returned.
func (p *Pool) Drain(ctx context.Context, reason Reason) {
	p.cancel() // new requests get ErrStopped; launches under way end
	if !p.running.Load() {
		return
	}
	p.drainOne.Do(func() { p.do(func() { p.startDrain(reason) }) })
	select {
	case <-p.quiet:
	case <-ctx.Done():
	case <-p.done:
	}
	p.stopOne.Do(func() { close(p.stopNow) })
	<-p.done
	p.wg.Wait()
}

// Shutdown is Drain for gw's own exit.
func (p *Pool) Shutdown(ctx context.Context) { p.Drain(ctx, ReasonShutdown) }

// Scale sets the floor and the current target to n (a ceiling below n is
// raised to n). Growing needs places from the budget: if they cannot all
// be had now, nothing changes and the error says so.
func (p *Pool) Scale(n int) error {
	if n < 0 {
		return fmt.Errorf("scale %s to %d: want 0 or more runners", p.opts.Name, n)
	}
	var err error
	if !p.do(func() { err = p.scale(n) }) {
		return ErrStopped
	}
	return err
}

// Restart replaces every runner, one at a time, each replacement ready
// before its predecessor stops taking requests (exit reason restart).
func (p *Pool) Restart() error {
	if !p.do(p.restart) {
		return ErrStopped
	}
	return nil
}

// Floor returns the pool's floor and ceiling.
func (p *Pool) Floor() (minimum, maximum int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.floor, p.ceiling
}

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

// Exits counts the runners that left, by reason (and failed launches as
// failed_boot).
func (p *Pool) Exits() map[Reason]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Reason]int, len(p.exits))
	for k, v := range p.exits {
		out[k] = v
	}
	return out
}
