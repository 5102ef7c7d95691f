package pool

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// slotQueue hands free slots to requests, FIFO among waiters, and bounds how
// many may wait. Slots of gone workers are dropped as they surface.
//
// A free slot is taken from the runner with the fewest busy slots, the one
// used last among equals. Fewest busy spreads requests over runners with
// many slots (an ASGI runner has 64; with one stack of free slots every
// request went to one runner, one core, until it had 64 in flight). Last
// used among equals keeps single-slot runners' load on as few of them as
// it needs, so the rest go idle and worker_idle can retire them.
//
// A request that may leave a long-lived connection on its runner (an
// upgrade: ServeConn) is placed by the runner's open connections first
// (member.conns), then fewest busy, then least recently used: such a
// connection frees its slot once accepted, so by busy slots alone the
// runner that holds every session looks as idle as the others and got
// them all (issue 16: 32 faye connections on one of 2 runners).
type slotQueue struct {
	mu      sync.Mutex
	ms      []*member // runners with a free slot; few, so a scan is cheap
	seq     uint64    // stamps member.lastUsed
	waiters []chan slotRef
	max     int   // waiters allowed; 0 = unbounded
	err     error // when set, requests that find no free slot fail with it
	// kick tells the pool's owner to look again (cap 1: a send never
	// blocks, and kicks that pile up are one).
	kick chan struct{}
	// deaf says the owner has nothing to do about queued requests (the
	// pool is at its ceiling, waits for no place and is not draining), so
	// a request that queues does not kick it. A fixed pool under load
	// queues most requests; a wake-up of the owner each cost gw 5-10 us of
	// CPU per request (hop.py, python hello: 41 -> 46-51 us).
	deaf atomic.Bool
}

// signal kicks the owner without waiting.
func (q *slotQueue) signal() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// waiter is what a queued request receives: a slot, or why there is none.
type waiter = chan slotRef

// setErr makes requests that find no free slot fail at once with err (the
// app failed, or the pool is stopping) and wakes the ones waiting; nil
// lets them queue again.
func (q *slotQueue) setErr(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.err = err
	if err == nil {
		return
	}
	for _, ch := range q.waiters {
		close(ch)
	}
	q.waiters = nil
}

// waiting counts queued requests.
func (q *slotQueue) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiters)
}

// tryAcquire takes a free slot without waiting; conn: for a request that
// may leave a connection open (placed by open connections).
func (q *slotQueue) tryAcquire(conn bool) (slotRef, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.popLocked(conn)
}

// popLocked takes a free slot of a live member and counts it busy, both
// under q.mu: markGone takes the same lock, so a retiring member is never
// handed out after it was seen idle. conn places by open connections
// first; the ordinary choice pays only that flag's test.
func (q *slotQueue) popLocked(conn bool) (slotRef, bool) {
	if conn {
		return q.popConnLocked()
	}
	var best *member
	var bestAt int
	var bestBusy int32
	for i := 0; i < len(q.ms); {
		m := q.ms[i]
		if m.gone.Load() {
			q.dropLocked(i)
			continue // i now holds the one that was last
		}
		if b := m.busy.Load(); best == nil || b < bestBusy || (b == bestBusy && m.lastUsed > best.lastUsed) {
			best, bestAt, bestBusy = m, i, b
		}
		i++
	}
	return q.takeLocked(best, bestAt)
}

// popConnLocked is popLocked for an upgrade: the fewest open connections,
// then the fewest busy, then the least recently used, so upgrades arriving
// together go round the runners.
func (q *slotQueue) popConnLocked() (slotRef, bool) {
	var best *member
	var bestAt int
	var bestConns, bestBusy int32
	for i := 0; i < len(q.ms); {
		m := q.ms[i]
		if m.gone.Load() {
			q.dropLocked(i)
			continue
		}
		c, b := m.conns.Load(), m.busy.Load()
		if best == nil || c < bestConns || (c == bestConns && (b < bestBusy || (b == bestBusy && m.lastUsed < best.lastUsed))) {
			best, bestAt, bestConns, bestBusy = m, i, c, b
		}
		i++
	}
	return q.takeLocked(best, bestAt)
}

// dropLocked unlists q.ms[i], a gone member, with its free slots.
func (q *slotQueue) dropLocked(i int) {
	q.ms[i].free = q.ms[i].free[:0]
	q.unlist(i)
}

