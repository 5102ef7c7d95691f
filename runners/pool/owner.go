package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// ownerState is what only the owner goroutine touches.
type ownerState struct {
	nextID   int
	numbers  numbers // runner numbers held (number.go)
	slotsPer int     // slots of the newest runner: how many waiters a launch serves
	launches int     // launches under way
	fills    int     // of those, the ones that fill a place (not replacements)
	growing  int     // places taken to grow whose runner has not started yet
	growWhy  string
	// pending are places whose runner crashed or failed to start, each
	// waiting out its own backoff: a place's failures are its own, as
	// when one goroutine per place retried.
	pending []retry
	retry   *time.Timer
	// failedInARow counts failed launches since a runner last started,
	// across places: the app fails only when every place keeps failing.
	failedInARow int
	wanting      bool // the Share owes us places (Acquire said no)
	reclaims     int  // reclaims not yet served
	restartQ     []*member
	restarting   bool // a restart's replacement is starting
	draining     bool
	drained      bool // quiet is closed
	reason       Reason
	stopping     bool
}

func (o *ownerState) newID() int {
	id := o.nextID
	o.nextID++
	return id
}

// retry is a place to fill again after a crash or a failed launch.
type retry struct {
	at     time.Time // not before
	n      int       // crashes and failed launches in a row, for the backoff
	failed int       // of those, failed launches, for FailAfter
}

// launched is a launch's outcome, sent to the owner.
type launched struct {
	id       int
	number   int // number.go
	w        Worker
	err      error
	replaces *member // nil: it fills a place
	restart  bool
	retry    retry // the place's history before this launch
}

// run is the owner: gunicorn's arbiter loop. It waits for one event,
// handles it, then reconciles what the pool has with what it wants.
func (p *Pool) run() {
	defer p.wg.Done()
	defer close(p.done)
	house := time.NewTicker(p.housePeriod())
	defer house.Stop()
	var watch <-chan time.Time
	if d := p.watchPeriod(); d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		watch = t.C
	}
	p.own.retry = time.NewTimer(time.Hour)
	p.own.retry.Stop()
	defer p.own.retry.Stop()
	stopNow := p.stopNow
	for {
		select {
		case <-p.slots.kick:
		case m := <-p.exited:
			p.onExit(m)
		case r := <-p.launched:
			p.onLaunched(r)
		case f := <-p.cmds:
			f()
		case <-stopNow:
			stopNow = nil
			p.stopAll()
		case <-p.share.Grants():
			p.onGrant()
		case <-p.share.Reclaims():
			p.own.reclaims++
		case <-p.own.retry.C:
		case <-house.C:
			p.housekeep()
		case <-watch:
			p.scan()
		}
		if p.own.stopping {
			if len(p.members) == 0 && p.own.launches == 0 {
				return
			}
			continue
		}
		p.reconcile()
	}
}

// reconcile moves the pool toward what it wants: retiring runners
// replaced or stopped, enough places for the waiting requests, a runner
// in every place, reclaimed places given back.
func (p *Pool) reconcile() {
	p.retirements()
	if p.own.draining {
		p.slots.deaf.Store(false)
		p.checkQuiet()
		return
	}
	p.grow()
	p.fill()
	p.reclaim()
	p.wantIdle.Store(p.own.reclaims > 0)
	p.slots.deaf.Store(!p.own.wanting && p.target >= p.ceiling)
}

// retirements starts the replacements asked for and stops the runners
// that take no more requests once they are idle.
func (p *Pool) retirements() {
	o := &p.own
	for m := range p.members {
		if m.gone.Load() {
			if m.reason == "" {
				if w := m.want.Load(); w != nil {
					m.reason = *w
				}
			}
			if !m.stopping && m.busy.Load() == 0 {
				p.stop(m)
			}
			continue
		}
		if m.want.Load() != nil && !m.replacing && !o.draining {
			p.replace(m, false)
		}
	}
	for !o.restarting && !o.draining && len(o.restartQ) > 0 {
		m := o.restartQ[0]
		o.restartQ = o.restartQ[1:]
		r := ReasonRestart
		if m.exited || m.gone.Load() || !m.want.CompareAndSwap(nil, &r) {
			continue // gone, or being replaced already
		}
		p.replace(m, true)
	}
}

