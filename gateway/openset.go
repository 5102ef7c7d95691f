package gateway

import (
	"context"
	"sync"
)

// ender is a long-lived connection a drain must end: a WebSocket session
// (1001 to the client) or a hijacked connection (cut).
type ender interface{ end() }

// openSet is a generation's open long-lived connections. A drain may wait
// for them to go (wait, bounded by its ctx), then ends the rest and lets
// no new one in (closeAll). One set per kind: WebSockets end at once, raw
// connections get the shutdown timeout first.
type openSet struct {
	mu      sync.Mutex
	m       map[ender]struct{}
	closing bool
	empty   chan struct{} // closed when m empties while wait waits; nil otherwise
}

// add registers c; false once closeAll has run (c is not let in).
func (s *openSet) add(c ender) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.m == nil {
		s.m = map[ender]struct{}{}
	}
	s.m[c] = struct{}{}
	return true
}

func (s *openSet) remove(c ender) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, c)
	if len(s.m) == 0 && s.empty != nil {
		close(s.empty)
		s.empty = nil
	}
}

// wait returns once nothing is open, or ctx ends.
func (s *openSet) wait(ctx context.Context) {
	if s == nil {
		return
	}
	s.mu.Lock()
	if len(s.m) == 0 {
		s.mu.Unlock()
		return
	}
	if s.empty == nil {
		s.empty = make(chan struct{})
	}
	empty := s.empty
	s.mu.Unlock()
	select {
	case <-empty:
	case <-ctx.Done():
	}
}

// closeAll ends everything open, once, and refuses new ones.
func (s *openSet) closeAll() {
	if s == nil {
		return // a table built by hand (tests) has none
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	s.closing = true
	for c := range s.m {
		c.end()
	}
}
