package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/gwhq/gw/internal/hostenv"
)

// udpBuffer is the socket buffer quic-go asks for (7 MiB, its
// sys_conn_buffers_nonopenbsd.go): less makes a fast download drop
// packets at the kernel. gw asks first, so it can say what to set in one
// log line; quic-go then finds it done or logs nothing (see bindHTTP3).
const udpBuffer = 7 << 20

// errNoHTTPS: the config refuses HTTP/3 without HTTPS; a Gateway built
// without Load must too, as HTTP/3 takes HTTPS's certificate.
var errNoHTTPS = errors.New("an HTTP/3 listener needs the HTTPS listener (listen.https)")

// bindHTTP3 binds the HTTP/3 listener's UDP socket, or keeps pc (passed by
// the gw this one upgrades). It raises the socket's buffers and warns in
// one line when the kernel caps them.
func (g *Gateway) bindHTTP3(pc net.PacketConn) error {
	a := g.cfg.Listen.HTTP3
	if g.cfg.Listen.HTTPS.IsZero() {
		return errNoHTTPS
	}
	if pc == nil {
		var err error
		if pc, err = net.ListenPacket("udp", a.Address); err != nil {
			return fmt.Errorf("listen %s (udp): %w", a, err)
		}
	}
	if uc, ok := pc.(*net.UDPConn); ok {
		if got, want := raiseUDPBuffers(uc); got < want {
			g.log.Warn("HTTP/3: the kernel caps UDP socket buffers; fast transfers may lose packets: "+
				"set sysctl net.core.rmem_max and net.core.wmem_max to at least "+strconv.Itoa(want),
				"got", got, "want", want)
		}
		// Said once, above: quic-go's own multi-line warning at Serve
		// would repeat it. quic-go has no option for it, only this
		// variable; runners do not get it (hostenv.Environ).
		os.Setenv(hostenv.QUICNoBufferWarning, "true")
	}
	g.h3conn, g.h3altSvc = pc, altSvcValue(pc)
	return nil
}

// raiseUDPBuffers asks for udpBuffer bytes each way (past the sysctl
// caps when gw has CAP_NET_ADMIN, as quic-go does) and returns the smaller
// of the two the kernel granted. Linux reports twice what it was asked
// for; quic-go compares the same figure.
func raiseUDPBuffers(c *net.UDPConn) (got, want int) {
	c.SetReadBuffer(udpBuffer)
	c.SetWriteBuffer(udpBuffer)
	rc, err := c.SyscallConn()
	if err != nil {
		return udpBuffer, udpBuffer
	}
	got = udpBuffer
	rc.Control(func(fd uintptr) {
		for _, o := range []struct{ get, force int }{
			{syscall.SO_RCVBUF, syscall.SO_RCVBUFFORCE}, {syscall.SO_SNDBUF, syscall.SO_SNDBUFFORCE},
		} {
			n, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, o.get)
			if err == nil && n < udpBuffer {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, o.force, udpBuffer)
				n, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, o.get)
			}
			if err == nil {
				got = min(got, n)
			}
		}
	})
	return got, udpBuffer
}

// altSvc advertises the HTTP/3 listener (RFC 7838) on the HTTPS and
// HTTP/3 listeners' answers. The value is shared and never written: a
// handler that adds its own Alt-Svc appends to a full slice, which copies.
type altSvc struct {
	http.Handler
	value []string
}

func (h altSvc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header()["Alt-Svc"] = h.value
	h.Handler.ServeHTTP(w, r)
}

// altSvcValue is the Alt-Svc of the HTTP/3 listener bound at pc: its port
// on the host the client already reached, for a day.
func altSvcValue(pc net.PacketConn) []string {
	port := 0
	if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok {
		port = ua.Port
	}
	return []string{`h3=":` + strconv.Itoa(port) + `"; ma=86400`}
}

// http3Server makes the HTTP/3 server: the HTTPS listener's handler chain
// (httpEntry: proxy headers, then the gateway) and its certificate source,
// so a renewed certificate serves both.
func (g *Gateway) http3Server() *http3.Server {
	var certs certSource
	for _, ln := range g.lns {
		if ln.proto == "https" {
			certs = ln.certs
		}
	}
	lim := g.cfg.Limits
	return &http3.Server{
		Handler:     g.h3conns.wrap(g.altSvc(httpEntry{g: g})),
		ConnContext: g.h3conns.add,
		TLSConfig:   certs.tlsConfig(), // http3 clones it and offers "h3" by ALPN
		// No 0-RTT: early data can be replayed, and an app cannot tell a
		// replayed POST (RFC 9114 §10.9; net/http's TLS does no 0-RTT).
		QUICConfig:     &quic.Config{Allow0RTT: false},
		MaxHeaderBytes: int(lim.MaxHeader),
		IdleTimeout:    lim.IdleTimeout,
		Logger:         g.log.With("proto", "http3"),
	}
}

