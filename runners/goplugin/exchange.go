package goplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gwhq/gw/internal/framing"
	"github.com/gwhq/gw/proto/pluginpb"
	"github.com/gwhq/gw/runners/goplugin/internal/wire"
	"github.com/gwhq/gw/runners/pool"
)

// BodyError is a failure reading the client's request body (client gone,
// body limit hit); the plugin saw its request canceled.
type BodyError = pool.BodyError

// AppError means the plugin's handler aborted a response (it panicked after
// the head was sent, or panicked with http.ErrAbortHandler).
type AppError = pool.AppError

// errProtocol marks a plugin that broke the message order of plugin.proto;
// its stream can't be trusted, so it counts as gone.
var errProtocol = errors.New("plugin protocol violation")

// unreadGrace is how long Serve lets the body pump end on its own after the
// response is complete, before it interrupts a slow client's body the
// plugin never wanted (as bridge does).
const unreadGrace = 50 * time.Millisecond

var chunkPool = sync.Pool{New: func() any { b := make([]byte, wire.ChunkSize); return &b }}

// Serve streams r to the plugin and the response back to rw. Errors that
// mean the plugin is gone or desynced wrap pool.ErrWorkerGone; otherwise
// *BodyError, *AppError, or an error for a client that went away or a
// deadline (dl's end). Only this request's stream ends then: the plugin
// serves on, and its handler sees its request context end.
func (w *worker) Serve(i int, rw http.ResponseWriter, r *http.Request) error {
	if w.raw != nil {
		// Only upgrade requests get a rawHijacker (gateway/rawconn.go).
		if rh, ok := rw.(rawHijacker); ok {
			return w.serveRaw(i, rh, r)
		}
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	w.setAbort(i, cancel)
	defer w.setAbort(i, nil)
	defer cancel(nil)
	hasBody := r.Body != nil && r.Body != http.NoBody && (r.ContentLength != 0 || len(r.TransferEncoding) > 0)
	head := newHead(r, hasBody)
	if !hasBody {
		stream, err := w.handler.ServeBodyless(ctx, head)
		if err == nil {
			err = copyResponse(rw, stream, r.Method, nil)
		}
		return classify(ctx, r, err)
	}
	stream, err := w.handler.Serve(ctx)
	if err != nil {
		return classify(ctx, r, err)
	}
	var pump *bodyPump
	// A failed Send means the stream is over; Recv below says why.
	if stream.Send(&pluginpb.Request{Head: head}) == nil {
		pump = startPump(stream, r.Body, cancel)
	}
	err = copyResponse(rw, stream, r.Method, nil)
	if pump != nil {
		pump.finish(rw, cancel)
	}
	return classify(ctx, r, err)
}

// Abort ends slot i's stream (the deadline passed); the plugin's handler
// sees its request context end, and the plugin serves on.
func (w *worker) Abort(i int) {
	w.abortMu.Lock()
	defer w.abortMu.Unlock()
	if cancel := w.aborts[i]; cancel != nil {
		cancel(pool.ErrTimeout)
	}
}

func (w *worker) setAbort(i int, cancel context.CancelCauseFunc) {
	w.abortMu.Lock()
	w.aborts[i] = cancel
	w.abortMu.Unlock()
}

// classify names the reason a stream failed (nil for none).
func classify(ctx context.Context, r *http.Request, err error) error {
	if err == nil {
		return nil
	}
	var we *writeError
	var ae *AppError
	switch {
	case errors.As(err, &we), errors.As(err, &ae):
		return err
	case ctx.Err() != nil:
		var be *BodyError
		if cause := context.Cause(ctx); errors.As(cause, &be) {
			return be
		}
		if r.Context().Err() == nil {
			return fmt.Errorf("request ended: %w", context.Cause(ctx)) // the deadline
		}
		return fmt.Errorf("client went away: %w", context.Cause(r.Context()))
	case errors.Is(err, errProtocol):
		return fmt.Errorf("%w: %w", pool.ErrWorkerGone, err)
	case status.Code(err) == codes.Aborted:
		return &AppError{Msg: "plugin handler: " + status.Convert(err).Message()}
	}
	// Unavailable when the process died or closed the connection; any
	// other code is a broken exchange just the same.
	return fmt.Errorf("%w: %w", pool.ErrWorkerGone, err)
}

// writeError is a failure writing the response to the client.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write response: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

func newHead(r *http.Request, hasBody bool) *pluginpb.RequestHead {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	// The path gw routed on (dot segments removed; over uwsgi/FastCGI what
	// nginx resolved, rewrites included), so the plugin's mux agrees with
	// gw's mounts; an absolute-form target loses its scheme and host, as a
	// proxy_pass would send it. CONNECT's authority-form goes as it came.
	target := r.URL.RequestURI()
	if r.Method == http.MethodConnect && r.RequestURI != "" {
		target = r.RequestURI
	}
	var cl int64
	if hasBody {
		cl = r.ContentLength // -1 when chunked
	}
	return &pluginpb.RequestHead{
		Method:        r.Method,
		Target:        []byte(target),
		Proto:         r.Proto,
		Headers:       wire.AppendHeaders(make([]*pluginpb.Header, 0, len(r.Header)), r.Header, nil),
		Host:          r.Host,
		RemoteAddr:    r.RemoteAddr,
		Scheme:        scheme,
		ContentLength: cl,
	}
}

// receiver is gw's end of either Handler stream.
type receiver interface {
	Recv() (*pluginpb.Response, error)
}

// copyResponse writes the plugin's response messages to rw until the stream
// ends: nil once the plugin completed its response. Heads, trailers and the
// body are held to framing's rules, as every runner's are: a NUL in a field
// or a 101 (a plugin switches protocols only by hijacking) is an *AppError before the head goes out, and a
// body longer or shorter than its Content-Length one after. rh is set for
// an upgrade request whose connection was offered (raw.go): a hijacked
// message hands it the client's connection and ends the copy with
// errHijacked.
func copyResponse(rw http.ResponseWriter, stream receiver, method string, rh rawHijacker) error {
	rc := http.NewResponseController(rw)
	var body framing.Body
	headSent := false
	discard := false // rw refused the body (a status net/http keeps bodiless)
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if !headSent {
				return fmt.Errorf("%w: response ended without a head", errProtocol)
			}
			if err := body.Close(); err != nil && !discard {
				return &AppError{Msg: err.Error()}
			}
			return nil
		}
		if err != nil {
			return err
		}
		if m.Hijacked {
			if rh == nil || headSent {
				return fmt.Errorf("%w: unexpected hijack", errProtocol)
			}
			if err := rh.HijackRaw(); err != nil {
				return &AppError{Msg: "hijack: " + err.Error()}
			}
			return errHijacked
		}
		if h := m.Head; h != nil {
			if headSent {
				return fmt.Errorf("%w: second response head", errProtocol)
			}
			if err := sendHead(rw, h, method, &body); err != nil {
				return err
			}
			headSent = h.Status >= 200
		}
		if len(m.Body) > 0 && !discard {
			if !headSent {
				return fmt.Errorf("%w: body before the response head", errProtocol)
			}
			if _, err := body.Write(m.Body); err != nil {
				if !errors.Is(err, http.ErrBodyNotAllowed) && !errors.Is(err, http.ErrContentLength) {
					return &writeError{err}
				}
				// As in-process: net/http drops what it may not send.
				discard = true
			}
		}
		if m.Flush && headSent {
			rc.Flush()
		}
		for _, t := range m.Trailers {
			if err := framing.Field(t.Name, t.Value); err != nil {
				return &AppError{Msg: "trailer: " + err.Error()}
			}
			// net/http sends TrailerPrefix keys as trailers, announced
			// or not.
			k := http.TrailerPrefix + textproto.CanonicalMIMEHeaderKey(string(t.Name))
			rw.Header()[k] = append(rw.Header()[k], string(t.Value))
		}
	}
}

