package h1

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gwhq/gw/gateway/connserve"
)

// Server serves Handler over HTTP/1.1 (and 1.0). Its shape is
// http.Server's: Serve a listener, Shutdown gracefully, Close.
//
// What a handler gets differs from net/http in one way it must respect:
// the *http.Request's URL, Header and Body belong to the connection and
// are reused by its next request, so nothing may use them after
// ServeHTTP returns (the request itself, its context and its strings are
// the handler's to keep).
type Server struct {
	// Handler answers every request; nil means http.NotFoundHandler.
	Handler http.Handler
	// Log receives handler panics and, at debug level, refused
	// requests; nil means slog.Default().
	Log *slog.Logger
	// MaxHeaderBytes caps the request head: request line, fields and
	// the empty line (431 beyond; net/http allows 4 KiB more than its
	// own MaxHeaderBytes). 0 means http.DefaultMaxHeaderBytes (1 MiB).
	// It also caps a chunked body's trailer section.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds reading a head once its first bytes came
	// in one read without the whole of it; 0 means no limit.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request (approximately:
	// see conn.idleWait); 0 means no limit.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing each response, from the end of its
	// request's head; 0 means no limit.
	WriteTimeout time.Duration

	conns connserve.Server // listeners and connections: accept, shutdown
}

func (s *Server) log() *slog.Logger { return connserve.Logger(s.Log) }

func (s *Server) handler() http.Handler { return connserve.Handler(s.Handler) }

func (s *Server) maxHeader() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return http.DefaultMaxHeaderBytes
}

func (s *Server) closing() bool { return s.conns.Closing() }

// keepAlives is false once Shutdown began: responses then say close.
func (s *Server) keepAlives() bool { return !s.closing() }

// Serve accepts connections on ln and serves each in its own goroutine. It
// returns http.ErrServerClosed after Shutdown or Close, else the accept
// error. ln is closed on return.
func (s *Server) Serve(ln net.Listener) error {
	return s.conns.Serve(ln, "http", s.log(), func(rwc net.Conn, st *connserve.State) {
		newConn(s, rwc, st).serve()
	})
}

// Shutdown stops accepting, closes idle connections, and waits for
// requests in flight to finish. When ctx ends first it closes every
// connection and returns ctx's error. A hijacked connection counts as in
// flight until its handler returns (net/http forgets it at once).
func (s *Server) Shutdown(ctx context.Context) error { return s.conns.Shutdown(ctx) }

// Close closes the listeners and every connection now, like
// http.Server.Close.
func (s *Server) Close() error { return s.conns.Close() }
