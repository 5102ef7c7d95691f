// Package connserve is the connection bookkeeping the uwsgi and FastCGI
// servers share: accept with backoff, track each connection as idle or
// active, and shut down the way http.Server does (idle connections closed
// at once, active ones waited for until the context ends).
package connserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A connection is new until its first request starts, then active until
// it ends, idle between requests (h1 keep-alive, FastCGI keep-conn), until
// it closes.
const (
	stateNew int32 = iota
	stateIdle
	stateActive
	stateClosed
)

// defaultNewGrace is how long Shutdown leaves a new connection to start
// its request before closing it as idle: net/http's rule (server.go
// closeIdleConns, golang/go#22682). A connection accepted just before
// Shutdown has its request on the way, and a client on a fresh connection
// does not retry it as it does on a reused keep-alive one (net/http
// Transport shouldRetryRequest), so closing it at once fails that request:
// one in a few thousand under load during an upgrade (TestUpgradeUnderLoad).
const defaultNewGrace = 5 * time.Second

// State is one connection's new/idle/active state.
type State struct{ v atomic.Int32 }

// Activate marks a request started; false means Shutdown closed the
// connection first.
func (s *State) Activate() bool {
	return s.v.CompareAndSwap(stateIdle, stateActive) || s.v.CompareAndSwap(stateNew, stateActive)
}

// SetIdle marks the connection idle again between requests.
func (s *State) SetIdle() { s.v.Store(stateIdle) }

// Closed reports whether Shutdown closed the connection as idle.
func (s *State) Closed() bool { return s.v.Load() == stateClosed }

type entry struct {
	rwc net.Conn
	st  *State
}

// Server tracks listeners and connections. The zero value is ready.
type Server struct {
	mu       sync.Mutex
	shutting bool
	forced   bool // Close: connections accepted from now on are closed
	lns      map[net.Listener]struct{}
	conns    map[*entry]struct{}
	loops    sync.WaitGroup // one per Serve: Shutdown waits for them before wg
	wg       sync.WaitGroup // one per connection goroutine

	// NewGrace is how long Shutdown waits for a connection accepted but
	// not yet sending to start its request (0: 5 s, as net/http).
	NewGrace time.Duration
}

// Serve accepts connections on ln and runs serve for each in its own
// goroutine. It returns http.ErrServerClosed after Shutdown or Close, else
// the accept error (prefixed with name).
func (s *Server) Serve(ln net.Listener, name string, log *slog.Logger, serve func(rwc net.Conn, st *State)) error {
	defer ln.Close()
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	if s.lns == nil {
		s.lns, s.conns = map[net.Listener]struct{}{}, map[*entry]struct{}{}
	}
	s.lns[ln] = struct{}{}
	s.loops.Add(1) // under mu, before shutting: never after Shutdown's Wait
	s.mu.Unlock()
	defer s.loops.Done()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.Closing() {
				return http.ErrServerClosed
			}
			if delay = backoff(err, delay); delay > 0 {
				log.Warn(name+": accept failed; retrying", "err", err, "in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("%s: accept: %w", name, err)
		}
		delay = 0
		e := &entry{rwc: rwc, st: &State{}}
		s.mu.Lock()
		if s.forced {
			s.mu.Unlock()
			rwc.Close()
			return http.ErrServerClosed
		}
		// Accepted as Shutdown began: served like any new connection. Its
		// client sent its request already; on a listener shared with the
		// gw of an upgrade, closing it would fail a request the other gw
		// would have served. Shutdown waits for this loop before wg.
		s.conns[e] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		// Ends when its connection closes; s.wg waits for it.
		go func() {
			defer s.wg.Done()
			defer s.forget(e)
			serve(rwc, e.st)
		}()
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

// Closing reports whether Shutdown or Close began.
func (s *Server) Closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutting
}

func (s *Server) forget(e *entry) {
	s.mu.Lock()
	delete(s.conns, e)
	s.mu.Unlock()
}

// Shutdown stops accepting, closes idle connections, and waits for
// requests in flight to finish. When ctx ends first it closes every
// connection and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginShutdown(false)
	s.loops.Wait() // quick: their listeners are closed; no wg.Add after
	done := make(chan struct{})
	go func() { // ends when the last connection goroutine does
		s.wg.Wait()
		close(done)
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	grace := s.NewGrace
	if grace <= 0 {
		grace = defaultNewGrace
	}
	// Counted from here, not per connection: no clock read per accept.
	graceEnd := time.Now().Add(grace)
	for {
		s.closeConns(false, time.Now().After(graceEnd))
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			s.closeConns(true, true)
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection now, like
// http.Server.Close.
func (s *Server) Close() error {
	s.beginShutdown(true)
	s.closeConns(true, true)
	return nil
}

func (s *Server) beginShutdown(force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutting = true
	s.forced = s.forced || force
	for ln := range s.lns {
		ln.Close()
	}
}

// closeConns closes idle connections, new ones too when newToo is set, or
// all of them when force is set.
func (s *Server) closeConns(force, newToo bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := range s.conns {
		if e.st.v.CompareAndSwap(stateIdle, stateClosed) ||
			(newToo && e.st.v.CompareAndSwap(stateNew, stateClosed)) || force {
			e.rwc.Close()
		}
	}
}

// Logger is l, or slog.Default() when l is nil: the servers' Log default.
func Logger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.Default()
}

// Handler is h, or http.NotFoundHandler() when h is nil: the servers'
// Handler default, as http.Server's.
func Handler(h http.Handler) http.Handler {
	if h != nil {
		return h
	}
	return http.NotFoundHandler()
}

// WatchAfter is how long a request runs, its body read, before its
// connection is watched for the client (or nginx) leaving; every protocol
// server here uses it.
//
// net/http watches every request: a background goroutine reads from the
// connection as soon as the body is done, which costs a goroutine wake-up,
// a read that returns EAGAIN and a deadline to abort it, per request.
// Most requests are over long before a client could be told apart from
// one that left, and what gw needs the signal for (dropping a request
// queued for a runner; a 499 in the access log) only matters to slow
// ones. So a per-connection timer starts the same background read only
// for a handler still running after watchAfter: a fast request pays a
// timer reset and stop (no syscall, no goroutine), a slow one what
// net/http pays, once.
//
// 1 ms was too short: under load most requests wait that long in the
// runner queue (hello at 32 connections on 2 runners: ~1-3 ms), so the
// watch armed for nearly every one and h1 made as many read(2) calls per
// request as net/http (perf stat: 4.7 both). A client that left is
// still noticed within 50 ms, long before a queue wait ends.
const WatchAfter = 50 * time.Millisecond
