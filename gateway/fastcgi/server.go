package fastcgi

import (
	"github.com/gwhq/gw/gateway/connserve"

	"context"
	"log/slog"
	"net"
	"net/http"
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

	conns connserve.Server // listeners and connections: accept, shutdown
}

// A connection is idle between requests, active from BEGIN_REQUEST to
// END_REQUEST. Shutdown closes idle connections at once and lets active
// ones finish their request, after which they close.
const (
	stateIdle int32 = iota
	stateActive
	stateClosed
)

func (s *Server) log() *slog.Logger { return connserve.Logger(s.Log) }

func (s *Server) handler() http.Handler { return connserve.Handler(s.Handler) }

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
	return s.conns.Serve(ln, "fastcgi", s.log(), func(rwc net.Conn, st *connserve.State) {
		s.serveConn(&conn{rwc: rwc, state: st})
	})
}

func (s *Server) closing() bool { return s.conns.Closing() }

// Shutdown stops accepting, closes idle connections, and waits for
// requests in flight to finish. When ctx ends first it closes every
// connection and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error { return s.conns.Shutdown(ctx) }

// Close closes the listeners and every connection now, like
// http.Server.Close.
func (s *Server) Close() error { return s.conns.Close() }
