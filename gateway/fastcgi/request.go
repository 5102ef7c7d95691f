package fastcgi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gwhq/gw/gateway/cgireq"
	"github.com/gwhq/gw/internal/fcgi"
)

// Params returns every FastCGI param of the request ctx belongs to,
// including those http.Request has no field for (see cgireq.Params); the
// counterpart of net/http/fcgi.ProcessEnv.
func Params(ctx context.Context) map[string]string { return cgireq.Params(ctx) }

// stdoutRecord is how much response body goes in one STDOUT record before
// it is sent; nginx reads them into fastcgi_buffers of 4-8 KiB anyway.
const stdoutRecord = 32 << 10

// lingerTime bounds how long a closing connection keeps reading what the
// web server still sends (the rest of an unread body) after the response.
const lingerTime = time.Second

var errHandlerDone = errors.New("fastcgi: handler returned")

// start launches the handler for req. hasBody says whether the first STDIN
// record carried data.
func (c *conn) start(req *request, hasBody bool) {
	req.started = true
	var body io.Reader
	if hasBody {
		req.pr, req.pw = io.Pipe()
		body = req.pr
	}
	h := c.srv.handler()
	r, err := cgireq.Request(req.ctx, req.vars, body)
	if err != nil {
		c.log.Warn("fastcgi: bad request", "request", req.id, "err", err)
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "400 Bad Request", http.StatusBadRequest)
		})
		r, _ = http.NewRequestWithContext(req.ctx, http.MethodGet, "/", nil)
	}
	c.handlers.Add(1)
	go c.serveRequest(req, h, r) // serveConn waits for it (c.handlers)
}

func (c *conn) serveRequest(req *request, h http.Handler, r *http.Request) {
	defer c.handlers.Done()
	defer req.cancel(nil) // as http.Server: the context ends with the handler
	sw := &fcgi.StreamWriter{W: c, Type: fcgi.TypeStdout, ID: req.id, Size: stdoutRecord, Align: true}
	w := cgireq.NewResponseWriter(sw, r, cgireq.CGIHead)
	ok := serve(h, w, r, c.log)
	if req.pr != nil {
		// Unblocks the read loop if it is handing over STDIN nobody
		// will read; it discards the rest.
		req.pr.CloseWithError(errHandlerDone)
	}
	cause := context.Cause(req.ctx)
	if cause == ErrRequestAborted || cause == ErrConnClosed {
		c.log.Info("fastcgi: request ended early", "request", req.id, "method", r.Method, "path", r.URL.Path, "cause", cause)
	}
	if !ok {
		c.cut() // http.ErrAbortHandler or a panic
		return
	}
	// Answer even when the web server has gone: if it only half-closed,
	// the response still reaches it.
	if err := w.Close(); err != nil {
		if cause != ErrConnClosed {
			c.log.Warn("fastcgi: response incomplete, cutting the connection", "request", req.id, "err", err)
		}
		c.cut()
		return
	}
	if err := sw.Close(); err != nil { // the empty STDOUT record
		c.cut()
		return
	}
	c.finish(req)
}

// finish sends END_REQUEST and either readies the connection for the next
// request (FCGI_KEEP_CONN) or has the read loop close it.
func (c *conn) finish(req *request) {
	end := fcgi.AppendEndRequest(nil, req.id, 0, fcgi.StatusRequestComplete)
	if req.keep && !c.srv.closing() {
		// Idle before END_REQUEST goes out: the web server may send the
		// next BEGIN_REQUEST the moment it reads it.
		c.mu.Lock()
		req.finished = true
		c.req = nil
		// The read loop is parked in a read with no deadline (the
		// handler ran); the idle clock starts now.
		c.rwc.SetReadDeadline(time.Now().Add(c.srv.idleTimeout()))
		c.mu.Unlock()
		c.state.SetIdle()
		if _, err := c.Write(end); err != nil {
			c.cut()
		}
		return
	}
	c.mu.Lock()
	req.finished = true
	c.mu.Unlock()
	_, err := c.Write(end)
	if err == nil {
		// Without FCGI_KEEP_CONN the application closes (spec §5.1).
		// Half-close first: nginx then reads EOF at once, while the
		// read loop takes in what is left of STDIN; closing on unread
		// bytes would reset the connection, and a reset can destroy the
		// response before nginx has read it (a lingering close).
		if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing = true
	switch {
	case err != nil:
		c.rwc.Close()
	case req.stdinEnd:
		c.rwc.SetReadDeadline(time.Now()) // wake the read loop to close
	default:
		c.rwc.SetReadDeadline(time.Now().Add(lingerTime))
	}
}

// cut closes the connection at once; the web server sees no END_REQUEST
// and knows the response is incomplete.
func (c *conn) cut() {
	c.mu.Lock()
	c.closing = true
	if c.req != nil {
		c.req.finished = true
	}
	c.mu.Unlock()
	c.rwc.Close()
}

// serve runs the handler, turning a panic into a cut connection (false)
// as http.Server does; http.ErrAbortHandler is the quiet way to ask for it.
func serve(h http.Handler, w http.ResponseWriter, r *http.Request, log *slog.Logger) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v != http.ErrAbortHandler {
				log.Error("fastcgi: handler panicked", "panic", v, "stack", string(debug.Stack()))
			}
		}
	}()
	h.ServeHTTP(w, r)
	return true
}