func (p *Pool) replace(m *member, restart bool) {
	m.replacing = true
	if restart {
		p.own.restarting = true
	}
	p.startLaunch(m, restart, retry{})
}

func (p *Pool) startLaunch(replaces *member, restart bool, history retry) {
	o := &p.own
	id := o.newID()
	var number int
	if replaces != nil {
		number = o.numbers.share(replaces.number)
	} else {
		number = o.numbers.take()
	}
	o.launches++
	if replaces == nil {
		o.fills++
	}
	p.mu.Lock()
	p.starting++
	p.mu.Unlock()
	p.wg.Add(1)
	// Reports on p.launched: the owner receives until no launch is under way.
	go func() {
		defer p.wg.Done()
		w, err := p.launch(withNumber(p.ctx, number), id)
		p.launched <- launched{id: id, number: number, w: w, err: err, replaces: replaces, restart: restart, retry: history}
	}()
}

func (p *Pool) onLaunched(r launched) {
	o := &p.own
	o.launches--
	p.mu.Lock()
	p.starting--
	p.mu.Unlock()
	var fill bool
	switch old := r.replaces; {
	case old == nil:
		fill = true
		o.fills--
	case old.exited: // onExit counted it a fill
		fill = true
		o.fills--
	default:
		old.replacing = false
		// Its predecessor stopped taking requests meanwhile (it broke, or
		// hit a deadline): the new runner fills a place, if one is free.
		fill = old.gone.Load()
	}
	if r.restart {
		o.restarting = false
	}
	if r.err != nil {
		o.numbers.release(r.number)
		p.launchFailed(r, fill)
		return
	}
	o.failedInARow = 0
	if o.draining || o.stopping {
		o.numbers.release(r.number)
		r.w.Kill()
		return
	}
	if fill && p.nonGone()+o.fills >= p.target {
		p.log.Info("runner not needed any more: stopping it", "worker", r.id, "pid", r.w.PID())
		o.numbers.release(r.number)
		r.w.Kill()
		return
	}
	m := p.add(r.id, r.number, r.w)
	switch {
	case !fill:
		old := r.replaces
		p.slots.markGone(old)
		old.reason = *old.want.Load()
		p.log.Info("runner replaced", "worker", old.id, "pid", old.w.PID(), "reason", old.reason,
			"by", m.id, "new_pid", m.w.PID())
	case o.growing > 0:
		o.growing--
		p.mu.Lock()
		p.ups++
		p.mu.Unlock()
		p.log.Info("scaling up", "worker", m.id, "pid", m.w.PID(), "reason", o.growWhy, "runners", p.nonGone())
	default:
		p.mu.Lock()
		p.respawns++
		p.mu.Unlock()
		p.log.Info("runner respawned", "worker", m.id, "pid", m.w.PID())
	}
}

// killedAtStart is a launch error that says the runner was killed while
// it started, from outside (proc.SpawnError): it backs off like any
// failure but is no evidence the app cannot start, so it never makes the
// app fail fast.
type killedAtStart interface{ KilledAtStart() bool }

// launchFailed counts a failed launch and backs off. The place stays
// held and is retried, unless other runners serve and nobody waits. After
// FailAfter failures with no runner alive, the app answers 503 at once
// instead of queueing requests nobody will serve.
func (p *Pool) launchFailed(r launched, fill bool) {
	o := &p.own
	p.countExit(ReasonFailedBoot)
	if o.draining || o.stopping {
		return
	}
	h := r.retry
	h.n++
	h.failed++
	h.at = time.Now().Add(p.opts.Backoff.Delay(h.n))
	if !fill {
		// Today's rule: the old runner goes anyway; its place is filled
		// with backoff like any other.
		old := r.replaces
		p.log.Error("replacement runner failed to start; respawning with backoff", "worker", r.id,
			"replacing", old.id, "err", r.err)
		p.slots.markGone(old)
		old.reason = *old.want.Load()
		o.pending = append(o.pending, h)
		return
	}
	p.log.Error("runner start failed", "worker", r.id, "attempt", h.failed, "err", r.err)
	live := p.nonGone()
	if live > 0 && p.target > p.floor && p.slots.waiting() == 0 {
		p.dropPlace()
		o.growing = max(o.growing-1, 0)
	} else {
		o.pending = append(o.pending, h)
	}
	// An app that cannot start fails every launch of every place at once,
	// so FailAfter per place in a row comes fast. Runners killed while
	// they start (by the OOM killer, by an operator) fail some launches,
	// but others start in between, which resets the count: the app must
	// not answer 503 to everyone while it can still start runners.
	var k killedAtStart
	if !errors.As(r.err, &k) || !k.KilledAtStart() {
		o.failedInARow++
	}
	inARow := o.failedInARow >= p.opts.FailAfter*max(p.target, 1)
	if inARow && h.failed >= p.opts.FailAfter && live == 0 && p.failed.CompareAndSwap(false, true) {
		p.log.Error("app failed: its runners keep crashing at start; answering 503 while retrying",
			"retry_every", p.opts.Backoff.MaxDelay(), "err", r.err)
		p.slots.setErr(ErrAppFailed)
	}
}

