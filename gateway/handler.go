package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gwhq/gw/gateway/accesslog"
	"github.com/gwhq/gw/gateway/cgireq"
	"github.com/gwhq/gw/gateway/compress"
	"github.com/gwhq/gw/gateway/respbuf"
	"github.com/gwhq/gw/internal/bodypipe"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/reqid"
	"github.com/gwhq/gw/internal/reqinfo"
	"github.com/gwhq/gw/internal/spool"
	"github.com/gwhq/gw/runners/pool"
)

// ServeHTTP gives r its request id and traceparent, routes it to its app,
// and writes its access log line when the access log is on.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, requestID: reqid.Apply(r.Header)}
	t := g.acquireTable()
	defer t.release()
	r, rt := t.route(r)
	if al := accesslog.From(g.log); al != nil {
		timing := new(reqinfo.Timing) // filled in by the pool, if r gets there
		r = r.WithContext(reqinfo.WithTiming(r.Context(), timing))
		// Deferred, so a request that fail cuts off (ErrAbortHandler) is
		// logged too.
		defer logAccess(al, sw, r, rt, timing, time.Now())
	}
	g.serveRoute(sw, r, t, rt)
}

// serveRoute answers r from rt: its static files, else its app.
func (g *Gateway) serveRoute(sw *statusWriter, r *http.Request, t *table, rt *route) {
	if rt == nil {
		http.Error(sw, "404 not found: no app is mounted here", http.StatusNotFound)
		return
	}
	for _, s := range rt.static {
		if underMount(r.URL.Path, s.prefix) {
			if cw := compress.New(sw, r, rt.compress); cw != nil {
				s.h.ServeHTTP(cw, r)
				cw.Close()
				return
			}
			s.h.ServeHTTP(sw, r)
			return
		}
	}
	if r.Header["Upgrade"] != nil { // one map miss for other requests
		switch {
		case rawLang(rt.lang) && isUpgrade(r):
			g.serveRaw(sw, r, t, rt) // rawconn.go
			return
		case rt.lang == config.LangPHP && isUpgrade(r):
			g.fail(sw, r, rt, errNoUpgrade)
			return
		case isWebSocket(r):
			g.serveWebSocket(sw, r, t, rt)
			return
		}
	}
	p := &t.body
	sw.body = newReqBody(sw.ResponseWriter, r, p)
	if p.max > 0 && r.ContentLength > p.max {
		g.fail(sw, r, rt, &pool.BodyError{Err: &http.MaxBytesError{Limit: p.max}})
		sw.body.linger(sw, p)
		rt.refused(sw)
		return
	}
	if sw.body != nil {
		release, err := sw.body.buffer(r, p, !rt.buffer, rt.bridge())
		if err != nil {
			g.fail(sw, r, rt, &pool.BodyError{Err: err})
			sw.body.linger(sw, p)
			rt.refused(sw)
			return
		}
		defer release()
		if _, ok := r.Body.(*bodypipe.Body); ok && rt.stats != nil {
			rt.stats.spliced.Add(1)
		}
	}
	// The runner's slot is freed when rt.serve returns; a client slower
	// than the app gets the rest of the answer from bw's spool.
	// Writers, outermost first: sendfile (when the app has roots),
	// compression (when the client accepts it), respbuf.
	bw := respbuf.New(sw, r, rt.respbuf)
	var w http.ResponseWriter = bw
	cw := compress.New(bw, r, rt.compress)
	if cw != nil {
		w = cw
	}
	var sf *sendfileWriter
	if rt.sendfile != nil {
		asksSendfile(r)
		sf = &sendfileWriter{ResponseWriter: w}
		w = sf
	}
	err := rt.serve(w, r)
	if cw != nil {
		// The compressor's last block goes before the client side ends.
		if cerr := cw.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("compress: %w", cerr)
		}
	}
	bw.Finish() // the client side is done: sw is ours again
	if err == nil && sf != nil && sf.target != "" {
		// The slot is free: gw sends the file the app named.
		err = sendFile(sw, r, rt.sendfile, sf)
	}
	if err != nil {
		g.fail(sw, r, rt, err)
	}
	sw.body.linger(sw, p)
	if rt.stats != nil {
		rt.stats.record(sw.code(), max(r.ContentLength, 0), sw.bytes)
	}
}

// refused counts a request gw answered itself because of its body (413,
// 408, 400), before the app saw it: the app's status counts include it,
// as nginx's would; its body was not taken, so no bytes in.
func (rt *route) refused(sw *statusWriter) {
	if rt.stats != nil && sw.wrote {
		rt.stats.record(sw.code(), 0, sw.bytes)
	}
}

// logAccess writes r's access log line; timing is what the pool measured
// (zero if r never reached a runner).
func logAccess(al *accesslog.Logger, w *statusWriter, r *http.Request, rt *route, timing *reqinfo.Timing, start time.Time) {
	end := time.Now()
	e := accesslog.Entry{
		Time: end, Method: r.Method, Path: r.URL.Path, Proto: r.Proto, Status: w.code(), Bytes: w.bytes,
		QueueWait: timing.QueueWait, AppTime: timing.AppTime, Total: end.Sub(start), PID: timing.PID,
		RequestID: w.requestID, Remote: r.RemoteAddr, Vars: timing.Vars,
	}
	if !w.wrote && r.Context().Err() != nil {
		e.Status = 499 // nginx's code for a client that left before the answer
	}
	if rt != nil {
		e.App = rt.name
	}
	al.Log(e)
}

// acquireTable pins the current generation for one request, so a reload
// does not stop its apps under it.
func (g *Gateway) acquireTable() *table {
	for {
		t := g.routes.Load()
		t.pin()
		if g.routes.Load() == t {
			return t
		}
		t.release() // swapped meanwhile: pin the new one
	}
}

