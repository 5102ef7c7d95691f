package h1

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// preSize is how much body a response holds back before its head goes
// out: a handler that finishes within it gets a Content-Length instead
// of chunked framing (net/http holds 2 KiB; gw's runners send bodies in
// chunks of up to a few KiB, so a little more keeps usual pages whole).
const preSize = 4 << 10

// out is a response's write buffers, pooled between requests so an idle
// keep-alive connection holds only its read buffer.
type out struct {
	bw  *wbuf
	pre []byte
}

var outs = sync.Pool{New: func() any {
	return &out{bw: newWbuf(2 * preSize), pre: make([]byte, 0, preSize)}
}}

// response is the http.ResponseWriter of one request; it also implements
// http.Flusher, io.ReaderFrom, http.Hijacker and the deadline and
// full-duplex methods http.ResponseController looks for. It belongs to the
// connection and is reused.
//
// gw passes apps' answers through, so unlike net/http it never sniffs a
// Content-Type: a body the app did not label stays unlabelled (guessing
// text/html from an upload is a stored-XSS risk).
type response struct {
	c          *conn
	req        *http.Request
	hdr        http.Header
	o          *out
	status     int
	minor      int
	isHead     bool
	wrote      bool  // WriteHeader (final) happened
	headOut    bool  // the head is in o.bw
	chunking   bool  // chunked framing on the wire
	keepAlive  bool  // the head did not say close
	declared   int64 // the handler's Content-Length, or -1
	written    int64 // body bytes the handler wrote
	trailers   []string
	err        error // the first write error
	fullDuplex bool
}

func (w *response) reset(c *conn, r *http.Request, fr framing) {
	clear(c.rhdr)
	*w = response{c: c, req: r, hdr: c.rhdr, minor: r.ProtoMinor, isHead: r.Method == "HEAD",
		keepAlive: fr.keepAlive, declared: -1, trailers: w.trailers[:0]}
	w.o = outs.Get().(*out)
	w.o.bw.Reset(c.rwc)
}

// release returns the buffers once the response is over.
func (w *response) release() {
	if w.o != nil {
		w.o.bw.Reset(nil)
		w.o.pre = w.o.pre[:0]
		outs.Put(w.o)
		w.o = nil
	}
}

func (w *response) Header() http.Header { return w.hdr }

// WriteHeader sends 1xx heads at once (RFC 9110 §15.2: not to 1.0
// clients) and records a final status for the head that goes out with
// the first body bytes beyond preSize, a Flush, or the handler's return.
func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // as net/http
	}
	if w.wrote || w.c.hijacked {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.wrote, w.status = true, code
	if cl := w.hdr["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.declared = n
		} else {
			delete(w.hdr, "Content-Length") // net/http drops it too
		}
	}
	for _, v := range w.hdr["Trailer"] {
		for t := range strings.SplitSeq(v, ",") {
			if t = http.CanonicalHeaderKey(strings.TrimSpace(t)); t != "" {
				w.trailers = append(w.trailers, t)
			}
		}
	}
}

func (w *response) informational(code int) {
	if code == http.StatusContinue && w.c.expected {
		w.c.contMu.Lock()
		w.c.expect = false // the handler sends it
		w.c.contMu.Unlock()
	}
	if w.minor == 0 {
		return
	}
	bw := w.o.bw
	bw.Write(statusLine(code))
	w.writeFields(false)
	bw.WriteString("\r\n")
	w.flushErr(bw.Flush())
}

func (w *response) bodyAllowed() bool {
	return w.status != http.StatusNoContent && w.status != http.StatusNotModified && w.status >= 200
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.c.hijacked:
		return 0, http.ErrHijacked
	case len(p) == 0:
		return 0, nil
	case !w.bodyAllowed():
		return 0, http.ErrBodyNotAllowed
	case w.declared >= 0 && w.written+int64(len(p)) > w.declared:
		return 0, http.ErrContentLength
	case w.err != nil:
		return 0, w.err
	}
	w.written += int64(len(p))
	if w.isHead {
		return len(p), nil
	}
	if !w.headOut {
		if len(w.o.pre)+len(p) <= cap(w.o.pre) {
			w.o.pre = append(w.o.pre, p...)
			return len(p), nil
		}
		w.writeHead(false)
		w.body(w.o.pre, p)
		w.o.pre = w.o.pre[:0]
	} else {
		w.body(p, nil)
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func (w *response) WriteString(s string) (int, error) {
	// Through Write: the pre buffer copies anyway, and bufio copies later.
	return w.Write([]byte(s))
}

// body writes a and b (either may be empty) as one piece of the body.
func (w *response) body(a, b []byte) {
	n := len(a) + len(b)
	if n == 0 || w.err != nil {
		return
	}
	bw := w.o.bw
	if w.chunking {
		bw.Write(strconv.AppendInt(w.c.scratch[:0], int64(n), 16))
		bw.WriteString("\r\n")
	}
	bw.Write(a)
	_, err := bw.Write(b)
	if w.chunking {
		_, err = bw.WriteString("\r\n")
	}
	w.flushErr(err)
}

func (w *response) flushErr(err error) {
	if err != nil && w.err == nil {
		w.err = err
		w.keepAlive = false
	}
}

func (w *response) Flush() { w.FlushError() }

// FlushError sends the head and whatever body is held back.
func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headOut {
		w.writeHead(false)
		w.body(w.o.pre, nil)
		w.o.pre = w.o.pre[:0]
	}
	w.flushErr(w.o.bw.Flush())
	return w.err
}

