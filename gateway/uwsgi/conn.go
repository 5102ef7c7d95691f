package uwsgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/gwhq/gw/gateway/cgireq"
	"github.com/gwhq/gw/gateway/connserve"
)

// Request modifiers (protocols.md §1.2). nginx sends 0 unless told
// otherwise; 5, 7, 9 and 14 are the same "vars + body" packet for other
// languages. Everything else is a uWSGI control channel (reload, eval,
// spooler, RPC, ...) that no socket peer may trigger.
func requestModifier(m1 uint8) bool {
	switch m1 {
	case 0, 5, 7, 9, 14:
		return true
	}
	return false
}

var modifierNames = map[uint8]string{
	6: "Lua WSAPI", 8: "JVM", 10: "management", 11: "gccgo", 15: "Mono",
	17: "spooler", 18: "symcall", 22: "raw code eval", 26: "fastfunc",
	30: "legacy WSGI", 72: "HTTP response", 97: "brutal reload",
	98: "graceful reload", 100: "ping", 101: "echo", 110: "signal",
	111: "cache", 173: "RPC", 200: "close mark", 224: "subscription",
	255: "generic response",
}

func modifierName(m1 uint8) string {
	if n, ok := modifierNames[m1]; ok {
		return n
	}
	return "not a request type"
}

// lingerTime bounds how long a closing connection keeps reading what nginx
// still sends (the rest of an unread body) after the response.
const lingerTime = time.Second

// errFrontEndGone is the cause of a request context cancelled because the
// front end closed the connection (nginx does when its client aborts).
var errFrontEndGone = errors.New("uwsgi: front end closed the connection")

type modifiersKey struct{}

// Modifiers returns the packet header's modifier1 and modifier2 for the
// request ctx belongs to. gw routes by its own configuration; at most it
// cross-checks these.
func Modifiers(ctx context.Context) (m1, m2 uint8, ok bool) {
	h, ok := ctx.Value(modifiersKey{}).(Header)
	return h.Modifier1, h.Modifier2, ok
}

// Params returns every variable of the request ctx belongs to, minus the
// UWSGI_* ones, which are dropped (see cgireq.Params).
func Params(ctx context.Context) map[string]string { return cgireq.Params(ctx) }

func (s *Server) serveConn(c *conn) {
	defer c.rwc.Close()
	log := s.log().With("remote", remoteAddr(c.rwc))
	// nginx opens a connection per request (no uwsgi keep-alive): pooled
	// buffers keep that from costing 36 KiB of garbage each time.
	br := readers.Get().(*bufio.Reader)
	br.Reset(c.rwc)
	defer func() { br.Reset(nil); readers.Put(br) }()
	c.rwc.SetReadDeadline(time.Now().Add(s.idleTimeout()))
	if _, err := br.Peek(1); err != nil {
		if !errors.Is(err, io.EOF) && !s.closing() {
			log.Debug("uwsgi: no request", "err", err)
		}
		return
	}
	if !c.state.Activate() {
		return // Shutdown closed it first
	}
	h, vars, ok := s.readPacket(c, br, log)
	if !ok {
		return
	}
	c.rwc.SetReadDeadline(time.Time{})
	s.serveRequest(c, br, h, vars, log)
}

// readPacket reads and checks the header and the vars block. On any
// refusal it logs why and reports false; the caller closes.
func (s *Server) readPacket(c *conn, br *bufio.Reader, log *slog.Logger) (Header, cgireq.Vars, bool) {
	var hb [HeaderLen]byte
	// ReadFull: the header may arrive split across reads (§1.6).
	if _, err := io.ReadFull(br, hb[:]); err != nil {
		log.Warn("uwsgi: packet header cut short, closing", "err", err)
		return Header{}, nil, false
	}
	h, _ := ParseHeader(hb[:])
	switch {
	case !requestModifier(h.Modifier1):
		log.Warn(fmt.Sprintf("uwsgi: refused modifier1 %d (%s), closing", h.Modifier1, modifierName(h.Modifier1)),
			"modifier2", h.Modifier2)
		return h, nil, false
	case h.DataSize == 0:
		log.Warn("uwsgi: empty vars block (datasize 0), closing")
		return h, nil, false
	case int(h.DataSize) > s.maxVars():
		log.Warn(fmt.Sprintf("uwsgi: vars block of %d bytes is over MaxVars (%d); answering 431", h.DataSize, s.maxVars()))
		// Read the block first: closing on unread bytes would reset the
		// connection and turn the answer into a bare 502.
		if _, err := br.Discard(int(h.DataSize)); err == nil {
			writeStatus(c.rwc, http.StatusRequestHeaderFieldsTooLarge)
		}
		return h, nil, false
	}
	block := make([]byte, h.DataSize)
	if _, err := io.ReadFull(br, block); err != nil {
		log.Warn("uwsgi: vars block cut short, closing", "size", h.DataSize, "err", err)
		return h, nil, false
	}
	vars := cgireq.Vars{}
	var ignored []string
	err := ParseVars(block, func(k, v []byte) error {
		if key := string(k); strings.HasPrefix(key, "UWSGI_") {
			// Trap 1: uWSGI 2.0 loads code named by these.
			ignored = append(ignored, key)
		} else {
			vars.Add(key, string(v))
		}
		return nil
	})
	if err != nil {
		log.Warn("uwsgi: malformed vars block, closing", "err", err)
		return h, nil, false
	}
	if len(ignored) > 0 {
		log.Warn(fmt.Sprintf("uwsgi: ignored %s (gw never loads code named by a client)", strings.Join(ignored, ", ")))
	}
	return h, vars, true
}