// fail is the one place that maps a failed request to what the client sees.
func (g *Gateway) fail(w *statusWriter, r *http.Request, rt *route, err error) {
	var (
		status    int
		msg       string
		closeConn bool // the body's framing or timing failed: RFC 9112 §9.6
		mbe       *http.MaxBytesError
		be        *pool.BodyError
		ae        *pool.AppError
		sfe       *sendfileError
	)
	switch {
	case errors.As(err, &mbe):
		status, msg, closeConn = http.StatusRequestEntityTooLarge, "request body too large", true
	case errors.Is(err, cgireq.ErrShortBody):
		status, msg = http.StatusBadRequest, "request body shorter than its Content-Length"
	case errors.As(err, &be):
		if status, msg = bodyStatus(be.Err); status == 0 {
			// The client stopped sending its body; there is nobody to answer.
			g.log.Info("client went away", "app", rt.name, "path", r.URL.Path, "err", err)
			return
		}
		closeConn = true
	case errors.Is(err, pool.ErrQueueFull), errors.Is(err, pool.ErrQueueTimeout), errors.Is(err, pool.ErrStopped):
		status, msg = http.StatusServiceUnavailable, "no runner free, try again"
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, errNoUpgrade):
		status, msg = http.StatusNotImplemented, err.Error()
	case errors.Is(err, errTooManyWebSockets):
		status, msg = http.StatusServiceUnavailable, err.Error()
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, pool.ErrAppFailed):
		status, msg = http.StatusServiceUnavailable, "the app is failing to start; see the gw log"
		w.Header().Set("Retry-After", "5")
	case errors.Is(err, pool.ErrTimeout):
		status, msg = http.StatusGatewayTimeout, "the app took too long"
	case errors.As(err, &ae), errors.As(err, &sfe):
		status, msg = http.StatusInternalServerError, "internal server error"
	case errors.Is(err, pool.ErrWorkerGone):
		status, msg = http.StatusBadGateway, "the app's runner went away"
	default:
		if r.Context().Err() != nil {
			return // the client left while queued
		}
		status, msg = http.StatusBadGateway, "bad gateway"
	}
	g.log.Error("request failed", "app", rt.name, "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	if w.wrote {
		// Headers are out: the only honest signal left is a cut
		// connection (chunked responses end without their last chunk).
		panic(http.ErrAbortHandler)
	}
	h := w.Header()
	alt := h["Alt-Svc"]
	for k := range h {
		if k != "Retry-After" && k != "Connection" { // gw's own, never an app's
			delete(h, k)
		}
	}
	// gw's Alt-Svc, which altSvc put first before the app ran, stays on
	// an HTTPS or HTTP/3 error too: clients learn of HTTP/3 from any
	// answer. What the app added to it goes with its other fields.
	if len(alt) > 0 && len(g.h3altSvc) > 0 && alt[0] == g.h3altSvc[0] {
		h["Alt-Svc"] = g.h3altSvc
	}
	if closeConn && r.ProtoMajor == 1 { // HTTP/2 and 3 have no Connection header (RFC 9114 §4.2)
		h.Set("Connection", "close")
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(http.StatusText(status) + ": " + msg + "\n"))
}

// bodyStatus is fail's answer to a request body that could not be read,
// 0 when the client left (nobody to answer): 408 when it stalled past the
// body timeout (nginx's client_body_timeout), 500 when the spool could not
// keep it, 400 for what net/http's body reader reports about the body's own
// framing (a bad or overlong chunk size, a bare LF: RFC 9112 §7.1).
func bodyStatus(err error) (int, string) {
	var (
		se *spool.Error
		ne net.Error
	)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusRequestTimeout, "the request body did not arrive in time"
	case errors.As(err, &se):
		return http.StatusInternalServerError, "could not buffer the request body"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.As(err, &ne):
		return 0, "" // cut short or reset by the client
	}
	return http.StatusBadRequest, "malformed request body"
}

// statusWriter records the response's status and body size, and whether
// the head went out; it gives the head the request id.
type statusWriter struct {
	http.ResponseWriter
	body      *reqBody // nil without a request body
	requestID string
	wrote     bool
	status    int
	bytes     int64
}

// head notes the head going out with code and adds X-Request-Id to it.
// Added here rather than before the app runs, so an app that sets its own
// (echoing the request's, say) sends one, not two, and fail's header reset
// cannot drop it.
func (w *statusWriter) head(code int) {
	w.wrote, w.status = true, code
	if h := w.Header(); len(h[reqid.Header]) == 0 {
		h[reqid.Header] = []string{w.requestID}
	}
}

func (w *statusWriter) WriteHeader(code int) {
	if code >= 200 && !w.wrote {
		w.head(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.head(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the front end's own ReadFrom in reach through the
// wrapper: net/http's sends static files with sendfile(2).
func (w *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wrote {
		w.head(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{w.ResponseWriter}, src)
	}
	w.bytes += n
	return n, err
}

// writerOnly hides a writer's other methods, so io.Copy cannot come back
// to ReadFrom.
type writerOnly struct{ io.Writer }

// code is the status sent (200 if the handler wrote nothing at all).
func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// SetReadDeadline is how a runner protocol stops a body pump blocked on the
// client (through http.ResponseController, which finds it before Unwrap);
// the body's next per-read deadline must not undo that.
func (w *statusWriter) SetReadDeadline(t time.Time) error {
	if w.body != nil {
		return w.body.stop(t)
	}
	return http.NewResponseController(w.ResponseWriter).SetReadDeadline(t)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