func (p *Pool) onExit(m *member) {
	o := &p.own
	m.exited = true
	m.gone.Store(true)
	o.numbers.release(m.number)
	reason := m.reason
	if reason == "" {
		reason = limitReason(m.w)
		if w := m.want.Load(); w != nil {
			reason = *w
		}
	}
	if c, ok := m.w.(CPUReporter); ok {
		p.opts.CPU.add(c.CPUSeconds())
	}
	p.mu.Lock()
	delete(p.members, m)
	p.exits[reason]++
	p.lastExit = reason
	p.mu.Unlock()
	if m.replacing {
		o.fills++ // its replacement now fills the place
	}
	life := time.Since(m.started).Round(time.Millisecond)
	level := slog.LevelInfo
	if crashLike(reason) || reason == ReasonDeadline {
		level = slog.LevelWarn
	}
	attrs := []any{"worker", m.id, "pid", m.w.PID(), "reason", reason, "exit", m.w.Exit(),
		"requests", m.requests.Load(), "uptime", life}
	if reason != ReasonCrash && crashLike(reason) && reason != ReasonHealth {
		attrs = append(attrs, "limit", "limits."+string(reason))
	}
	p.log.Log(context.Background(), level, "runner exited", attrs...)
	if !crashLike(reason) || o.draining {
		return
	}
	if life >= p.opts.Backoff.StableAfter() {
		return // a long-lived runner's exit is no crash loop: refill at once
	}
	o.pending = append(o.pending, retry{n: 1, at: time.Now().Add(p.opts.Backoff.Delay(1))})
}

// fill launches a runner for every place that has none: at once for a
// new place, after its backoff for one whose runner crashed young or
// failed to start.
func (p *Pool) fill() {
	o := &p.own
	need := max(p.target-p.nonGone()-o.fills, 0)
	if len(o.pending) > need {
		// Filled meanwhile (a runner that broke was replaced before its
		// exit came in) or given back: forget the oldest.
		o.pending = o.pending[len(o.pending)-need:]
	}
	for range need - len(o.pending) {
		p.startLaunch(nil, false, retry{})
	}
	now := time.Now()
	var next time.Time
	keep := o.pending[:0]
	for _, r := range o.pending {
		if r.at.After(now) {
			keep = append(keep, r)
			if next.IsZero() || r.at.Before(next) {
				next = r.at
			}
			continue
		}
		p.startLaunch(nil, false, r)
	}
	o.pending = keep
	if !next.IsZero() {
		o.retry.Reset(next.Sub(now))
	}
}

// grow takes places for requests that wait with no place to serve them,
// up to the ceiling.
func (p *Pool) grow() {
	o := &p.own
	per := max(o.slotsPer, 1)
	// Places without a runner yet will serve waiters when they start.
	uncovered := p.slots.waiting() - (p.target-p.nonGone())*per
	if uncovered <= 0 {
		if o.wanting {
			p.share.Unwant()
			o.wanting = false
		}
		return
	}
	if o.wanting {
		return // Grants will bring places
	}
	for range min((uncovered+per-1)/per, p.ceiling-p.target) {
		if !p.share.Acquire() {
			o.wanting = true
			return
		}
		p.addPlace("queued")
	}
}

