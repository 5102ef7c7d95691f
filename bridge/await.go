package bridge

import (
	"io"
	"syscall"
)

// awaiter writes a whole request to the runner from inside a wait for the
// runner's answer, so the answer is read only once it is there.
//
// Read first, as Go's poller does, and the read right after a request
// always finds nothing yet: one read(2) returning EAGAIN per request
// (perf stat), on a hypervisor where syscalls are most of gw's cost
// (docs/design/hop.md). Waiting first is only safe this way round:
// syscall.RawConn.Read clears the readiness it has seen before it calls
// the callback, so the write must happen inside the callback, after that
// reset; an answer then always brings a new edge. (Writing first and then
// waiting loses an answer that came in between: it hangs under load.)
// runners/php does the same on its FastCGI socket.
type awaiter struct {
	rraw, wraw syscall.RawConn
	awaitFn    func(uintptr) bool // bound once: no closure per request
	writeFn    func(uintptr) bool
	out        []byte
	sent       int
	werr       error
	first      bool
}

// newAwaiter returns nil when r or w has no descriptor (a net.Pipe in
// tests): the slot then writes and reads as before.
func newAwaiter(r io.Reader, w io.Writer) *awaiter {
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
	a := &awaiter{rraw: rraw, wraw: wraw}
	a.awaitFn, a.writeFn = a.await, a.write
	return a
}

// send writes b and returns once the runner's answer is readable (or the
// slot was closed). delivered is false when nothing of b reached the
// runner.
func (a *awaiter) send(b []byte, w io.Writer) (delivered bool, err error) {
	a.out, a.sent, a.werr, a.first = b, 0, nil, true
	rerr := a.rraw.Read(a.awaitFn)
	sent, werr := a.sent, a.werr
	a.out, a.werr = nil, nil
	if werr == syscall.EAGAIN {
		werr = nil // the pipe is full: the rest goes the ordinary way
	}
	if werr != nil {
		return sent > 0, werr
	}
	if sent < len(b) {
		if rerr != nil && sent == 0 {
			return false, rerr // closed before anything was written
		}
		_, err := w.Write(b[sent:])
		return true, err
	}
	return true, rerr
}

func (a *awaiter) await(uintptr) bool {
	if !a.first {
		return true // readable: the answer is there
	}
	a.first = false
	if err := a.wraw.Write(a.writeFn); err != nil {
		a.werr = err
		return true
	}
	return a.werr != nil || a.sent < len(a.out) // all sent: park until readable
}

func (a *awaiter) write(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), a.out)
		if err == syscall.EINTR {
			continue
		}
		a.sent, a.werr = max(n, 0), err
		return true // never wait here: a partial write is finished by send
	}
}
