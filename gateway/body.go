package gateway

import (
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gwhq/gw/gateway/h1"
	"github.com/gwhq/gw/internal/bodypipe"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/spool"
)

// bodyPolicy is how one generation treats request bodies (limits:), after
// nginx: the body is read whole before the request queues for a runner
// (proxy_request_buffering), in memory up to client_body_buffer_size and in
// a temporary file beyond; client_body_timeout bounds the wait between two
// reads (408); after the answer, an unread body is discarded for a while
// (lingering_close) so that a client still sending it reads the answer
// instead of a connection reset.
type bodyPolicy struct {
	max       int64 // 413 beyond; 0 = unlimited
	mem       int64 // body_buffer_size: kept in memory
	spool     *spool.Spool
	pipes     *bodypipe.Pool // nil: no spliced bodies
	timeout   time.Duration  // between two reads
	lingerFor time.Duration  // lingering_time; 0 = no lingering
	lingerGap time.Duration  // lingering_timeout: between two reads while lingering
}

// newBodyPolicy makes the policy of lim, spooling large bodies in dir
// ("" = the system's temporary directory).
func newBodyPolicy(lim config.Limits, dir string) (bodyPolicy, error) {
	sp, err := spool.New(dir, int(lim.BodyBufferSize))
	if err != nil {
		return bodyPolicy{}, err
	}
	return bodyPolicy{
		max: int64(lim.MaxBody), mem: int64(lim.BodyBufferSize), spool: sp, timeout: lim.BodyTimeout,
		lingerFor: lim.LingeringTime, lingerGap: lim.LingeringTimeout,
	}, nil
}

// reqBody is the client's request body while the gateway handles it: it
// moves the read deadline ahead before every read and records whether the
// body was read to its end (nothing left to linger on).
type reqBody struct {
	orig         io.ReadCloser // net/http's body, what lingering drains
	src          io.Reader     // orig behind the max_body limit
	rc           *http.ResponseController
	timeout      time.Duration // 0 once the front end turned out to have no read deadlines
	http1        bool
	frontLingers bool // the front end lingers itself (h1; net/http does not)

	mu        sync.Mutex
	streaming bool // r.Body is this reader (request_buffering off)
	stopped   bool // a runner protocol stopped the reads (SetReadDeadline)
	eof       bool
}

// newReqBody wraps r's body, or returns nil when r has none. On HTTP/1.x
// it turns on full duplex: otherwise net/http, when the answer's head goes
// out before the body was read, reads up to 256 KiB of the body itself
// first, with no deadline; a client that waits for "100 Continue" then
// waits for ever, and nothing is sent (RFC 9110 §10.1.1 lets it wait).
// Lingering does that discarding, after the answer, bounded.
func newReqBody(w http.ResponseWriter, r *http.Request, p *bodyPolicy) *reqBody {
	if r.Body == nil || r.Body == http.NoBody || (r.ContentLength == 0 && len(r.TransferEncoding) == 0) {
		return nil
	}
	// h1 lingers itself, better than a handler can: after the handler
	// returns, with the write side half-closed so the answer ends.
	b := &reqBody{orig: r.Body, src: r.Body, rc: http.NewResponseController(w), timeout: p.timeout,
		http1: r.ProtoMajor == 1, frontLingers: h1.Lingers(r.Context())}
	if p.max > 0 {
		b.src = http.MaxBytesReader(w, r.Body, p.max)
	}
	if b.http1 {
		b.rc.EnableFullDuplex()
	}
	return b
}

func (b *reqBody) Read(p []byte) (int, error) {
	if b.timeout > 0 && b.setDeadline(time.Now().Add(b.timeout)) != nil {
		b.timeout = 0 // uwsgi, FastCGI: nginx in front bounds the body
	}
	n, err := b.src.Read(p)
	if err != nil {
		b.mu.Lock()
		b.eof = b.eof || err == io.EOF
		b.mu.Unlock()
		if b.timeout > 0 {
			// Read to its end, net/http reads the connection in the
			// background: an old deadline would cut the request off.
			b.setDeadline(time.Time{})
		}
	}
	return n, err
}

func (b *reqBody) Close() error { return nil } // net/http closes orig

// setDeadline moves the read deadline unless a runner protocol has stopped
// the reads: its deadline must win over the next per-read one.
func (b *reqBody) setDeadline(t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return nil
	}
	return b.rc.SetReadDeadline(t)
}

// stop is a runner protocol ending a body pump that is blocked on the
// client (http.ResponseController.SetReadDeadline on the handler's writer).
// A buffered body's pump never reads the client: nothing to stop.
func (b *reqBody) stop(t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.streaming {
		return nil
	}
	b.stopped = true
	return b.rc.SetReadDeadline(t)
}