// takeLocked hands out one free slot of best (q.ms[at]), nil: none.
func (q *slotQueue) takeLocked(best *member, at int) (slotRef, bool) {
	if best == nil {
		return slotRef{}, false
	}
	n := len(best.free) - 1
	s := slotRef{best, best.free[n]}
	best.free = best.free[:n]
	if n == 0 {
		q.unlist(at)
	}
	q.seq++
	best.lastUsed = q.seq
	best.busy.Add(1)
	return s, true
}

// unlist drops q.ms[i], moving the last one into its place.
func (q *slotQueue) unlist(i int) {
	last := len(q.ms) - 1
	q.ms[i] = q.ms[last]
	q.ms[last] = nil
	q.ms = q.ms[:last]
}

// unbusy ends one busy count of a slot never used, kicking the owner if
// m is retiring and now idle.
func (q *slotQueue) unbusy(m *member) {
	if m.busy.Add(-1) == 0 && m.gone.Load() {
		q.signal()
	}
}

// retireIdle stops handing out m's slots if none is busy, and says whether
// it did: under q.mu, so no request takes a slot of m meanwhile.
func (q *slotQueue) retireIdle(m *member) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if m.busy.Load() != 0 || m.gone.Load() {
		return false
	}
	m.gone.Store(true)
	return true
}

// quiet says whether no request is queued or running on any of ms.
func (q *slotQueue) quiet(ms map[*member]struct{}) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) > 0 {
		return false
	}
	for m := range ms {
		if m.busy.Load() > 0 {
			return false
		}
	}
	return true
}

// markGone stops handing out m's slots.
func (q *slotQueue) markGone(m *member) {
	q.mu.Lock()
	m.gone.Store(true)
	q.mu.Unlock()
}

// timers are reused across queued requests: a queue wait is common under
// load, and a context with a deadline per wait costs a timer and a
// registration with the request's context.
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// acquire waits for a free slot (placed as tryAcquire) until ctx ends or, if wait > 0, for at
// most wait (then ErrQueueTimeout).
func (q *slotQueue) acquire(ctx context.Context, wait time.Duration, conn bool) (slotRef, error) {
	q.mu.Lock()
	if s, ok := q.popLocked(conn); ok {
		q.mu.Unlock()
		return s, nil
	}
	if err := q.err; err != nil {
		q.mu.Unlock()
		return slotRef{}, err
	}
	if q.max > 0 && len(q.waiters) >= q.max {
		q.mu.Unlock()
		return slotRef{}, ErrQueueFull
	}
	ch := make(waiter, 1)
	q.waiters = append(q.waiters, ch)
	q.mu.Unlock()
	if !q.deaf.Load() {
		q.signal() // a request waits: the owner may add a runner
	}
	var expired <-chan time.Time
	if wait > 0 {
		t := timers.Get().(*time.Timer)
		t.Reset(wait)
		// Since Go 1.23 Stop leaves no stale tick behind, so the timer
		// is safe to reuse.
		defer func() { t.Stop(); timers.Put(t) }()
		expired = t.C
	}
	var cause error
	select {
	case s, ok := <-ch:
		if !ok {
			q.mu.Lock()
			err := q.err
			q.mu.Unlock()
			if err == nil {
				err = ErrStopped
			}
			return slotRef{}, err
		}
		return s, nil
	case <-ctx.Done():
		cause = ctx.Err()
	case <-expired:
		cause = ErrQueueTimeout
	}
	q.mu.Lock()
	for i, w := range q.waiters {
		if w == ch {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			q.mu.Unlock()
			if !q.deaf.Load() {
				q.signal() // demand changed: a drain may be done, a grant unneeded
			}
			return slotRef{}, cause
		}
	}
	q.mu.Unlock()
	// A slot was handed to us as we gave up: pass it on.
	if s, ok := <-ch; ok {
		q.unbusy(s.m)
		q.release(s)
	}
	return slotRef{}, cause
}

// release returns an idle slot: to the first waiter (counted busy again)
// or to the free list.
func (q *slotQueue) release(s slotRef) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s.m.gone.Load() {
		return
	}
	if len(q.waiters) > 0 {
		ch := q.waiters[0]
		q.waiters = q.waiters[1:]
		s.m.busy.Add(1)
		ch <- s
		return
	}
	s.m.free = append(s.m.free, s.i)
	if len(s.m.free) == 1 {
		q.ms = append(q.ms, s.m) // it had none: not listed until now
	}
}
