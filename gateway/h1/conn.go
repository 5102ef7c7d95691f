package h1

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gwhq/gw/gateway/connserve"
)

// Lingering close, nginx's (lingering_time 30s, lingering_timeout 5s):
// a connection closing on request bytes it never read would answer
// them with a RST, which can destroy the response before the client
// reads it. So it half-closes, then reads and drops what still comes for
// up to lingerTime, as long as bytes come every lingerTimeout, and at
// most lingerBytes (nginx has no byte cap; gw bounds the work).
const (
	lingerTime    = 30 * time.Second
	lingerTimeout = 5 * time.Second
	lingerBytes   = 64 << 20
)

// errQuiet ends a connection without an answer: EOF or a timeout while
// waiting for a request, or a read error inside a head (net/http too
// closes silently then, and so does nginx on client_header_timeout).
var errQuiet = errors.New("h1: connection ended")

// conn is one client connection. Everything a request needs is in here
// and reused by the next request: the read buffer, the head, the request
// template, its URL and header, the body reader and the response writer.
type conn struct {
	srv    *Server
	rwc    net.Conn
	raw    syscall.RawConn // rwc's, once a body was spliced (splice.go)
	st     *connserve.State
	remote string
	ctx    context.Context // the per-connection parent of request contexts

	r     reader
	h     head
	tmpl  http.Request
	url   url.URL
	hdr   http.Header
	rhdr  http.Header // the response's
	strs  []string
	body  body
	w     response
	watch watcher

	// A handler may read the body on another goroutine while it writes
	// the answer (gw's body pump does), so what the two share is guarded:
	// contMu orders a 100 Continue before the final head, and the body's
	// left is atomic. Everything else the body reader touches is its own.
	contMu   sync.Mutex
	expect   bool       // 100 Continue owed on the first body read; under contMu
	expected bool       // the request asked for 100-continue (fixed per request)
	rdlMu    sync.Mutex // rdl, rdlSet and handlerRDL while a handler runs
	// handlerRDL: the handler set a read deadline for this request
	// (ResponseController); body reads keep it rather than clearing it.
	handlerRDL bool
	hijacked   bool

	rdl     time.Time // the read deadline last set on rwc; see idleWait
	rdlSet  bool      // rdl is what rwc has (false once unknown)
	now     time.Time // when the current request's head was read
	dateSec int64
	dateBuf []byte
	scratch [24]byte // formatting numbers without an allocation
}

func newConn(s *Server, rwc net.Conn, st *connserve.State) *conn {
	c := &conn{srv: s, rwc: rwc, st: st, hdr: http.Header{}, rhdr: http.Header{}}
	c.r = reader{src: rwc, buf: make([]byte, defaultBuf)}
	if a := rwc.RemoteAddr(); a != nil {
		c.remote = a.String()
	}
	c.ctx = context.WithValue(context.Background(), http.LocalAddrContextKey, rwc.LocalAddr())
	c.ctx = context.WithValue(c.ctx, lingersKey{}, true)
	c.watch.c = c
	return c
}

func (c *conn) serve() {
	defer func() {
		if !c.hijacked {
			c.rwc.Close()
		}
	}()
	for {
		fr, err := c.readRequest()
		if err != nil {
			c.refuse(err)
			return
		}
		if !c.serveRequest(fr) {
			return
		}
		c.st.SetIdle()
		if c.srv.closing() {
			return
		}
	}
}

// readRequest waits for the next head, reads it whole and parses it.
func (c *conn) readRequest() (framing, error) {
	max := c.srv.maxHeader()
	c.idleWait()
	active, timed := false, false
	skipped, resume := 0, 0
	for {
		// RFC 9112 §2.2: ignore empty lines before a request-line.
		for c.r.buffered() >= 2 && c.r.buf[c.r.r] == '\r' && c.r.buf[c.r.r+1] == '\n' {
			c.r.r, skipped, resume = c.r.r+2, skipped+2, 0
		}
		if c.r.buffered() > 0 {
			if !active {
				if active = true; !c.st.Activate() {
					return framing{}, errQuiet // Shutdown closed it as idle
				}
			}
			end, res := headEnd(c.r.buf[c.r.r:c.r.w], resume)
			switch {
			case end > max || (end < 0 && c.r.buffered()+skipped > max):
				return framing{}, errHeadTooLarge
			case end >= 0:
				return c.parse(end)
			}
			resume = res
			if !timed && c.srv.ReadHeaderTimeout > 0 {
				// The head did not come in one read: from now on
				// the header timeout bounds it, as net/http's does.
				timed = true
				c.setReadDeadline(time.Now().Add(c.srv.ReadHeaderTimeout))
			}
		}
		if err := c.r.fill(max + 4); err != nil {
			if err == errLineTooLong {
				return framing{}, errHeadTooLarge
			}
			return framing{}, errQuiet
		}
	}
}

// parse turns the head of length end at the read position into the
// request template.
func (c *conn) parse(end int) (framing, error) {
	b := c.r.buf[c.r.r : c.r.r+end]
	c.r.r += end
	if err := parseHead(b, &c.h); err != nil {
		return framing{}, err
	}
	s := string(b) // the one allocation a head costs: every string of the request slices it
	fr, strs, err := build(&c.h, s, &c.tmpl, &c.url, c.hdr, c.strs)
	c.strs = strs
	return fr, err
}

