package bridge

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gwhq/gw/internal/framing"
	"github.com/gwhq/gw/internal/sendwait"
)

// ErrRunnerGone means the runner's end of a slot closed or broke mid-request:
// it died, was killed, or desynced. The slot is unusable afterwards.
var ErrRunnerGone = errors.New("runner went away")

// ErrNotDelivered marks a failure to even write the request head: the
// runner was already gone, so nothing reached the app and another runner
// may take the request.
var ErrNotDelivered = errors.New("request not delivered")

// AppError is a failure the app reported in RESPONSE_END.
type AppError struct{ Msg string }

func (e *AppError) Error() string { return "app error: " + e.Msg }

// BodyError is a failure reading the client's request body (client gone,
// body limit hit). The runner saw REQUEST_END{aborted}.
type BodyError struct{ Err error }

func (e *BodyError) Error() string { return "request body: " + e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

// Result describes a finished exchange.
type Result struct {
	Status   int   // status sent to the client (0 if none)
	HeadSent bool  // the response head reached the ResponseWriter
	BytesOut int64 // response body bytes written
	// LogVars are the fields the app set for the access log (RESPONSE_END
	// logvars: name, value, ...); nil almost always.
	LogVars []string
}

// bodyChunk is the largest REQUEST_BODY frame the gateway sends.
const bodyChunk = 64 << 10

// unreadGrace is how long Exchange lets the body pump finish on its own after
// the response ended, before it interrupts a client that is slow to send a
// body the app never wanted.
const unreadGrace = 50 * time.Millisecond

var chunkPool = sync.Pool{New: func() any { b := make([]byte, HeaderSize+bodyChunk); return &b }}

// Slot is the gateway's end of one runner slot: a stream to the runner and
// one back (two pipes, or one socket as both). A slot carries one request at
// a time; it is not safe for concurrent use.
type Slot struct {
	r    io.ReadCloser  // the runner's frames
	w    io.WriteCloser // frames to the runner
	rd   *Reader
	wbuf []byte
	vec  [3][]byte        // sendv's buffers, kept here: no allocation per request
	body framing.Body     // the response being copied; here, not allocated per request
	aw   *sendwait.Sender // nil: write, then read (no descriptors)
	wraw syscall.RawConn  // w's, for spliced bodies (splice.go); nil without descriptors
	// NotifyGone: the runner acts on CLIENT_GONE (its READY said
	// client_gone), so each exchange watches for the client leaving. Set
	// before the slot's first exchange.
	NotifyGone bool
	gone       goneNotice // the watch, when NotifyGone
	// Scheme is passed to the app as the URL scheme when the request itself
	// has none.
}

// NewSlot wraps the gateway's ends of a slot: r reads the runner's frames,
// w writes frames to it. Both must unblock when closed (an *os.File on Go's
// poller, a net.Conn), so Close can end an exchange from another goroutine.
// r and w may be the same socket.
func NewSlot(r io.ReadCloser, w io.WriteCloser) *Slot {
	s := &Slot{r: r, w: w, rd: NewReader(bufio.NewReaderSize(r, 64<<10)), aw: sendwait.New(r, w)}
	if sc, ok := w.(syscall.Conn); ok && s.aw != nil {
		s.wraw, _ = sc.SyscallConn()
	}
	return s
}

// Close closes the slot; a runner thread blocked reading it sees EOF, one
// writing it EPIPE, and an exchange blocked on it here returns at once.
// The answer side closes first: a runner woken by EOF on its requests must
// find nobody reading, or its next write lands in the pipe and the runner
// takes a dead slot for a live one (TestCloseEndsPipeExchange, 2 in 30
// runs with the other order).
func (s *Slot) Close() error {
	rerr := s.r.Close()
	if any(s.r) == any(s.w) {
		return rerr
	}
	if err := s.w.Close(); err != nil {
		return err
	}
	return rerr
}

// Exchange streams one request through the slot and its response back to w.
// head must be a complete REQUEST_HEAD frame (BeginHead ... Finish); body may
// be nil for a request without one. Errors: ErrRunnerGone (wrapped),
// *AppError, *BodyError, or a protocol error; res tells whether the response
// head already went out, which decides between an error status and an abort.
func (s *Slot) Exchange(w http.ResponseWriter, r *http.Request, head []byte, body io.Reader) (res Result, err error) {
	if sb, ok := body.(splicedBody); ok && s.wraw != nil {
		return s.exchangeSpliced(w, r, head, sb)
	}
	var pump *bodyPump
	var gone *goneNotice
	inline, isInline := body.(inlineBody)
	if body == nil || isInline && len(inline.Bytes()) <= bodyChunk {
		if s.NotifyGone {
			gone = s.watchGone(r.Context(), nil) // before the send, which may wait for the answer
			defer gone.end()
		}
		// The whole request in one write (and, usually, one read for the
		// runner).
		s.wbuf = append(s.wbuf[:0], head...)
		var err error
		if b := inlineBytes(inline, body); len(b) >= vecBody && s.aw != nil {
			// A big body is written from where it is, beside the head
			// and the end (one writev), not copied behind the head.
			s.wbuf = AppendHeader(s.wbuf, RequestBody, len(b))
			n := len(s.wbuf)
			s.wbuf = AppendRequestEnd(s.wbuf, false, "")
			s.vec = [3][]byte{s.wbuf[:n], b, s.wbuf[n:]}
			err = s.sendv(gone)
		} else {
			if body != nil {
				s.wbuf = AppendFrame(s.wbuf, RequestBody, b)
			}
			s.wbuf = AppendRequestEnd(s.wbuf, false, "")
			err = s.send(s.wbuf, gone)
		}
		if err != nil {
			return res, err
		}
	} else {
		if _, err := s.w.Write(head); err != nil {
			return res, fmt.Errorf("%w: %w: write head: %w", ErrRunnerGone, ErrNotDelivered, err)
		}
		pump = startPump(s.w, body)
		if s.NotifyGone {
			gone = s.watchGone(r.Context(), pump.done) // the pump ends the request stream
			defer gone.end()
		}
	}
	res, err = s.readResponse(w, r.Method, r, gone)
	if pump != nil {
		perr := pump.finish(w)
		if err == nil || errors.As(err, new(*AppError)) {
			if perr != nil {
				err = perr
			}
		}
	}
	return res, err
}

// send writes a whole request and, where the slot has descriptors, returns
// once the answer is readable (internal/sendwait). gone, if not nil, hears
// when the request is out.
func (s *Slot) send(b []byte, gone *goneNotice) error {
	var n int
	var err error
	if s.aw != nil {
		if gone != nil {
			s.aw.OnSent = gone.sentFn
		}
		n, err = s.aw.Send(b)
		s.aw.OnSent = nil
	}
	if err == nil && n < len(b) {
		var k int
		k, err = s.w.Write(b[n:])
		n += k
	}
	return sendResult(n, err, gone)
}

// sendResult classifies a request's write: n bytes went out before err.
// gone, if not nil, hears that the whole request is out.
func sendResult(n int, err error, gone *goneNotice) error {
	switch {
	case err == nil:
		if gone != nil {
			gone.sent()
		}
		return nil
	case n == 0:
		return fmt.Errorf("%w: %w: write head: %w", ErrRunnerGone, ErrNotDelivered, err)
	}
	return fmt.Errorf("%w: %w", ErrRunnerGone, err)
}

// vecBody is the smallest inline body written with writev rather than
// copied into the request's buffer: below it the copy costs less than
// the iovecs.
const vecBody = 16 << 10

func inlineBytes(inline inlineBody, body io.Reader) []byte {
	if body == nil {
		return nil
	}
	return inline.Bytes()
}

// sendv is send for s.vec: head, body and end in one writev.
func (s *Slot) sendv(gone *goneNotice) error {
	if gone != nil {
		s.aw.OnSent = gone.sentFn
	}
	n, err := s.aw.SendV(s.vec[:])
	s.aw.OnSent = nil
	total := len(s.vec[0]) + len(s.vec[1]) + len(s.vec[2])
	if err == nil && n < total {
		var rest []byte // rare (a pipe that was not empty): the rest the ordinary way
		for _, b := range s.vec {
			k := min(n, len(b))
			n -= k
			rest = append(rest, b[k:]...)
		}
		var k int
		k, err = s.w.Write(rest)
		n = total - len(rest) + k
	}
	s.vec = [3][]byte{}
	return sendResult(n, err, gone)
}

// inlineBody is a request body already in memory (the gateway reads small
// ones whole before queueing); Bytes is all of it.
type inlineBody interface{ Bytes() []byte }

// readResponse copies the runner's answer to w. r, nil for a WebSocket
// refusal, decides whether early hints go to the client; gone, nil unless
// the runner takes CLIENT_GONE, hears of write errors.
func (s *Slot) readResponse(w http.ResponseWriter, method string, r *http.Request, gone *goneNotice) (res Result, err error) {
	flusher, _ := w.(http.Flusher)
	var (
		dst     io.Writer // s.body, until the client goes away
		refused error     // the app's head broke HTTP's rules: drain, then report
	)
	defer func() { s.body = framing.Body{} }() // holds w
	for {
		if res.HeadSent && s.rd.Buffered() == 0 && dst != nil && flusher != nil {
			// Nothing more is waiting from the runner: push what we
			// have to the client before blocking, so streamed
			// responses arrive as they are produced.
			flusher.Flush()
		}
		t, n, err := s.rd.Header()
		if err != nil {
			return res, fmt.Errorf("%w: %w", ErrRunnerGone, err)
		}
		switch t {
		case ResponseHead:
			if res.HeadSent || refused != nil {
				return res, fmt.Errorf("bridge: second RESPONSE_HEAD")
			}
			b, err := s.rd.Payload(n)
			if err != nil {
				return res, fmt.Errorf("%w: %w", ErrRunnerGone, err)
			}
			status, err := copyHead(w.Header(), b)
			if err != nil {
				return res, err
			}
			// WSGI, Rack and PSGI bodies are raw bytes: an app that
			// chunked its own is de-chunked (framing.Head).
			if s.body, refused = framing.Head(w, method, status, true); refused != nil {
				continue
			}
			w.WriteHeader(status)
			res.Status, res.HeadSent, dst = status, true, &s.body
		case ResponseBody:
			if !res.HeadSent && refused == nil {
				return res, fmt.Errorf("bridge: RESPONSE_BODY before RESPONSE_HEAD")
			}
			if err := s.rd.CopyPayload(dst, n); err != nil {
				var we *WriteError
				if !errors.As(err, &we) {
					return res, fmt.Errorf("%w: %w", ErrRunnerGone, err)
				}
				dst = nil // client gone: keep draining the runner
				if gone != nil {
					gone.fire()
				}
			} else if dst != nil {
				res.BytesOut += int64(n)
			}
		case EarlyHints:
			b, err := s.rd.Payload(n)
			if err != nil {
				return res, fmt.Errorf("%w: %w", ErrRunnerGone, err)
			}
			// One after the head is too late to be a hint: dropped, as
			// an app may call rack.early_hints from its body.
			if r != nil && !res.HeadSent && refused == nil {
				if err := writeHints(w, r, b); err != nil {
					return res, err
				}
			}
		case RawHijacked:
			// The app took the client's connection (raw.go): what it
			// writes goes there; the slot ends with RESPONSE_END.
			rh, ok := w.(RawHijacker)
			if !ok || res.HeadSent || refused != nil {
				return res, fmt.Errorf("bridge: unexpected RAW_HIJACKED")
			}
			if _, err := s.rd.Payload(n); err != nil {
				return res, fmt.Errorf("%w: %w", ErrRunnerGone, err)
			}
			res.Status, res.HeadSent = http.StatusSwitchingProtocols, true
			if err := rh.HijackRaw(); err != nil {
				return res, &AppError{Msg: "hijack: " + err.Error()}
			}
		case ResponseEnd:
			res.LogVars, err = s.end(n, res.HeadSent && dst != nil, refused)
			return res, err
		default:
			return res, fmt.Errorf("bridge: unexpected frame %v on a slot", t)
		}
	}
}

// end reads RESPONSE_END and says how the response ended: the app's own
// error first, then a head the gateway refused, then a body that broke its
// head's framing (checked only while the client is there to get it).
func (s *Slot) end(n int, client bool, refused error) ([]string, error) {
	b, err := s.rd.Payload(n)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRunnerGone, err)
	}
	msg, vars, err := DecodeResponseEnd(b)
	switch {
	case err != nil:
		return nil, err
	case msg != "":
		return vars, &AppError{Msg: msg}
	case refused != nil:
		return vars, &AppError{Msg: refused.Error()}
	case client:
		if err := s.body.Close(); err != nil {
			return vars, &AppError{Msg: err.Error()}
		}
	}
	return vars, nil
}