// sendHead sends one response head: a 1xx other than 101 as an interim
// response (103 Early Hints, as net/http sends them), a final one after
// framing.Head has accepted it, which sets up body.
func sendHead(rw http.ResponseWriter, h *pluginpb.ResponseHead, method string, body *framing.Body) error {
	status := int(h.Status)
	if status < 100 || status > 999 {
		return fmt.Errorf("%w: status %d", errProtocol, status)
	}
	for _, f := range h.Headers {
		if err := framing.Field(f.Name, f.Value); err != nil {
			return &AppError{Msg: err.Error()}
		}
	}
	if status < 200 && status != http.StatusSwitchingProtocols {
		informational(rw, status, h.Headers)
		return nil
	}
	wire.AddHeaders(rw.Header(), h.Headers)
	// A Go handler's body is not pre-chunked: net/http's
	// ResponseWriter, in-process or the SDK's, does the framing.
	b, err := framing.Head(rw, method, status, false)
	if err != nil {
		return &AppError{Msg: err.Error()}
	}
	*body = b
	rw.WriteHeader(status)
	return nil
}

// informational sends a 1xx head. net/http writes the current header map
// with it; the final head brings its own fields, so the map is put back.
func informational(rw http.ResponseWriter, status int, fields []*pluginpb.Header) {
	h := rw.Header()
	saved := h.Clone()
	wire.AddHeaders(h, fields)
	rw.WriteHeader(status)
	clear(h)
	maps.Copy(h, saved)
}

// bodyPump streams the client's body to the plugin on its own goroutine, so
// the plugin can answer before it has read the body, as net/http handlers
// may.
type bodyPump struct {
	stopping chan struct{}
	done     chan struct{}
}

func startPump(stream pluginpb.Handler_ServeClient, body io.Reader, fail context.CancelCauseFunc) *bodyPump {
	p := &bodyPump{stopping: make(chan struct{}), done: make(chan struct{})}
	// Ends at the end of the body, a failure, or finish.
	go p.run(stream, body, fail)
	return p
}

func (p *bodyPump) run(stream pluginpb.Handler_ServeClient, body io.Reader, fail context.CancelCauseFunc) {
	defer close(p.done)
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	// The buffer is reused after Send: Send has marshalled the message
	// by the time it returns.
	buf := *bp
	for {
		select {
		case <-p.stopping:
			return // the response is complete: the rest is unwanted
		default:
		}
		n, err := body.Read(buf)
		if n > 0 {
			if stream.Send(&pluginpb.Request{Body: buf[:n]}) != nil {
				return // the stream ended; Recv reports why
			}
		}
		if errors.Is(err, io.EOF) {
			stream.CloseSend()
			return
		}
		if err != nil {
			// Cancelling tells the plugin (its body read fails) and
			// makes Recv return, with this as the cause.
			fail(&BodyError{Err: err})
			return
		}
	}
}

// finish stops the pump once the response is complete and waits for it. A
// pump still blocked on a slow client is cut short with a read deadline
// (net/http then closes that connection after the response), and one
// blocked in Send by ending the stream.
func (p *bodyPump) finish(rw http.ResponseWriter, cancel context.CancelCauseFunc) {
	close(p.stopping)
	t := time.NewTimer(unreadGrace)
	defer t.Stop()
	select {
	case <-p.done:
		return
	case <-t.C:
	}
	cancel(nil)
	http.NewResponseController(rw).SetReadDeadline(time.Now())
	<-p.done
}