// onGrant takes a place the Share handed over, or gives it back if the
// waiters are gone.
func (p *Pool) onGrant() {
	o := &p.own
	per := max(o.slotsPer, 1)
	if o.draining || o.stopping || p.target >= p.ceiling ||
		p.slots.waiting() <= (p.target-p.nonGone())*per {
		p.share.Release()
		return
	}
	p.addPlace("queued")
}

func (p *Pool) addPlace(why string) {
	p.mu.Lock()
	p.target++
	p.mu.Unlock()
	p.own.growing++
	p.own.growWhy = why
}

func (p *Pool) dropPlace() {
	p.mu.Lock()
	p.target--
	p.mu.Unlock()
	p.share.Release()
}

// reclaim gives back places the budget asked for, retiring idle runners
// above the floor. With none idle it retires the least busy one at once:
// it takes no new request, finishes what it runs, and its place goes back
// now. Waiting for one to go idle would wait forever for the app that
// most needs to give back: a flooded app's runners go from one request
// straight to the next queued one.
func (p *Pool) reclaim() {
	o := &p.own
	for o.reclaims > 0 {
		if p.target <= p.floor {
			o.reclaims = 0
			return
		}
		if m := p.idlest(); m != nil {
			if !p.scaleDown(m, "rebalance") {
				return // it took a request meanwhile: the next kick retries
			}
			o.reclaims--
			continue
		}
		m := p.leastBusy()
		if m == nil {
			return
		}
		p.slots.markGone(m)
		m.reason = ReasonScaleDown
		p.dropPlace()
		p.mu.Lock()
		p.downs++
		p.mu.Unlock()
		p.log.Info("scaling down", "worker", m.id, "pid", m.w.PID(), "reason", "rebalance",
			"busy_slots", m.busy.Load(), "runners", p.nonGone())
		o.reclaims--
	}
}

// leastBusy is the serving runner with the fewest busy slots that no
// retirement has claimed yet, or nil.
func (p *Pool) leastBusy() *member {
	var best *member
	for m := range p.members {
		if m.gone.Load() || m.replacing || m.want.Load() != nil {
			continue
		}
		if best == nil || m.busy.Load() < best.busy.Load() {
			best = m
		}
	}
	return best
}

// scaleDown retires m if it is still idle, giving its place back.
func (p *Pool) scaleDown(m *member, why string) bool {
	if !p.slots.retireIdle(m) {
		return false
	}
	m.reason = ReasonScaleDown
	p.dropPlace()
	p.mu.Lock()
	p.downs++
	p.mu.Unlock()
	p.log.Info("scaling down", "worker", m.id, "pid", m.w.PID(), "reason", why, "runners", p.nonGone())
	p.stop(m)
	return true
}

// idlest is the runner idle the longest that could be retired, or nil.
func (p *Pool) idlest() *member {
	var best *member
	for m := range p.members {
		if m.gone.Load() || m.replacing || m.want.Load() != nil || m.busy.Load() != 0 {
			continue
		}
		if best == nil || m.idle.Load() < best.idle.Load() {
			best = m
		}
	}
	return best
}

// housekeep checks RSS and retires runners idle too long above the floor.
func (p *Pool) housekeep() {
	if p.opts.MaxRSS > 0 {
		for m := range p.members {
			if m.gone.Load() || m.want.Load() != nil {
				continue
			}
			// gw reads /proc itself, so a runner wedged in a request is
			// measured too (and its request deadline ends it).
			rss, err := p.opts.RSS(m.w.PID())
			if err != nil || rss <= p.opts.MaxRSS {
				continue
			}
			p.log.Warn("runner over max_rss", "worker", m.id, "pid", m.w.PID(), "rss", rss, "max_rss", p.opts.MaxRSS)
			p.retire(m, ReasonMaxRSS, false)
		}
	}
	if p.own.draining {
		return
	}
	cutoff := time.Now().Add(-p.opts.WorkerIdle).UnixNano()
	for p.target > p.floor {
		m := p.idlest()
		if m == nil || m.idle.Load() > cutoff || !p.scaleDown(m, "idle") {
			return
		}
	}
}