// altSvc wraps h to advertise HTTP/3 when it is on; h itself otherwise.
func (g *Gateway) altSvc(h http.Handler) http.Handler {
	if g.h3conn == nil {
		return h
	}
	return altSvc{Handler: h, value: g.h3altSvc}
}

// serveHTTP3 starts the HTTP/3 server, when configured.
func (g *Gateway) serveHTTP3() {
	if g.h3conn == nil {
		return
	}
	srv := g.http3Server()
	g.h3srv = srv
	pc := g.h3conn
	g.wg.Add(1)
	// Serve returns at Shutdown.
	go func() {
		defer g.wg.Done()
		if err := srv.Serve(pc); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("listener failed", "proto", "http3", "addr", pc.LocalAddr().String(), "err", err)
		}
	}()
}

// shutdownHTTP3 sends GOAWAY to every HTTP/3 connection and waits, until
// ctx ends, for their requests. The socket stays open until then: quic-go
// reads it until its last connection is done.
func (g *Gateway) shutdownHTTP3(ctx context.Context) error {
	if g.h3srv == nil {
		return nil
	}
	idleCtx, stop := context.WithCancel(ctx)
	idleDone := make(chan struct{})
	// Ended by stop, once Shutdown returns; waited for, so no connection
	// is closed after shutdownHTTP3 returned.
	go func() { defer close(idleDone); g.h3conns.closeIdle(idleCtx) }()
	defer func() { stop(); <-idleDone }()
	err := g.h3srv.Shutdown(ctx)
	if err != nil {
		g.h3srv.Close()
		err = fmt.Errorf("drain http3: %w", err)
	}
	return err
}

// InheritPacketConns gives g the UDP sockets the gw it upgrades passed,
// by listener name; Listen serves them instead of binding. Call it first.
func (g *Gateway) InheritPacketConns(pcs map[string]net.PacketConn) { g.inheritedPCs = pcs }

// PacketConns returns the open UDP sockets by listener name ("http3"), to
// hand to the gw of an upgrade.
func (g *Gateway) PacketConns() map[string]net.PacketConn {
	if g.h3conn == nil {
		return nil
	}
	return map[string]net.PacketConn{"http3": g.h3conn}
}

// h3Conns tracks the HTTP/3 connections and their requests in flight, so
// a drain can close the idle ones: quic-go's Shutdown sends GOAWAY and
// then waits for the client to close, and a browser keeps an idle
// connection open for its whole idle timeout, which would hold every
// SIGTERM to the shutdown bound.
type h3Conns struct {
	mu    sync.Mutex
	conns map[*h3Conn]struct{}
}

type h3Conn struct {
	qc      *quic.Conn
	active  int       // requests in the handler
	lastEnd time.Time // when the last one left it
}

type h3ConnKey struct{}

// add is the server's ConnContext: it registers qc until it closes.
func (s *h3Conns) add(ctx context.Context, qc *quic.Conn) context.Context {
	c := &h3Conn{qc: qc}
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[*h3Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	context.AfterFunc(qc.Context(), func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	})
	return context.WithValue(ctx, h3ConnKey{}, c)
}

// wrap counts h's requests per connection.
func (s *h3Conns) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(h3ConnKey{}).(*h3Conn)
		if c == nil {
			h.ServeHTTP(w, r)
			return
		}
		s.mu.Lock()
		c.active++
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			c.active--
			c.lastEnd = time.Now()
			s.mu.Unlock()
		}()
		h.ServeHTTP(&hopless{ResponseWriter: w}, r)
	})
}

// h3Settle is how long after its last request left the handler a
// connection counts as idle at a drain: the handler's return does not
// mean the answer's last bytes left quic-go's send buffer, and closing
// the connection would drop them.
const h3Settle = time.Second

// closeIdle closes, until ctx ends, each connection that is idle: no
// request in the handler for h3Settle. Called when the drain starts.
func (s *h3Conns) closeIdle(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		var idle []*quic.Conn
		for c := range s.conns {
			if c.active == 0 && time.Since(c.lastEnd) >= h3Settle {
				idle = append(idle, c.qc)
				delete(s.conns, c)
			}
		}
		s.mu.Unlock()
		for _, qc := range idle {
			qc.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// hopless drops the connection-specific headers HTTP/3 forbids (RFC 9114
// §4.2) from an answer; an app written for HTTP/1.1 may send them, and
// quic-go would pass them on, making the client reject the answer
// (net/http's HTTP/2 server drops them itself).
type hopless struct {
	http.ResponseWriter
	wrote bool // the head is out
}

var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"}

func (w *hopless) WriteHeader(code int) {
	if !w.wrote {
		h := w.ResponseWriter.Header()
		for _, k := range hopHeaders {
			delete(h, k)
		}
		w.wrote = code >= 200 // after a 1xx, the final head follows
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *hopless) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *hopless) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach quic-go's writer (read
// deadlines for the body policy).
func (w *hopless) Unwrap() http.ResponseWriter { return w.ResponseWriter }
