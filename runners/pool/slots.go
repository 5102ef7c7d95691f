package pool

import (
	"context"
	"sync"
)

// slotQueue hands free slots to requests, FIFO among waiters, and bounds how
// many may wait. Slots of gone workers are dropped as they surface.
type slotQueue struct {
	mu      sync.Mutex
	free    []slotRef
	waiters []chan slotRef
	max     int // waiters allowed; 0 = unbounded
}

// tryAcquire takes a free slot without waiting.
func (q *slotQueue) tryAcquire() (slotRef, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.popLocked()
}

func (q *slotQueue) popLocked() (slotRef, bool) {
	for len(q.free) > 0 {
		s := q.free[len(q.free)-1]
		q.free = q.free[:len(q.free)-1]
		if !s.m.gone.Load() {
			return s, true
		}
	}
	return slotRef{}, false
}

// acquire waits for a free slot until ctx ends.
func (q *slotQueue) acquire(ctx context.Context) (slotRef, error) {
	q.mu.Lock()
	if s, ok := q.popLocked(); ok {
		q.mu.Unlock()
		return s, nil
	}
	if q.max > 0 && len(q.waiters) >= q.max {
		q.mu.Unlock()
		return slotRef{}, ErrQueueFull
	}
	ch := make(chan slotRef, 1)
	q.waiters = append(q.waiters, ch)
	q.mu.Unlock()
	select {
	case s := <-ch:
		return s, nil
	case <-ctx.Done():
		q.mu.Lock()
		for i, w := range q.waiters {
			if w == ch {
				q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
				q.mu.Unlock()
				return slotRef{}, ctx.Err()
			}
		}
		q.mu.Unlock()
		// A slot was handed to us as we gave up: pass it on.
		q.release(<-ch)
		return slotRef{}, ctx.Err()
	}
}

func (q *slotQueue) release(s slotRef) {
	if s.m.gone.Load() {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) > 0 {
		ch := q.waiters[0]
		q.waiters = q.waiters[1:]
		ch <- s
		return
	}
	q.free = append(q.free, s)
}