func (s *Server) serveRequest(c *conn, br *bufio.Reader, h Header, vars cgireq.Vars, log *slog.Logger) {
	n, err := vars.ContentLength()
	if err != nil {
		log.Warn("uwsgi: bad request", "err", err)
		writeStatus(c.rwc, http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithCancelCause(context.WithValue(context.Background(), modifiersKey{}, h))
	defer cancel(nil)
	// Watch for the front end going away once the body is in, as
	// http.Server's background read does.
	wt := &watcher{r: br, cancel: cancel}
	defer func() {
		c.rwc.Close() // ends the watch
		wt.wait()
	}()
	body := &counter{r: br, n: n}
	var stream io.Reader
	if n > 0 {
		// uwsgi has no framing of its own: without CONTENT_LENGTH there
		// is no body (§1.3; trap 3).
		stream, body.atEnd = body, wt.start
	} else {
		wt.start()
	}
	r, err := cgireq.Request(ctx, vars, stream)
	if err != nil {
		log.Warn("uwsgi: bad request", "err", err)
		writeStatus(c.rwc, http.StatusBadRequest)
		return
	}
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(c.rwc)
	defer func() { bw.Reset(nil); writers.Put(bw) }()
	w := cgireq.NewResponseWriter(bw, r, cgireq.HTTPHead)
	ok := serve(s.handler(), w, r, log)
	gone := context.Cause(ctx) == errFrontEndGone
	if gone {
		log.Info("uwsgi: front end closed (or half-closed) the connection mid-request", "method", r.Method, "path", r.URL.Path)
	}
	if !ok {
		return // http.ErrAbortHandler or a panic: cut the connection
	}
	// Answer even when the front end has gone: if it only half-closed,
	// the response still reaches it.
	if err := w.Close(); err != nil {
		if !gone {
			log.Warn("uwsgi: response incomplete, cutting the connection", "err", err)
		}
		return
	}
	// nginx reads a uwsgi response until EOF (§1.3): the half-close ends
	// it at once.
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	if body.read < n {
		// A lingering close: closing on unread body bytes would reset
		// the connection, and a reset can destroy the response before
		// nginx has read it. nginx closes its end once it has the
		// response, which ends the copy.
		wt.wait() // the watch must not start now
		c.rwc.SetReadDeadline(time.Now().Add(lingerTime))
		io.Copy(io.Discard, br)
	}
}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}
)

// serve runs the handler, turning a panic into a cut connection (false)
// as http.Server does; http.ErrAbortHandler is the quiet way to ask for it.
func serve(h http.Handler, w http.ResponseWriter, r *http.Request, log *slog.Logger) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v != http.ErrAbortHandler {
				log.Error("uwsgi: handler panicked", "panic", v, "stack", string(debug.Stack()))
			}
		}
	}()
	h.ServeHTTP(w, r)
	return true
}

// watcher reads past the body; any outcome (EOF, error, stray bytes) means
// the front end is done with this request, so it cancels the context.
//
// It starts only for a request still running watchAfter after its body
// was read: a goroutine and a read(2) that returns EAGAIN per request cost
// 9% of gw's CPU behind nginx uwsgi_pass (pprof, hello at 32
// connections), and what the signal is for (dropping a request queued for
// a runner, a 499 in the access log) only matters to slow requests.
type watcher struct {
	r       *bufio.Reader
	cancel  context.CancelCauseFunc
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
	done    chan struct{} // set once the watch runs; closed when it ends
}

// watchAfter: see connserve.WatchAfter.
const watchAfter = connserve.WatchAfter

func (w *watcher) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped && w.t == nil {
		w.t = time.AfterFunc(watchAfter, w.run)
	}
}

// run is the watch: it ends when serveRequest closes the connection,
// which then waits for it (wait).
func (w *watcher) run() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.done = make(chan struct{})
	w.mu.Unlock()
	defer close(w.done)
	w.r.ReadByte()
	w.cancel(errFrontEndGone)
}

// wait waits for a started watch to end, and stops one from starting.
func (w *watcher) wait() {
	w.mu.Lock()
	w.stopped = true
	if w.t != nil {
		w.t.Stop()
	}
	done := w.done
	w.mu.Unlock()
	if done != nil {
		<-done
	}
}

// counter counts body bytes read from the connection and calls atEnd once
// all n have been.
type counter struct {
	r     io.Reader
	n     int64
	read  int64
	atEnd func()
}

func (c *counter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.read += int64(k)
	if c.read == c.n && c.atEnd != nil {
		c.atEnd()
		c.atEnd = nil
	}
	return k, err
}

func remoteAddr(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// writeStatus answers with a bare status when no handler can.
func writeStatus(w io.Writer, code int) {
	text := http.StatusText(code)
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s\n",
		code, text, len(text)+1, text)
}
