package cgireq

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
)

// Head is how a response head is spelled.
type Head int

const (
	// CGIHead is "Status: 404 Not Found\r\n" + headers + "\r\n": a CGI
	// response (RFC 3875 §6.3.3), what nginx reads from FastCGI STDOUT.
	CGIHead Head = iota
	// HTTPHead is "HTTP/1.1 404 Not Found\r\n" + headers + "\r\n": what
	// nginx reads from a uwsgi upstream (protocols.md §1.3).
	HTTPHead
)

// Sink is where a response goes: a FastCGI STDOUT stream or a uwsgi
// connection. Flush pushes buffered bytes to the peer.
type Sink interface {
	io.Writer
	Flush() error
}

// preSize is how much body is held back before the head goes out, so a
// short response gets a Content-Length (as http.Server does with its
// 2 KiB chunking buffer) and a sniffed Content-Type.
const preSize = 4096

// excluded response headers are never sent: Status is ours to write, and
// the hop between gw and nginx has its own framing, so a handler's
// Transfer-Encoding or Connection would corrupt or confuse it.
var excluded = map[string]bool{
	"Status": true, "Transfer-Encoding": true, "Connection": true,
	"Keep-Alive": true, "Trailer": true,
}

// ResponseWriter is the http.ResponseWriter (and http.Flusher) the uwsgi and
// FastCGI servers hand to handlers. It never chunks: the body follows the
// head as is, and the server ends it with its own framing.
type ResponseWriter struct {
	sink    Sink
	head    Head
	isHEAD  bool
	header  http.Header
	status  int
	cl      int64 // declared Content-Length, -1 if none
	written int64 // body bytes the handler wrote
	pre     []byte
	sent    bool // head handed to sink
	err     error
}

// NewResponseWriter returns a ResponseWriter for r writing to s.
func NewResponseWriter(s Sink, r *http.Request, h Head) *ResponseWriter {
	return &ResponseWriter{sink: s, head: h, isHEAD: r.Method == http.MethodHead, header: http.Header{}, cl: -1}
}

// Header returns the header map to fill before WriteHeader.
func (w *ResponseWriter) Header() http.Header { return w.header }

// WriteHeader fixes the status. 1xx codes are dropped: neither CGI nor an
// nginx uwsgi upstream can carry an interim response.
func (w *ResponseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // as net/http
	}
	if w.status != 0 || code < 200 {
		return
	}
	w.status = code
	if v := w.header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.cl = n
		}
	}
}

// bodyAllowed is RFC 9110 §6.4.1: no body with 1xx, 204 or 304.
func (w *ResponseWriter) bodyAllowed() bool {
	return w.status >= 200 && w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

// Write writes body bytes, sending the head first if it has not gone yet.
func (w *ResponseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.isHEAD {
		return len(p), nil // http.Server discards HEAD bodies too
	}
	if !w.sent {
		if len(w.pre)+len(p) <= preSize {
			w.pre = append(w.pre, p...)
			return len(p), nil
		}
		if err := w.sendHead(); err != nil {
			return 0, err
		}
	}
	n, err := w.sink.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// sendHead writes the head and whatever body was held back.
func (w *ResponseWriter) sendHead() error {
	w.sent = true
	if _, ok := w.header["Content-Type"]; !ok && w.bodyAllowed() && len(w.pre) > 0 {
		w.header.Set("Content-Type", http.DetectContentType(w.pre))
	}
	text := http.StatusText(w.status)
	if text == "" {
		text = "status code " + strconv.Itoa(w.status)
	}
	var b strings.Builder
	if w.head == HTTPHead {
		fmt.Fprintf(&b, "HTTP/1.1 %03d %s\r\n", w.status, text)
	} else {
		fmt.Fprintf(&b, "Status: %03d %s\r\n", w.status, text)
	}
	// Header.WriteSubset drops invalid names and turns CR/LF in values
	// into spaces, so a handler cannot split the head.
	if err := w.header.WriteSubset(&b, w.exclude()); err != nil {
		return err
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(w.sink, b.String()); err != nil {
		w.err = err
		return err
	}
	if len(w.pre) > 0 {
		if _, err := w.sink.Write(w.pre); err != nil {
			w.err = err
			return err
		}
		w.pre = nil
	}
	return nil
}

// exclude is excluded plus any "Trailer:"-prefixed keys: trailers cannot
// travel over either protocol.
func (w *ResponseWriter) exclude() map[string]bool {
	ex := excluded
	for k := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			if len(ex) == len(excluded) {
				ex = maps.Clone(excluded)
			}
			ex[k] = true
		}
	}
	return ex
}

// Flush implements http.Flusher.
func (w *ResponseWriter) Flush() { _ = w.FlushError() }

// FlushError sends the head if needed and pushes everything buffered to
// the peer; http.ResponseController uses it.
func (w *ResponseWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	if !w.sent {
		if err := w.sendHead(); err != nil {
			return err
		}
	}
	if err := w.sink.Flush(); err != nil {
		w.err = err
		return err
	}
	return nil
}

// Close finishes the response once the handler has returned: a response
// that never left the buffer gets an exact Content-Length, then all is
// flushed. A body shorter than the Content-Length the handler declared is
// an error; the server must then cut the connection so the front end sees
// a truncated response instead of a complete one.
func (w *ResponseWriter) Close() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent && w.cl < 0 && w.bodyAllowed() && (!w.isHEAD || w.written > 0) {
		w.cl = w.written
		w.header.Set("Content-Length", strconv.FormatInt(w.cl, 10))
	}
	if err := w.FlushError(); err != nil {
		return err
	}
	if w.cl >= 0 && w.written < w.cl && w.bodyAllowed() && !w.isHEAD {
		return fmt.Errorf("handler wrote %d of the %d bytes its Content-Length declared", w.written, w.cl)
	}
	return nil
}

// Status is the status sent or to be sent (0 before WriteHeader or Write).
func (w *ResponseWriter) Status() int { return w.status }

// Written is the number of body bytes the handler wrote.
func (w *ResponseWriter) Written() int64 { return w.written }