// buffer reads the whole body into the spool and makes it r's body, with
// its length: a chunked body gets a Content-Length, which php-cgi needs and
// WSGI wants (PEP 3333). A small body of known length is read even when
// the app streams (streaming=true), so a slow client never holds a runner
// over a few KiB and the runner gets the request in one write.
func (b *reqBody) buffer(r *http.Request, p *bodyPolicy, streaming, pipe bool) (release func(), err error) {
	if pipe && r.ContentLength >= spliceMin && r.ContentLength <= p.mem && p.pipes != nil {
		if release, ok, err := b.splice(r, p); ok || err != nil {
			return release, err
		}
	}
	if streaming && (r.ContentLength < 0 || r.ContentLength > p.mem) {
		b.mu.Lock()
		b.streaming = true
		b.mu.Unlock()
		r.Body = b
		return func() {}, nil
	}
	body, err := p.spool.Fill(b, r.ContentLength)
	if err != nil {
		return func() {}, err
	}
	if r.ContentLength < 0 {
		r.ContentLength = body.Len()
		r.TransferEncoding = nil
		r.Header["Content-Length"] = []string{strconv.FormatInt(body.Len(), 10)}
	}
	r.Body = body
	return body.Release, nil
}

// spliceMin is the smallest body spliced: a splice costs two syscalls
// more than a copy, so small bodies are copied. 16 KiB is bridge's vecBody
// threshold carried over, not measured for splice (docs/design/hop.md,
// ninth round).
const spliceMin = 16 << 10

// splicer is a front end's body that can move itself into a pipe
// (gateway/h1 on plain TCP).
type splicer interface {
	SpliceTo(pre []byte, fd int, before func() error) ([]byte, int64, error)
}

// splice reads the whole body of r as buffer does, but into a pipe from
// p.pipes: the front end splices the socket into it, and a runner protocol
// that can splices it on (bridge), so the body never enters gw's memory.
// ok is false, with nothing read, when the front end or the pool cannot.
// A body that came in too many pieces for the pipe is finished in memory.
func (b *reqBody) splice(r *http.Request, p *bodyPolicy) (release func(), ok bool, err error) {
	sp, isSp := b.orig.(splicer)
	if !isSp {
		return nil, false, nil
	}
	pp := p.pipes.Get()
	if pp == nil {
		return nil, false, nil
	}
	if r.ContentLength > int64(pp.Cap()) {
		pp.Put(true)
		return nil, false, nil
	}
	pre, n, err := sp.SpliceTo(pp.Prefix(), pp.W(), b.moveDeadline)
	body := bodypipe.NewBody(pp, pre, n)
	switch {
	case err == nil:
		b.ended()
		r.Body = body
		return body.Release, true, nil
	case err == h1.ErrNoSplice:
		body.Release()
		return nil, false, nil
	case err == h1.ErrPipeFull:
		// The rest the ordinary way, behind what the pipe took.
		filled, err := p.spool.Fill(io.MultiReader(body, b), r.ContentLength)
		body.Release()
		if err != nil {
			return func() {}, true, err
		}
		r.Body = filled
		return filled.Release, true, nil
	}
	body.Release() // closes a pipe left holding bytes
	if b.timeout > 0 {
		b.setDeadline(time.Time{})
	}
	return func() {}, true, err
}

// moveDeadline is Read's deadline step, for a front end that reads the
// body itself (splice).
func (b *reqBody) moveDeadline() error {
	if b.timeout > 0 && b.setDeadline(time.Now().Add(b.timeout)) != nil {
		b.timeout = 0
	}
	return nil
}

// ended is Read's bookkeeping at the body's end, for splice.
func (b *reqBody) ended() {
	b.mu.Lock()
	b.eof = true
	b.mu.Unlock()
	if b.timeout > 0 {
		b.setDeadline(time.Time{})
	}
}

// linger discards what the client still sends of an unread body once the
// answer is out, so a client that writes its whole body before reading
// (Python's http.client, requests) reads the answer instead of a
// connection reset: nginx's lingering_close, bounded by lingering_time in
// all, lingering_timeout between two reads and max_body in bytes. At the
// end of the body the connection stays open; otherwise net/http closes it.
// HTTP/2 needs none of this: the stream is reset, not the connection. A
// chunked body whose reads were cut off by a runner protocol cannot be
// resumed (net/http's chunked reader keeps its error) and is not drained.
func (b *reqBody) linger(w http.ResponseWriter, p *bodyPolicy) {
	if b == nil || !b.http1 || b.frontLingers || p.lingerFor <= 0 {
		return
	}
	b.mu.Lock()
	done := b.eof
	b.mu.Unlock()
	if done || b.rc.SetReadDeadline(time.Time{}) != nil || http.NewResponseController(w).Flush() != nil {
		return // no deadlines: the front end has its own lingering
	}
	end := time.Now().Add(p.lingerFor)
	left := p.max
	if left <= 0 {
		left = math.MaxInt64
	}
	for left > 0 {
		dl := time.Now().Add(p.lingerGap)
		if dl.After(end) {
			dl = end
		}
		b.rc.SetReadDeadline(dl)
		n, err := io.CopyN(io.Discard, b.orig, min(left, 256<<10))
		left -= n
		if err == io.EOF {
			b.rc.SetReadDeadline(time.Time{})
			return
		}
		if err != nil || !time.Now().Before(end) {
			break
		}
	}
	// Given up: net/http's own discarding of the rest must not wait.
	b.rc.SetReadDeadline(time.Now())
}
