// Package bodypipe keeps a buffered request body in a kernel pipe instead
// of gw's memory: the client's socket is spliced into the pipe as the body
// arrives, and the pipe later into the runner's slot pipe, which moves page
// references instead of copying (docs/design/hop.md, "ninth round"). The
// pipes come from a bounded pool, so a request costs no pipe2(2).
package bodypipe

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Pool holds empty pipes. It is safe for concurrent use.
type Pool struct {
	mu   sync.Mutex
	free []*Pipe
	open int // pipes out of the pool and in it
	max  int
	size atomic.Int64 // F_SETPIPE_SZ asked of new pipes
}

// NewPool returns a pool of at most max pipes, each asked to hold size
// bytes (F_SETPIPE_SZ; a refusal, past pipe-user-pages-soft, leaves the
// kernel's default).
func NewPool(max, size int) *Pool {
	p := &Pool{max: max}
	p.size.Store(int64(size))
	return p
}

// SetSize changes the size asked of pipes made from now on; free pipes
// smaller than it are closed when next taken.
func (p *Pool) SetSize(size int) { p.size.Store(int64(size)) }

// Get returns an empty pipe, or nil when max are out or the system
// refuses one: the caller then buffers the body as before.
func (p *Pool) Get() *Pipe {
	size := int(p.size.Load())
	p.mu.Lock()
	for n := len(p.free); n > 0; n = len(p.free) {
		pp := p.free[n-1]
		p.free = p.free[:n-1]
		if pp.cap >= size || pp.asked == size {
			p.mu.Unlock()
			return pp
		}
		p.open-- // made for a smaller size: make a new one
		pp.closeFDs()
	}
	if p.open >= p.max {
		p.mu.Unlock()
		return nil
	}
	p.open++
	p.mu.Unlock()
	pp, err := newPipe(size)
	if err != nil {
		p.mu.Lock()
		p.open--
		p.mu.Unlock()
		return nil
	}
	pp.pool = p
	return pp
}

// Open is how many pipes exist, in the pool or out of it.
func (p *Pool) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}

// Close closes the free pipes; pipes still out are closed as they come
// back.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pp := range p.free {
		pp.closeFDs()
		p.open--
	}
	p.free, p.max = nil, 0
}

func (p *Pool) put(pp *Pipe, empty bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !empty || len(p.free) >= p.max {
		pp.closeFDs()
		p.open--
		return
	}
	p.free = append(p.free, pp)
}

// Pipe is a non-blocking pipe off Go's poller: gw holds both ends, and a
// body goes in only as far as the pipe holds it, so neither end waits.
type Pipe struct {
	r, w       int
	cap, asked int
	pool       *Pool
	pre        []byte // the prefix buffer of the pipe's bodies, kept
}

func newPipe(size int) (*Pipe, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	pp := &Pipe{r: fds[0], w: fds[1], asked: size}
	if size > 0 {
		unix.FcntlInt(uintptr(pp.w), unix.F_SETPIPE_SZ, size) // a refusal keeps the default
	}
	c, err := unix.FcntlInt(uintptr(pp.w), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		pp.closeFDs()
		return nil, err
	}
	pp.cap = c
	return pp, nil
}

func (pp *Pipe) closeFDs() {
	unix.Close(pp.r)
	unix.Close(pp.w)
}

// Prefix is an empty buffer for a body's prefix, reused from the pipe's
// last body.
func (pp *Pipe) Prefix() []byte { return pp.pre[:0] }

// W is the pipe's write end, for splicing into it.
func (pp *Pipe) W() int { return pp.w }

// Cap is the pipe's capacity in bytes, as the kernel set it. A pipe holds
// up to Cap/4096 buffers: a body that arrived in small pieces fills it
// before that many bytes.
func (pp *Pipe) Cap() int { return pp.cap }

// ErrShort means the pipe held less of the body than its count says: a
// bug, never a client's doing.
var ErrShort = errors.New("bodypipe: pipe holds less than its body")

// Body is a request body held as a prefix in memory (what the front end
// had read past the head) followed by n bytes in a pipe. A runner protocol
// that can splice takes the pipe's bytes with SpliceTo; any other reader
// reads them with Read, which copies.
type Body struct {
	pipe *Pipe
	pre  []byte
	off  int   // read position in pre
	n    int64 // bytes still in the pipe
}

// NewBody makes the body of pre followed by the n bytes in pp.
func NewBody(pp *Pipe, pre []byte, n int64) *Body {
	pp.pre = pre
	return &Body{pipe: pp, pre: pre, n: n}
}

// Len is the body's size: prefix and pipe.
func (b *Body) Len() int64 { return int64(len(b.pre)) + b.n }

// Prefix is the body's unread prefix.
func (b *Body) Prefix() []byte { return b.pre[b.off:] }

// Piped is how many bytes are still in the pipe.
func (b *Body) Piped() int64 { return b.n }

func (b *Body) Read(p []byte) (int, error) {
	if b.off < len(b.pre) {
		k := copy(p, b.pre[b.off:])
		b.off += k
		return k, nil
	}
	if b.n == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	for {
		k, err := unix.Read(b.pipe.r, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN || (err == nil && k == 0):
			return 0, ErrShort
		case err != nil:
			return 0, err
		}
		b.n -= int64(k)
		return k, nil
	}
}

// Close does nothing: the body lives until Release, as spool's do.
func (b *Body) Close() error { return nil }

// SpliceTo moves up to max of the pipe's bytes into fd with one
// non-blocking splice(2) (pipe to pipe: page references, no copy). It
// returns unix.EAGAIN when fd is full; the caller waits for fd.
func (b *Body) SpliceTo(fd int, max int) (int, error) {
	want := int(min(int64(max), b.n))
	for {
		k, err := unix.Splice(b.pipe.r, nil, fd, nil, want, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if k == 0 {
			return 0, ErrShort
		}
		b.n -= k
		return int(k), nil
	}
}

// Release gives the pipe back to its pool when it is empty, and closes it
// when a failed exchange left bytes in it. Call it once, after the last
// read.
func (b *Body) Release() {
	if b.pipe == nil {
		return
	}
	if b.pipe.pool != nil {
		b.pipe.pool.put(b.pipe, b.n == 0)
	} else {
		b.pipe.closeFDs()
	}
	b.pipe = nil
}

// Put gives back a pipe no body was made of: empty says nothing went in.
func (pp *Pipe) Put(empty bool) {
	if pp.pool != nil {
		pp.pool.put(pp, empty)
	} else {
		pp.closeFDs()
	}
}
