package bridge

import (
	"fmt"
	"net/http"
	"syscall"

	"golang.org/x/sys/unix"
)

// splicedBody is a request body the gateway holds in a pipe
// (internal/bodypipe): a prefix in memory, the rest spliced on to the slot
// from the pipe, so it never enters gw's memory.
type splicedBody interface {
	Prefix() []byte
	Piped() int64
	// SpliceTo moves up to max piped bytes into fd with one
	// non-blocking splice; unix.EAGAIN when fd is full.
	SpliceTo(fd int, max int) (int, error)
}

// exchangeSpliced is Exchange for a spliced body: the head, the prefix
// and the piped part's frame header in one writev, the piped part spliced
// behind it, then the end.
func (s *Slot) exchangeSpliced(w http.ResponseWriter, r *http.Request, head []byte, sb splicedBody) (res Result, err error) {
	var gone *goneNotice
	if s.NotifyGone {
		gone = s.watchGone(r.Context(), nil)
		defer gone.end()
	}
	if err := s.sendSpliced(head, sb, gone); err != nil {
		return res, err
	}
	return s.readResponse(w, r.Method, r, gone)
}

func (s *Slot) sendSpliced(head []byte, sb splicedBody, gone *goneNotice) error {
	pre := sb.Prefix()
	s.wbuf = append(s.wbuf[:0], head...)
	if len(pre) > 0 {
		s.wbuf = AppendHeader(s.wbuf, RequestBody, len(pre))
	}
	n := len(s.wbuf)
	chunk := int(min(sb.Piped(), bodyChunk))
	if chunk > 0 {
		s.wbuf = AppendHeader(s.wbuf, RequestBody, chunk)
	}
	s.vec = [3][]byte{s.wbuf[:n], pre, s.wbuf[n:]}
	sent, err := s.writevAll(s.vec[:])
	s.vec = [3][]byte{}
	if err != nil {
		// Nothing written: the body is still whole (pipe untouched), so
		// another runner may take the request.
		return sendResult(sent, err, nil)
	}
	for chunk > 0 {
		if err := s.spliceIn(sb, chunk); err != nil {
			return fmt.Errorf("%w: splice body: %w", ErrRunnerGone, err)
		}
		if chunk = int(min(sb.Piped(), bodyChunk)); chunk > 0 {
			s.vec[0] = AppendHeader(s.wbuf[:0], RequestBody, chunk)
			_, err := s.writevAll(s.vec[:1])
			s.vec = [3][]byte{}
			if err != nil {
				return fmt.Errorf("%w: write body: %w", ErrRunnerGone, err)
			}
		}
	}
	// REQUEST_END the ordinary way, not from inside the wait for the
	// answer (internal/sendwait): a runner may answer as soon as it has
	// the body (Perl's psgi.input stops at CONTENT_LENGTH), before the
	// end is written, and sendwait's wait would then miss that answer's
	// edge and hang. readResponse reads first and waits on EAGAIN.
	s.vec[0] = AppendRequestEnd(s.wbuf[:0], false, "")
	_, err = s.writevAll(s.vec[:1])
	s.vec = [3][]byte{}
	if err != nil {
		return fmt.Errorf("%w: write end: %w", ErrRunnerGone, err) // delivered in part: no retry
	}
	if gone != nil {
		gone.sent()
	}
	return nil
}

// writevAll writes bufs whole to the slot, waiting while its pipe is
// full; bufs is consumed. n counts what went out before an error.
func (s *Slot) writevAll(bufs [][]byte) (n int, err error) {
	err = s.pump(func(fd int) (bool, error) {
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
		if len(bufs) == 0 {
			return true, nil
		}
		k, e := unix.Writev(fd, bufs)
		if e != nil {
			return false, e
		}
		n += k
		for len(bufs) > 0 && k >= len(bufs[0]) {
			k -= len(bufs[0])
			bufs = bufs[1:]
		}
		if len(bufs) > 0 {
			bufs[0] = bufs[0][k:]
		}
		return len(bufs) == 0, nil
	})
	return n, err
}

// spliceIn moves chunk piped bytes of sb into the slot, waiting while
// its pipe is full.
func (s *Slot) spliceIn(sb splicedBody, chunk int) error {
	return s.pump(func(fd int) (bool, error) {
		if chunk <= 0 {
			return true, nil
		}
		k, e := sb.SpliceTo(fd, chunk)
		if e != nil {
			return false, e
		}
		chunk -= k
		return chunk <= 0, nil
	})
}

// pump calls step on the slot's request pipe until it is done, retrying
// EINTR and waiting on the poller while the pipe is full (EAGAIN).
func (s *Slot) pump(step func(fd int) (done bool, err error)) error {
	var serr error
	rerr := s.wraw.Write(func(fd uintptr) bool {
		for {
			done, e := step(int(fd))
			switch e {
			case nil:
				if done {
					return true
				}
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				serr = e
				return true
			}
		}
	})
	if serr != nil {
		return serr
	}
	return rerr
}