// hopHeaders are connection-specific (RFC 9110 §7.6.1) and never copied
// from an app's response: the front end owns the client connection.
// Transfer-Encoding is copied for framing.Head, which de-chunks a body the
// app chunked itself and removes the field.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Upgrade": true,
}

// commonHeaders are response header names apps send on most responses,
// spelled as apps usually spell them; looking them up with a []byte key
// does not allocate, where canonicalizing a new string would.
var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Content-Type", "Content-Length", "Cache-Control", "Set-Cookie",
		"Location", "Date", "Etag", "Last-Modified", "Expires", "Vary", "Server", "X-Powered-By"} {
		m[k] = k
		m[strings.ToLower(k)] = k // Rack 3 requires lower case
	}
	m["ETag"] = "Etag"
	return m
}()

func copyHead(h http.Header, b []byte) (int, error) {
	return DecodeResponseHead(b, func(name, value []byte) {
		k, ok := commonHeaders[string(name)]
		if !ok {
			k = textproto.CanonicalMIMEHeaderKey(string(name))
		}
		if hopHeaders[k] {
			return
		}
		h[k] = append(h[k], string(value))
	})
}

// bodyPump copies the client's request body to the runner as REQUEST_BODY
// frames on its own goroutine, so the runner can answer before it has read
// the body (and the gateway reads that answer meanwhile).
type bodyPump struct {
	stopping chan struct{}
	done     chan struct{}
	err      error // set before done closes
}

