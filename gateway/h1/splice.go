package h1

import (
	"errors"
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// ErrNoSplice means a body cannot be spliced (chunked, already partly
// read, not a plain TCP connection); nothing of it was read.
var ErrNoSplice = errors.New("h1: body cannot be spliced")

// ErrPipeFull means the pipe took no more while the socket still had
// bytes (a body that came in many small pieces uses a pipe buffer each):
// what was spliced stays in the pipe, and the rest is read as usual.
var ErrPipeFull = errors.New("h1: pipe full")

// SpliceTo moves the rest of a Content-Length body into the pipe whose
// (non-blocking) write end is fd, without copying it through gw's memory:
// what the connection had already read past the head is appended to pre
// and returned, the rest is spliced from the socket. before runs before
// each wait for the client (the handler's body_timeout deadline). n is
// what went into the pipe. A read error ends the body as Read's would.
func (b *body) SpliceTo(pre []byte, fd int, before func() error) (prefix []byte, n int64, err error) {
	c := b.c
	tc, ok := c.rwc.(*net.TCPConn)
	if !ok || b.chunked || b.closed || b.eof || b.err != nil {
		return pre, 0, ErrNoSplice
	}
	if c.raw == nil {
		if c.raw, err = tc.SyscallConn(); err != nil {
			return pre, 0, ErrNoSplice
		}
	}
	c.bodyReading(int64(c.r.buffered()) >= b.n)
	if k := min(int64(c.r.buffered()), b.n); k > 0 {
		pre = append(pre, c.r.buf[c.r.r:c.r.r+int(k)]...)
		c.r.r += int(k)
		b.n -= k
	}
	for b.n > 0 && err == nil {
		if err = before(); err != nil {
			break
		}
		var k int64
		k, err = c.spliceOnce(fd, b.n)
		n += k
		b.n -= k
	}
	b.left.Store(b.n)
	switch {
	case err == nil:
		b.eof = true
		c.bodyDone()
	case err != ErrPipeFull:
		b.err = err
	}
	return pre, n, err
}

// spliceOnce waits for the socket and splices what it has, up to want
// bytes, into fd.
func (c *conn) spliceOnce(fd int, want int64) (n int64, err error) {
	retried := false
	rerr := c.raw.Read(func(sfd uintptr) bool {
		for {
			n, err = unix.Splice(int(sfd), nil, fd, nil, int(want), unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				// The socket is empty, or the pipe is full: only the
				// first is worth a wait. Bytes that came in between
				// the splice and the look get one more splice.
				if q, qerr := unix.IoctlGetInt(int(sfd), unix.SIOCINQ); qerr == nil && q > 0 {
					if !retried {
						retried = true
						continue
					}
					err = ErrPipeFull
					return true
				}
				retried = false
				return false
			case err == nil && n == 0:
				err = io.ErrUnexpectedEOF
			}
			return true
		}
	})
	if rerr != nil {
		// The poller's own error (a deadline, a closed connection), as
		// a read would give it.
		err = &net.OpError{Op: "read", Net: "tcp", Source: c.rwc.LocalAddr(), Addr: c.rwc.RemoteAddr(), Err: rerr}
	} else if err != nil && err != ErrPipeFull && err != io.ErrUnexpectedEOF {
		err = &net.OpError{Op: "read", Net: "tcp", Source: c.rwc.LocalAddr(), Addr: c.rwc.RemoteAddr(), Err: err}
	}
	return max(n, 0), err
}
