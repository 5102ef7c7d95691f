package gateway

import (
	"errors"
	"net/http"

	"github.com/gwhq/gw/bridge"
	"github.com/gwhq/gw/runners/php"
	"github.com/gwhq/gw/runners/pool"
)

// ServeHTTP routes r to its app.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := g.acquireTable()
	defer t.refs.Add(-1)
	rt := t.match(r.Host, r.URL.Path)
	if rt == nil {
		http.Error(w, "404 not found: no app is mounted here", http.StatusNotFound)
		return
	}
	for _, s := range rt.static {
		if underMount(r.URL.Path, s.prefix) {
			s.h.ServeHTTP(w, r)
			return
		}
	}
	maxBody := t.maxBody
	if maxBody > 0 {
		if r.ContentLength > maxBody {
			w.Header().Set("Connection", "close")
			http.Error(w, "413 request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if r.ContentLength != 0 {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
	}
	sw := &statusWriter{ResponseWriter: w}
	if err := rt.serve(sw, r); err != nil {
		g.fail(sw, r, rt, err)
	}
	if rt.stats != nil {
		rt.stats.record(sw.code(), max(r.ContentLength, 0), sw.bytes)
	}
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
		be     *bridge.BodyError
		pbe    *php.BodyError
		pae    *php.AppError
		ae     *bridge.AppError
	)
	switch {
	case errors.As(err, &mbe):
		status, msg = http.StatusRequestEntityTooLarge, "request body too large"
	case errors.As(err, &be), errors.As(err, &pbe):
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
	case errors.As(err, &ae), errors.As(err, &pae):
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
// the head went out.
type statusWriter struct {
	http.ResponseWriter
	wrote  bool
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if code >= 200 && !w.wrote {
		w.wrote = true
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.wrote, w.status = true, http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

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
