package fastcgi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Server serves Handler to FastCGI web servers (nginx fastcgi_pass) in the
// RESPONDER role. Its shape is http.Server's: Serve a listener, Shutdown
// gracefully.
type Server struct {
	// Handler answers every request; nil means http.NotFoundHandler.
	Handler http.Handler
	// Log receives protocol errors; nil means slog.Default().
	Log *slog.Logger
	// MaxParams caps the PARAMS stream of one request in bytes; 0 means
	// 64 KiB. nginx puts all params in one record, so it never sends more
	// than 65535 (protocols.md §2.4).
	MaxParams int
	// IdleTimeout bounds every wait for a record while no handler runs:
	// for the next BEGIN_REQUEST on a kept-alive connection, and for the
	// PARAMS and first STDIN record of a request. 0 means 75 s. The body
	// and the handler have no deadline of their own; nginx's
	// fastcgi_*_timeout govern them.
	IdleTimeout time.Duration
	// MaxConns is what GET_VALUES reports as FCGI_MAX_CONNS and
	// FCGI_MAX_REQS (one request per connection); 0 means 1024. Nothing
	// enforces it here: the pool behind Handler queues requests.
	MaxConns int

	mu       sync.Mutex
	shutting bool
	lns      map[net.Listener]struct{}
	conns    map[*conn]struct{}
	wg       sync.WaitGroup // one per connection goroutine
}

// A connection is idle between requests, active from BEGIN_REQUEST to
// END_REQUEST. Shutdown closes idle connections at once and lets active
// ones finish their request, after which they close.
const (
	stateIdle int32 = iota
	stateActive
	stateClosed
)

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Server) handler() http.Handler {
	if s.Handler != nil {
		return s.Handler
	}
	return http.NotFoundHandler()
}

func (s *Server) maxParams() int {
	if s.MaxParams > 0 {
		return s.MaxParams
	}
	return 64 << 10
}

func (s *Server) maxConns() int {
	if s.MaxConns > 0 {
		return s.MaxConns
	}
	return 1024
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return 75 * time.Second
}

// Serve accepts connections on ln and serves each in its own goroutine. It
// returns http.ErrServerClosed after Shutdown or Close, else the accept
// error. ln is closed on return.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	if s.lns == nil {
		s.lns, s.conns = map[net.Listener]struct{}{}, map[*conn]struct{}{}
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.closing() {
				return http.ErrServerClosed
			}
			if delay = backoff(err, delay); delay > 0 {
				s.log().Warn("fastcgi: accept failed; retrying", "err", err, "in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("fastcgi: accept: %w", err)
		}
		delay = 0
		c := &conn{rwc: rwc}
		s.mu.Lock()
		if s.shutting {
			s.mu.Unlock()
			rwc.Close()
			return http.ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1) // under mu: never after Shutdown began waiting
		s.mu.Unlock()
		go s.serveConn(c) // stops when its connection closes; s.wg waits for it
	}
}

// backoff is http.Server's answer to running out of file descriptors:
// wait 5 ms, doubling to 1 s, instead of spinning or giving up.
func backoff(err error, prev time.Duration) time.Duration {
	var ne net.Error
	if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) && !(errors.As(err, &ne) && ne.Timeout()) {
		return 0
	}
	return min(max(2*prev, 5*time.Millisecond), time.Second)
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutting
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, closes idle connections, and waits for
// requests in flight to finish. When ctx ends first it closes every
// connection and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginShutdown()
	done := make(chan struct{})
	go func() { // ends when the last connection goroutine does
		s.wg.Wait()
		close(done)
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeConns(false)
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			s.closeConns(true)
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection now, like
// http.Server.Close.
func (s *Server) Close() error {
	s.beginShutdown()
	s.closeConns(true)
	return nil
}

func (s *Server) beginShutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutting = true
	for ln := range s.lns {
		ln.Close()
	}
}

// closeConns closes idle connections, or all of them when force is set.
func (s *Server) closeConns(force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) || force {
			c.rwc.Close()
		}
	}
}
