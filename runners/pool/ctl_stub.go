// TEMPORARY: replaced by the pool rewrite (h-pool); the lead deletes this file at merge.

package pool

import (
	"errors"
	"fmt"
	"sync"
)

// Restart replaces every current runner, each replacement ready before its
// predecessor stops taking requests. It returns once the replacements are
// under way (retire's own goroutines finish them).
func (p *Pool) Restart() {
	for _, m := range p.appendMembers(nil, false) {
		p.retire(m, ReasonReload, false)
	}
}

// Scale sets the number of runners to n: it starts the missing ones (and
// returns once they are ready) or stops the extra ones after their current
// requests. Crude: the configured Workers (Stats) stays what it was.
func (p *Pool) Scale(n int) error {
	if n < 1 {
		return fmt.Errorf("scale to %d: at least 1 runner (the stub has no on-demand start)", n)
	}
	if p.ctx.Err() != nil {
		return ErrStopped
	}
	var live []*member
	for _, m := range p.appendMembers(nil, false) {
		if !m.retiring.Load() {
			live = append(live, m)
		}
	}
	for _, m := range live[min(n, len(live)):] {
		if !m.retiring.CompareAndSwap(false, true) {
			continue
		}
		reason := ReasonShutdown
		m.reason.Store(&reason)
		p.slots.markGone(m)
		p.wg.Add(1)
		// Ends once m has exited.
		go func() { defer p.wg.Done(); p.stopWhenIdle(m) }()
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range n - len(live) {
		wg.Add(1)
		// Each launch ends with its runner ready or failed.
		go func() {
			defer wg.Done()
			id := p.newID()
			w, err := p.launch(p.ctx, id)
			if err == nil {
				p.add(id, w)
				return
			}
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
