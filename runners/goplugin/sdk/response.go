package sdk

import (
	"context"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/gwhq/gw/proto/pluginpb"
	"github.com/gwhq/gw/runners/goplugin/internal/wire"
)

// responseWriter is the http.ResponseWriter a handler writes to. It keeps
// the head and up to wire.ChunkSize body bytes until the buffer fills, the
// handler flushes or the handler returns, so a small response travels to gw
// as one message. Like net/http's, it is not safe for concurrent use.
type responseWriter struct {
	stream sender
	header http.Header

	status   int                    // the final status once WriteHeader ran
	head     *pluginpb.ResponseHead // the final head, until it is sent
	headSent bool                   // the final head left the plugin
	declared []string               // trailer names announced in "Trailer"
	noBody   bool                   // the status allows no body
	buf      []byte                 // body bytes not yet sent
	err      error                  // the first send failure

	// An upgrade request's connection, offered by gw (hijack.go).
	ctx      context.Context
	raws     *rawConns // nil unless offered
	rawID    uint32
	hijacked bool // the handler took the connection: nothing more is sent
}

var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
	_ http.Hijacker       = (*responseWriter)(nil)
)

// sender is the plugin's end of either Handler stream.
type sender interface {
	Send(*pluginpb.Response) error
}

func newResponseWriter(stream sender) *responseWriter {
	return &responseWriter{stream: stream, header: make(http.Header)}
}

func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader follows net/http: a 1xx status is sent at once with the
// current header and may repeat; the first other status is final.
func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // as net/http does
	}
	if w.status != 0 || w.hijacked {
		return
	}
	head := &pluginpb.ResponseHead{Status: int32(code), Headers: wire.AppendHeaders(nil, w.header, isTrailerKey)}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.send(&pluginpb.Response{Head: head, Flush: true})
		return
	}
	w.status, w.head = code, head
	w.declared = declaredTrailers(w.header)
	w.noBody = code < 200 || code == http.StatusNoContent || code == http.StatusNotModified
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	n := 0
	for len(p) > 0 {
		// append grows the buffer only as far as the response needs:
		// most responses are far smaller than a chunk.
		k := min(len(p), wire.ChunkSize-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == wire.ChunkSize {
			if err := w.sendBuf(false); err != nil {
				return n, err
			}
		}
		n += k
	}
	return n, nil
}

// Flush sends the head and everything written so far, and has gw flush it
// to the client.
func (w *responseWriter) Flush() { w.FlushError() }

// FlushError is Flush returning the send error; http.ResponseController
// prefers it.
func (w *responseWriter) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.sendBuf(true)
}

func (w *responseWriter) sendBuf(flush bool) error {
	err := w.send(&pluginpb.Response{Head: w.head, Body: w.buf, Flush: flush})
	// Safe to reuse: Send has marshalled the message before it returns
	// (gw's plugins install no stats handlers that could keep it).
	w.buf = w.buf[:0]
	return err
}

func (w *responseWriter) send(m *pluginpb.Response) error {
	if w.err != nil {
		return w.err
	}
	if m.Head != nil && m.Head == w.head {
		w.head, w.headSent = nil, true
	}
	if err := w.stream.Send(m); err != nil {
		w.err = fmt.Errorf("send response: %w", err)
	}
	return w.err
}

// finish sends what is left once the handler has returned: the head if it
// is still here, the buffered body and the trailers.
func (w *responseWriter) finish() error {
	if w.hijacked {
		return w.err
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	t := w.trailers()
	if w.head == nil && len(w.buf) == 0 && len(t) == 0 {
		return w.err
	}
	return w.send(&pluginpb.Response{Head: w.head, Body: w.buf, Trailers: t})
}

// fail replaces whatever the handler set up with a plain error response.
// Only valid while the head has not been sent.
func (w *responseWriter) fail(code int) {
	w.header = make(http.Header)
	w.status, w.head, w.declared, w.noBody, w.buf = 0, nil, nil, false, w.buf[:0]
	w.header.Set("Content-Type", "text/plain; charset=utf-8")
	w.header.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, http.StatusText(code))
}

// trailers collects the trailer fields net/http would send: those announced
// in the "Trailer" header and those set under http.TrailerPrefix.
func (w *responseWriter) trailers() []*pluginpb.Header {
	var t http.Header
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			if t == nil {
				t = make(http.Header)
			}
			t[textproto.CanonicalMIMEHeaderKey(name)] = vv
		}
	}
	for _, k := range w.declared {
		if vv := w.header[k]; len(vv) > 0 {
			if t == nil {
				t = make(http.Header)
			}
			t[k] = vv
		}
	}
	if t == nil {
		return nil
	}
	return wire.AppendHeaders(nil, t, nil)
}

func isTrailerKey(k string) bool { return strings.HasPrefix(k, http.TrailerPrefix) }

// declaredTrailers lists the names in h's "Trailer" fields, leaving out the
// ones net/http refuses as trailers.
func declaredTrailers(h http.Header) []string {
	var out []string
	for _, v := range h["Trailer"] {
		for k := range strings.SplitSeq(v, ",") {
			k = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k))
			switch k {
			case "", "Transfer-Encoding", "Trailer", "Content-Length":
				continue
			}
			out = append(out, k)
		}
	}
	return out
}
