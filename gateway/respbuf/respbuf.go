// Package respbuf buffers the part of an answer the client cannot take
// yet, in memory and then in a temp file, so the runner that produced it is
// free as soon as the app is done, not when a slow client has read it all:
// nginx's proxy_buffering.
//
// An HTTP/1 answer writes straight through to the client until it passes
// Direct bytes; small answers, the common case, cost no goroutine, copy or
// allocation. Past Direct the answer is spooled: the app's writes go to the
// spool at full speed and a goroutine owned by the Writer copies the spool
// to the client. Finish waits for that goroutine, so the handler returns
// only once the client side is done, as net/http requires.
package respbuf

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Direct is how much of an HTTP/1 answer is written straight through
// before the rest is spooled: what the connection takes without the client
// reading. Linux starts a TCP connection with a 16 KiB send buffer
// (tcp_wmem) and the client's 128 KiB receive buffer (tcp_rmem, about half
// of it window), so 32 KiB never waits on a fresh connection. HTTP/2 gets
// no such allowance: its streams share one connection window that the
// client may leave at 64 KiB or let run dry (RFC 9113 §6.9), and Go's
// HTTP/2 handler writes wait for it, so there every answer is spooled.
const Direct = 32 << 10

// Options bound the buffering of one answer. A nil *Options turns it off.
type Options struct {
	// Memory is the spool's memory per answer (limits.response_buffer).
	Memory int
	// TempMax bounds the temp file per answer; 0 keeps the spool in
	// memory (nginx proxy_max_temp_file_size). Past it the app's writes
	// wait for the client: back-pressure, never unbounded growth.
	TempMax int64
	// Dir holds the temp files; it is made 0700 on first use, and every
	// file is unlinked as soon as it is created.
	Dir string
	// SendTimeout ends an answer whose client takes nothing for this long
	// (nginx send_timeout, between two writes; 0 = never).
	SendTimeout time.Duration
	// Log hears of a temp file that could not be used (nil: silence).
	Log *slog.Logger
}

// accelBuffering is nginx's per-answer switch: "X-Accel-Buffering: no"
// from the app turns buffering off for that answer, and nginx strips the
// header (ngx_http_upstream.c, ngx_http_upstream_process_buffering).
const accelBuffering = "X-Accel-Buffering"

// Writer is the http.ResponseWriter an app's answer is written to.
type Writer struct {
	http.ResponseWriter
	opts    *Options
	direct  int64 // Direct, or 0 for HTTP/2
	headed  bool  // the final head went to the client side
	through int64 // body bytes written straight through
	sp      *spool
}

var writers = sync.Pool{New: func() any { return new(Writer) }}

// New wraps w, the answer to r; o nil means straight through always. The
// caller must call Finish once the app is done, and not use the Writer
// after.
func New(w http.ResponseWriter, r *http.Request, o *Options) *Writer {
	bw := writers.Get().(*Writer)
	bw.ResponseWriter, bw.opts, bw.direct = w, o, Direct
	if r.ProtoMajor >= 2 {
		bw.direct = 0
	}
	return bw
}

// Finish waits until the client has the whole answer or is gone; only then
// may the caller write to the wrapped ResponseWriter again.
func (w *Writer) Finish() {
	if w.sp != nil {
		w.sp.finish()
	}
	*w = Writer{}
	writers.Put(w)
}

// WriteHeader sends the head; the app's X-Accel-Buffering is taken out of
// it and obeyed.
func (w *Writer) WriteHeader(code int) {
	if code >= http.StatusOK && !w.headed {
		w.headed = true
		h := w.ResponseWriter.Header()
		if v, ok := h[accelBuffering]; ok {
			if len(v) > 0 && strings.EqualFold(strings.TrimSpace(v[0]), "no") {
				w.opts = nil
			}
			delete(h, accelBuffering)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write sends p to the client, or to the spool once the answer is past
// Direct. After the client has gone it returns the error the client side
// got, as a synchronous write would have.
func (w *Writer) Write(p []byte) (int, error) {
	if !w.headed {
		w.WriteHeader(http.StatusOK)
	}
	if w.sp == nil {
		if w.opts == nil || w.through+int64(len(p)) <= w.direct {
			n, err := w.ResponseWriter.Write(p)
			w.through += int64(n)
			return n, err
		}
		w.sp = newSpool(w.ResponseWriter, w.opts)
	}
	return w.sp.write(p)
}

// ReadFrom keeps the client side's own ReadFrom (net/http's sendfile):
// its callers copy files (php's static files, via http.ServeContent), and
// a file has no runner to free, so spooling it would only copy it twice.
func (w *Writer) ReadFrom(src io.Reader) (int64, error) {
	if !w.headed {
		w.WriteHeader(http.StatusOK)
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok && w.sp == nil {
		n, err := rf.ReadFrom(src)
		w.through += n
		return n, err
	}
	return io.Copy(writerOnly{w}, src)
}

// writerOnly hides ReadFrom, so io.Copy does not come back to it.
type writerOnly struct{ io.Writer }

// Flush pushes what the app wrote so far to the client: at once, or, when
// spooling, as soon as the spool has written it.
func (w *Writer) Flush() {
	if w.sp != nil {
		w.sp.flush()
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