// finish completes the response after the handler returned: the head if
// it is still held back (now with a Content-Length), the last chunk and
// trailers, and one flush.
func (w *response) finish() error {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headOut {
		w.writeHead(true)
		w.body(w.o.pre, nil)
	}
	if w.chunking {
		bw := w.o.bw
		bw.WriteString("0\r\n")
		w.writeTrailers()
		bw.WriteString("\r\n")
	}
	if w.declared >= 0 && w.written != w.declared && !w.isHead && w.bodyAllowed() {
		w.keepAlive = false // short of its Content-Length: the client must not wait for more
	}
	w.flushErr(w.o.bw.Flush())
	return w.err
}

// abort sends what is already in the write buffer (never the held-back
// part) after a handler panicked; the connection closes, so the client
// sees the response cut short as net/http's do.
func (w *response) abort() {
	if w.headOut {
		w.o.bw.Flush()
	}
}

// ReadFrom sends src with sendfile(2) (through the connection's own
// ReadFrom) when no chunked framing is needed: a Content-Length the
// handler set, or a close-delimited HTTP/1.0 response. Otherwise it
// copies through Write.
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	rf, ok := w.c.rwc.(io.ReaderFrom)
	if ok && !w.headOut && w.declared >= 0 && !w.isHead && w.bodyAllowed() {
		w.FlushError()
	}
	if !ok || !w.headOut || w.chunking || w.isHead || !w.bodyAllowed() || w.err != nil {
		return copyBuffered(writerOnly{w}, src)
	}
	if err := w.FlushError(); err != nil {
		return 0, err
	}
	if w.declared >= 0 {
		src = limit(src, w.declared-w.written)
	}
	n, err := rf.ReadFrom(src)
	w.written += n
	w.flushErr(err)
	return n, err
}

// limit caps src at n bytes, keeping a *io.LimitedReader of an *os.File
// one level deep: the connection's ReadFrom uses sendfile only then.
func limit(src io.Reader, n int64) io.Reader {
	if lr, ok := src.(*io.LimitedReader); ok {
		return &io.LimitedReader{R: lr.R, N: min(lr.N, n)}
	}
	return &io.LimitedReader{R: src, N: n}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(dst, src, *buf)
}

// writerOnly hides ReadFrom so io.CopyBuffer cannot come back to it.
type writerOnly struct{ io.Writer }

// Hijack hands the connection over (for WebSockets): the server neither
// reads, writes nor closes it any more. Bytes the client sent past the
// head are in the returned reader. Deadlines the server set remain (as
// net/http's documentation warns): clear them.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c.watch.stop()
	if w.wrote {
		if err := w.FlushError(); err != nil {
			return nil, nil, err
		}
	}
	c.hijacked = true
	// A watch that had fired leaves its abort deadline (aLongTimeAgo) on
	// the connection, and idle deadlines are the server's: the new owner
	// starts with none, unless the handler set its own (a WebSocket
	// accepted after watchAfter otherwise read a timeout at once).
	c.rdlMu.Lock()
	if !c.handlerRDL {
		c.rwc.SetReadDeadline(time.Time{})
	}
	c.rdlMu.Unlock()
	rw := bufio.NewReadWriter(bufio.NewReader(&c.r), bufio.NewWriter(c.rwc))
	return c.rwc, rw, nil
}

// Handover readies the connection for a handler that passes its socket
// itself to another process (gw's raw connections, docs/design/websocket.md
// "Handover"): it stops the server's read watch for this request, so the
// server reads nothing more, and returns the socket when that is all the
// client sent: a plain TCP connection with nothing read past the head. On
// false the connection is served as before (the watch is not rearmed). The
// server still owns the connection until Hijack.
func (w *response) Handover() (*net.TCPConn, bool) {
	c := w.c
	tc, ok := c.rwc.(*net.TCPConn)
	if !ok || c.hijacked || w.wrote {
		return nil, false
	}
	c.watch.stop() // a watch that fired may have read a byte: checked next
	if c.r.buffered() > 0 || c.body.unread() {
		return nil, false
	}
	return tc, true
}

// SetReadDeadline is for http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.rdlMu.Lock()
	defer w.c.rdlMu.Unlock()
	w.c.handlerRDL = true
	return w.c.setReadDeadline(t)
}

// SetWriteDeadline is for http.ResponseController.
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex is for http.ResponseController. The server is always
// full duplex: it never reads the body behind the handler's back while
// the handler runs (net/http drops it at the first write unless told);
// what is left unread is dropped after the handler returns.
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}
