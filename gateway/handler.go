package gateway

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gwhq/gw/gateway/accesslog"
	"github.com/gwhq/gw/gateway/cgireq"
	"github.com/gwhq/gw/gateway/respbuf"
	"github.com/gwhq/gw/internal/reqid"
	"github.com/gwhq/gw/internal/reqinfo"
	"github.com/gwhq/gw/runners/pool"
)

// ServeHTTP gives r its request id and traceparent, routes it to its app,
// and writes its access log line when the access log is on.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, requestID: reqid.Apply(r.Header)}
	t := g.acquireTable()
	defer t.refs.Add(-1)
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
			s.h.ServeHTTP(sw, r)
			return
		}
	}
	maxBody := t.maxBody
	if maxBody > 0 {
		if r.ContentLength > maxBody {
			sw.Header().Set("Connection", "close")
			http.Error(sw, "413 request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if r.ContentLength != 0 {
			r.Body = http.MaxBytesReader(sw, r.Body, maxBody)
		}
	}
	release, err := bufferBody(r)
	if err != nil {
		g.fail(sw, r, rt, &pool.BodyError{Err: err})
		return
	}
	defer release()
	// The runner's slot is freed when rt.serve returns; a client slower
	// than the app gets the rest of the answer from bw's spool.
	bw := respbuf.New(sw, r, rt.respbuf)
	err = rt.serve(bw, r)
	bw.Finish() // the client side is done: sw is ours again
	if err != nil {
		g.fail(sw, r, rt, err)
	}
	if rt.stats != nil {
		rt.stats.record(sw.code(), max(r.ContentLength, 0), sw.bytes)
	}
}

// logAccess writes r's access log line; timing is what the pool measured
// (zero if r never reached a runner).
func logAccess(al *accesslog.Logger, w *statusWriter, r *http.Request, rt *route, timing *reqinfo.Timing, start time.Time) {
	end := time.Now()
	e := accesslog.Entry{
		Time: end, Method: r.Method, Path: r.URL.Path, Status: w.code(), Bytes: w.bytes,
		QueueWait: timing.QueueWait, AppTime: timing.AppTime, Total: end.Sub(start), PID: timing.PID,
		RequestID: w.requestID, Remote: r.RemoteAddr,
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
		t.refs.Add(1)
		if g.routes.Load() == t {
			return t
		}
		t.refs.Add(-1) // swapped meanwhile: pin the new one
	}
}

// fail is the one place that maps a failed request to what the client sees.
func (g *Gateway) fail(w *statusWriter, r *http.Request, rt *route, err error) {
	var (
		status int
		msg    string
		mbe    *http.MaxBytesError
		be     *pool.BodyError
		ae     *pool.AppError
	)
	switch {
	case errors.As(err, &mbe):
		status, msg = http.StatusRequestEntityTooLarge, "request body too large"
	case errors.Is(err, cgireq.ErrShortBody):
		status, msg = http.StatusBadRequest, "request body shorter than its Content-Length"
	case errors.As(err, &be):
		// The client stopped sending its body; there is nobody to answer.
		g.log.Info("client went away", "app", rt.name, "path", r.URL.Path, "err", err)
		return
	case errors.Is(err, pool.ErrQueueFull), errors.Is(err, pool.ErrQueueTimeout), errors.Is(err, pool.ErrStopped):
		status, msg = http.StatusServiceUnavailable, "no runner free, try again"
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, pool.ErrAppFailed):
		status, msg = http.StatusServiceUnavailable, "the app is failing to start; see the gw log"
		w.Header().Set("Retry-After", "5")
	case errors.Is(err, pool.ErrTimeout):
		status, msg = http.StatusGatewayTimeout, "the app took too long"
	case errors.As(err, &ae):
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
	for k := range h {
		if k != "Retry-After" {
			delete(h, k)
		}
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(http.StatusText(status) + ": " + msg + "\n"))
}

// statusWriter records the response's status and body size, and whether
// the head went out; it gives the head the request id.
type statusWriter struct {
	http.ResponseWriter
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

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
