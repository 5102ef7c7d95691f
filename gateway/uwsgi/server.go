package uwsgi

import (
	"github.com/gwhq/gw/gateway/connserve"

	"context"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server serves Handler to uwsgi clients. Its shape is http.Server's:
// Serve a listener, Shutdown gracefully.
type Server struct {
	// Handler answers every request; nil means http.NotFoundHandler.
	Handler http.Handler
	// Log receives refusals and protocol errors; nil means slog.Default().
	Log *slog.Logger
	// MaxVars caps the vars block in bytes; 0 (the default) or anything
	// above 65535 means 65535, all a header can announce. uWSGI's own
	// default is 4096 and silently resets bigger requests (§1.1).
	MaxVars int
	// IdleTimeout bounds the wait for a packet's header and vars after
	// the connection opens; 0 means 75 s. The body and the handler have
	// no deadline of their own: nginx's uwsgi_*_timeout govern them.
	IdleTimeout time.Duration

	conns connserve.Server // listeners and connections: accept, shutdown
}

type conn struct {
	rwc   net.Conn
	state *connserve.State
}

func (s *Server) log() *slog.Logger { return connserve.Logger(s.Log) }

func (s *Server) handler() http.Handler { return connserve.Handler(s.Handler) }

func (s *Server) maxVars() int {
	if s.MaxVars <= 0 || s.MaxVars > MaxVarsSize {
		return MaxVarsSize
	}
	return s.MaxVars
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
	return s.conns.Serve(ln, "uwsgi", s.log(), func(rwc net.Conn, st *connserve.State) {
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
