package sdk

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gwhq/gw/proto/pluginpb"
	"github.com/gwhq/gw/runners/goplugin/internal/wire"
)

// service is the plugin side of the Handler gRPC service: one Serve stream
// per HTTP request.
type service struct {
	pluginpb.UnimplementedHandlerServer
	h   http.Handler
	log hclog.Logger
	raw *rawConns // connections gw offers for upgrade requests; nil without
}

var errAborted = status.Error(codes.Aborted, "handler aborted the response")

// Serve runs the handler for a request with a body.
func (s *service) Serve(stream pluginpb.Handler_ServeServer) error {
	m, err := stream.Recv()
	if err != nil {
		return err
	}
	if m.Head == nil {
		return status.Error(codes.InvalidArgument, "first message carries no request head")
	}
	return s.serve(stream.Context(), stream, m.Head, &requestBody{stream: stream})
}

// ServeBodyless runs the handler for a request without a body.
func (s *service) ServeBodyless(h *pluginpb.RequestHead, stream pluginpb.Handler_ServeBodylessServer) error {
	return s.serve(stream.Context(), stream, h, nil)
}

func (s *service) serve(ctx context.Context, out sender, h *pluginpb.RequestHead, body io.ReadCloser) error {
	w := newResponseWriter(out)
	if id := h.RawConnection; id != 0 && s.raw != nil {
		w.ctx, w.raws, w.rawID = ctx, s.raw, id
		defer s.raw.abandon(id)
	}
	r, err := newRequest(ctx, h, body)
	if err != nil {
		// net/http answers an unparsable request-target with 400 too.
		w.fail(http.StatusBadRequest)
		return w.finish()
	}
	if err := s.call(w, r); err != nil {
		return err
	}
	return w.finish()
}

// call runs the handler, turning a panic into a 500 while the response head
// is still ours to change, and into an aborted stream after.
func (s *service) call(w *responseWriter, r *http.Request) (err error) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			// The handler's way of saying "cut the connection".
			err = errAborted
			return
		}
		buf := make([]byte, maxStack)
		buf = buf[:runtime.Stack(buf, false)]
		s.log.Error("handler panicked", "panic", fmt.Sprint(v), "method", r.Method, "uri", r.RequestURI, "stack", string(buf))
		if w.headSent || w.hijacked {
			err = status.Error(codes.Aborted, fmt.Sprintf("handler panicked: %v", v))
			return
		}
		w.fail(http.StatusInternalServerError)
	}()
	s.h.ServeHTTP(w, r)
	return nil
}

// dumpStacks logs every goroutine's stack, one record per goroutine: a
// record is one stderr line, and go-plugin splits lines over 64 KiB.
func (s *service) dumpStacks() {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		s.log.Warn("goroutine stack", "stack", truncate(g, maxStack))
	}
}

// maxStack keeps one stack's log record within go-plugin's line limit.
const maxStack = 32 << 10

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n... (truncated)"
}

// newRequest builds the server-side request net/http would have built from
// the same head.
func newRequest(ctx context.Context, h *pluginpb.RequestHead, body io.ReadCloser) (*http.Request, error) {
	r := &http.Request{
		Method:        h.Method,
		RequestURI:    string(h.Target),
		Proto:         h.Proto,
		Header:        make(http.Header, len(h.Headers)),
		Host:          h.Host,
		RemoteAddr:    h.RemoteAddr,
		ContentLength: h.ContentLength,
	}
	var ok bool
	if r.ProtoMajor, r.ProtoMinor, ok = http.ParseHTTPVersion(h.Proto); !ok {
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	}
	wire.AddHeaders(r.Header, h.Headers)
	// The same parse net/http's readRequest does; CONNECT's authority
	// form needs a scheme to parse.
	target := r.RequestURI
	justAuthority := r.Method == http.MethodConnect && !strings.HasPrefix(target, "/")
	if justAuthority {
		target = "http://" + target
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, fmt.Errorf("request target %q: %w", r.RequestURI, err)
	}
	if justAuthority {
		u.Scheme = ""
	}
	r.URL = u
	if h.Scheme == "https" {
		// As net/http/cgi does: handlers test r.TLS != nil for https; the
		// connection state itself stayed in gw.
		r.TLS = &tls.ConnectionState{HandshakeComplete: true}
	}
	switch {
	case body == nil || h.ContentLength == 0:
		r.Body = http.NoBody
	default:
		if h.ContentLength < 0 && r.ProtoMajor == 1 {
			r.TransferEncoding = []string{"chunked"} // as net/http reports it
		}
		r.Body = body
	}
	return r.WithContext(ctx), nil
}

// requestBody reads the body chunks that follow the head. The host
// half-closes the stream at the end of the body, and cancels it when the
// client's body fails.
type requestBody struct {
	stream pluginpb.Handler_ServeServer
	buf    []byte
	err    error
}

func (b *requestBody) Read(p []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		m, err := b.stream.Recv()
		switch {
		case errors.Is(err, io.EOF):
			b.err = io.EOF
		case err != nil:
			b.err = fmt.Errorf("read request body: %w", err)
		default:
			b.buf = m.Body
		}
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

func (b *requestBody) Close() error { return nil }