// stop asks m to exit (SIGTERM, SIGKILL after the grace); its exit comes
// back on p.exited.
func (p *Pool) stop(m *member) {
	m.stopping = true
	p.wg.Add(1)
	// Returns once the process is gone.
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), p.opts.KillGrace)
		defer cancel()
		m.w.Stop(ctx)
	}()
}

// nonGone counts runners that take requests.
func (p *Pool) nonGone() int {
	n := 0
	for m := range p.members {
		if !m.gone.Load() {
			n++
		}
	}
	return n
}

func (p *Pool) countExit(r Reason) {
	p.mu.Lock()
	p.exits[r]++
	p.mu.Unlock()
}

// startDrain begins a drain: no more launches or replacements; queued and
// running requests finish.
func (p *Pool) startDrain(reason Reason) {
	o := &p.own
	o.draining, o.reason = true, reason
	o.restartQ = nil
	p.wantIdle.Store(true)
	if o.wanting {
		p.share.Unwant()
		o.wanting = false
	}
}

// checkQuiet closes quiet once a drain has nothing left to serve.
func (p *Pool) checkQuiet() {
	o := &p.own
	if o.drained {
		return
	}
	if p.nonGone() == 0 && o.launches == 0 {
		p.slots.setErr(ErrStopped) // nobody will serve the ones waiting
	}
	if p.slots.quiet(p.members) {
		o.drained = true
		close(p.quiet)
	}
}

// stopAll ends a drain: every runner is stopped and every place given back.
func (p *Pool) stopAll() {
	o := &p.own
	o.stopping = true
	p.slots.setErr(ErrStopped)
	for m := range p.members {
		p.slots.markGone(m)
		if m.reason == "" {
			m.reason = o.reason
			if w := m.want.Load(); w != nil {
				m.reason = *w
			}
		}
		if !m.stopping {
			p.stop(m)
		}
	}
	for p.target > 0 {
		p.dropPlace()
	}
}

// scale sets the floor and the target to n.
func (p *Pool) scale(n int) error {
	o := &p.own
	if o.draining {
		return ErrStopped
	}
	need := n - p.target
	for got := range need {
		if !p.share.Acquire() {
			for range got {
				p.share.Release()
			}
			p.share.Unwant() // the refused Acquire left a want behind
			return fmt.Errorf("scale %s to %d: no free place under max_runners for %d more runners", p.opts.Name, n, need-got)
		}
	}
	p.mu.Lock()
	p.floor = n
	p.ceiling = max(p.ceiling, n)
	p.mu.Unlock()
	if need >= 0 {
		for range need {
			p.addPlace("scale")
		}
		return nil
	}
	for range -need {
		p.dropPlace()
	}
	o.growing = 0
	// Runners beyond the target retire: idle ones at once, then busy
	// ones, which finish their requests first.
	for excess := p.nonGone() + o.fills - p.target; excess > 0; excess-- {
		if m := p.idlest(); m != nil && p.slots.retireIdle(m) {
			p.retiredByScale(m)
			continue
		}
		m := p.anyLive()
		if m == nil {
			break // the rest are launches, stopped as they arrive
		}
		p.slots.markGone(m)
		p.retiredByScale(m)
	}
	return nil
}

func (p *Pool) retiredByScale(m *member) {
	m.reason = ReasonScaleDown
	p.mu.Lock()
	p.downs++
	p.mu.Unlock()
	p.log.Info("scaling down", "worker", m.id, "pid", m.w.PID(), "reason", "scale", "runners", p.nonGone())
}

func (p *Pool) anyLive() *member {
	for m := range p.members {
		if !m.gone.Load() && !m.replacing {
			return m
		}
	}
	for m := range p.members {
		if !m.gone.Load() {
			return m
		}
	}
	return nil
}

// restart queues every runner for replacement, oldest first.
func (p *Pool) restart() {
	o := &p.own
	if o.draining {
		return
	}
	o.restartQ = o.restartQ[:0]
	for m := range p.members {
		if !m.gone.Load() && !m.replacing {
			o.restartQ = append(o.restartQ, m)
		}
	}
	slices.SortFunc(o.restartQ, func(a, b *member) int { return a.id - b.id })
	p.log.Info("restarting runners", "runners", len(o.restartQ))
}