// serveRequest runs the handler for the request in c.tmpl and completes
// the response; false means the connection is done.
func (c *conn) serveRequest(fr framing) bool {
	c.now = time.Now()
	r := &c.tmpl
	r.RemoteAddr = c.remote
	if fr.length != 0 {
		c.body.reset(c, fr)
		r.Body = &c.body
	} else {
		c.body = body{}
	}
	c.expect, c.expected = fr.expect, fr.expect
	c.handlerRDL = false
	ctx, cancel := context.WithCancelCause(c.ctx)
	req := r.WithContext(ctx)
	c.watch.cancel = cancel
	if d := c.srv.WriteTimeout; d > 0 {
		c.rwc.SetWriteDeadline(c.now.Add(d))
	}
	c.w.reset(c, req, fr)
	defer c.w.release()
	if fr.length == 0 {
		c.watch.arm()
	}
	ok := c.runHandler(req)
	c.watch.stop()
	cancel(nil)
	if c.hijacked {
		return false
	}
	if !ok {
		c.w.abort()
		return false
	}
	if c.w.finish() != nil {
		return false
	}
	keep := c.w.keepAlive
	if c.body.unread() && keep {
		keep = c.body.discard(maxPostHandlerRead)
	}
	if !keep {
		if c.body.unread() || c.r.buffered() > 0 {
			c.linger()
		}
		return false
	}
	c.r.shrink()
	return true
}

// runHandler calls the handler; a panic cuts the connection, as in
// net/http, and http.ErrAbortHandler is the quiet way to ask for that.
func (c *conn) runHandler(r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v != http.ErrAbortHandler {
				c.srv.log().Error("h1: handler panicked", "remote", c.remote, "panic", v, "stack", string(debug.Stack()))
			}
		}
	}()
	h := c.srv.handler()
	if r.RequestURI == "*" && r.Method == "OPTIONS" {
		h = optionsHandler{} // net/http's globalOptionsHandler
	}
	h.ServeHTTP(&c.w, r)
	return true
}

// refuse answers a request no handler may see, then closes.
func (c *conn) refuse(err error) {
	var se *statusError
	if !errors.As(err, &se) {
		return
	}
	c.srv.log().Debug("h1: refused request", "remote", c.remote, "status", se.code, "err", se.msg)
	text := strconv.Itoa(se.code) + " " + http.StatusText(se.code) + ": " + se.msg + "\n"
	msg := string(statusLine(se.code)) + "Content-Type: text/plain; charset=utf-8\r\nContent-Length: " +
		strconv.Itoa(len(text)) + "\r\nConnection: close\r\n\r\n" + text
	c.rwc.SetWriteDeadline(time.Now().Add(lingerTimeout))
	if _, err := c.rwc.Write([]byte(msg)); err == nil {
		c.linger()
	}
}

// linger half-closes and drops what the client still sends; see
// lingerTime.
func (c *conn) linger() {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.st.SetIdle() // Shutdown may close it at once
	start := time.Now()
	buf := c.r.buf
	for total := 0; total < lingerBytes; {
		now := time.Now()
		if now.Sub(start) >= lingerTime {
			return
		}
		c.rwc.SetReadDeadline(now.Add(min(lingerTimeout, lingerTime-now.Sub(start))))
		n, err := c.rwc.Read(buf)
		total += n
		if err != nil {
			return
		}
	}
}

// idleWait sets the read deadline for the wait for the next request, to
// IdleTimeout from now. It is coarse on purpose: a deadline still within
// 1/16 of IdleTimeout of the exact one is kept, so a busy keep-alive
// connection re-arms its deadline (a runtime timer) about once every
// IdleTimeout/16 instead of once per request (net/http sets three per
// request).
func (c *conn) idleWait() {
	d := c.srv.IdleTimeout
	if d <= 0 {
		if c.rdlSet && c.rdl.IsZero() {
			return
		}
		c.setReadDeadline(time.Time{})
		return
	}
	want := time.Now().Add(d)
	if c.rdlSet && !c.rdl.IsZero() && !c.rdl.After(want) && want.Sub(c.rdl) < d/16 {
		return
	}
	c.setReadDeadline(want)
}

func (c *conn) setReadDeadline(t time.Time) error {
	c.rdl, c.rdlSet = t, true
	return c.rwc.SetReadDeadline(t)
}

// bodyReading runs before each body read: 100 Continue if owed
// (RFC 9110 §10.1.1: only once the handler wants the body), and no
// deadline left over from the head when the read may reach the
// connection (bodies have no deadline but the handler's).
func (c *conn) bodyReading(buffered bool) {
	if c.expected {
		c.contMu.Lock()
		if c.expect { // not yet sent, and no final head out
			c.expect = false
			c.rwc.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
		}
		c.contMu.Unlock()
	}
	if !buffered {
		c.rdlMu.Lock()
		if !c.handlerRDL && (!c.rdlSet || !c.rdl.IsZero()) {
			c.setReadDeadline(time.Time{})
		}
		c.rdlMu.Unlock()
	}
}

// bodyDone runs when the body has been read to its end: from now on the
// connection can be watched for the client leaving.
func (c *conn) bodyDone() { c.watch.arm() }

type lingersKey struct{}

// Lingers reports whether the server a request came through does its own
// lingering close (this one: after the handler returns, half-closed, so
// the client sees the answer end), which a handler then need not do.
func Lingers(ctx context.Context) bool {
	v, _ := ctx.Value(lingersKey{}).(bool)
	return v
}

// optionsHandler answers "OPTIONS *" (RFC 9110 §9.3.7) for the server as
// a whole, as net/http does: 200 with an empty body, whatever the route.
type optionsHandler struct{}

func (optionsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "0")
}
