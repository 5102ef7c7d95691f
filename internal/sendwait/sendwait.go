// Package sendwait writes a request to a runner from inside the wait for
// its answer, so the answer is read only once it is there.
//
// Go's poller reads first and waits on EAGAIN; right after a request the
// runner cannot have answered, so that first read is always an EAGAIN:
// one read(2) per request for nothing, on a hypervisor where syscalls are
// most of gw's cost (docs/design/hop.md). Waiting first is only safe this
// way round: syscall.RawConn.Read clears the readiness it has seen before
// it calls its callback, so the write must happen inside the callback,
// after that reset; an answer then always brings a new edge. Writing first
// and waiting after loses an answer that came in between, and hangs under
// load. The bridge slots (two pipes) and php-cgi's FastCGI socket (one
// descriptor both ways) use it.
package sendwait

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Sender sends on one connection, one request at a time.
type Sender struct {
	rraw, wraw syscall.RawConn
	awaitFn    func(uintptr) bool // bound once: no closure per request
	writeFn    func(uintptr) bool
	out        []byte
	vec        [][]byte // SendV's buffers, instead of out
	// OnSent, if set, runs once the whole request is written, before the
	// wait for the answer: a caller with more to write (the bridge's
	// CLIENT_GONE) learns there when it may.
	OnSent func()
	sent   int
	werr   error
	first  bool
}

// New returns a Sender that writes to w and waits on r (they may be the
// same socket), or nil when either has no descriptor (a net.Pipe in
// tests): the caller then writes and reads as usual.
func New(r, w any) *Sender {
	rc, ok1 := r.(syscall.Conn)
	wc, ok2 := w.(syscall.Conn)
	if !ok1 || !ok2 {
		return nil
	}
	rraw, err1 := rc.SyscallConn()
	wraw, err2 := wc.SyscallConn()
	if err1 != nil || err2 != nil {
		return nil
	}
	s := &Sender{rraw: rraw, wraw: wraw}
	s.awaitFn, s.writeFn = s.await, s.write
	return s
}

// Send writes what of b the descriptor takes at once and, if that was all
// of it, returns once the answer is readable (or r was closed). n is how
// much was written: the caller writes the rest of b the ordinary way. err
// is a failed write, or a wait that ended without the answer (a Close).
func (s *Sender) Send(b []byte) (n int, err error) {
	s.out = b
	n, err = s.send(len(b))
	s.out = nil
	return n, err
}

// SendV is Send for a request in several buffers (a head, a big body and
// its end), written with one writev(2) instead of being copied into one
// buffer first. n counts bytes across bufs.
func (s *Sender) SendV(bufs [][]byte) (n int, err error) {
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	s.vec = bufs
	n, err = s.send(total)
	s.vec = nil
	return n, err
}

// send writes s.out or s.vec (total bytes) and waits, for Send and SendV.
func (s *Sender) send(total int) (n int, err error) {
	s.sent, s.werr, s.first = 0, nil, true
	rerr := s.rraw.Read(s.awaitFn)
	n, err = s.sent, s.werr
	s.werr = nil
	switch {
	case err == syscall.EAGAIN:
		return n, nil // full: the rest goes the ordinary way
	case err != nil:
		return n, err
	case n < total && n > 0:
		return n, nil
	}
	return n, rerr
}

func (s *Sender) await(uintptr) bool {
	if !s.first {
		return true // readable: the answer is there
	}
	s.first = false
	if err := s.wraw.Write(s.writeFn); err != nil {
		s.werr = err
		return true
	}
	want := len(s.out)
	for _, b := range s.vec {
		want += len(b)
	}
	if s.werr != nil || s.sent < want {
		return true
	}
	if s.OnSent != nil {
		s.OnSent()
	}
	return false // all sent: park until readable
}

func (s *Sender) write(fd uintptr) bool {
	for {
		var n int
		var err error
		if s.vec != nil {
			n, err = unix.Writev(int(fd), s.vec)
		} else {
			n, err = syscall.Write(int(fd), s.out)
		}
		if err == syscall.EINTR {
			continue
		}
		s.sent, s.werr = max(n, 0), err
		return true // never wait here: the caller finishes a partial write
	}
}