func startPump(c io.Writer, body io.Reader) *bodyPump {
	p := &bodyPump{stopping: make(chan struct{}), done: make(chan struct{})}
	// Stopped by the end of the body, a write error, or finish().
	go p.run(c, body)
	return p
}

func (p *bodyPump) run(c io.Writer, body io.Reader) {
	defer close(p.done)
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	for {
		select {
		case <-p.stopping:
			// The response is complete; the runner discards the
			// rest, so just end the stream.
			p.end(c, buf, true, "response already complete")
			return
		default:
		}
		n, err := body.Read(buf[HeaderSize:])
		if n > 0 {
			PutHeader(buf, RequestBody, n)
			if _, werr := c.Write(buf[:HeaderSize+n]); werr != nil {
				p.err = fmt.Errorf("%w: write body: %w", ErrRunnerGone, werr)
				return
			}
		}
		if err == io.EOF {
			p.end(c, buf, false, "")
			return
		}
		if err != nil {
			p.end(c, buf, true, err.Error())
			p.err = &BodyError{Err: err}
			return
		}
	}
}

func (p *bodyPump) end(c io.Writer, buf []byte, aborted bool, reason string) {
	if _, err := c.Write(AppendRequestEnd(buf[:0], aborted, reason)); err != nil && p.err == nil {
		p.err = fmt.Errorf("%w: write end: %w", ErrRunnerGone, err)
	}
}

// finish stops the pump once the response is complete and waits for it. A
// pump still blocked reading a slow client is interrupted with a read
// deadline, which makes net/http close that connection after the response.
func (p *bodyPump) finish(w http.ResponseWriter) error {
	close(p.stopping)
	select {
	case <-p.done: // the common case: the body was read; no timer
		return p.err
	default:
	}
	t := time.NewTimer(unreadGrace)
	select {
	case <-p.done:
		t.Stop()
		return p.err
	case <-t.C:
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now()) == nil {
		<-p.done
		return nil // the client body was unwanted: its error is not ours
	}
	<-p.done
	return p.err
}
