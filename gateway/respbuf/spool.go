package respbuf

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"sync"
	"time"
)

// sendChunk bounds one write to the client, so SendTimeout, like nginx's
// send_timeout, measures the gap between two writes, not a whole answer.
const sendChunk = 32 << 10

var rings sync.Pool // *[]byte of some Options.Memory

// spool is the FIFO of bytes the app has written and the client has not yet
// taken: a memory ring, then a temp file. Every byte in the ring is older
// than every byte in the file, because the app writes to the ring only
// while the file is empty; so the client side drains the ring first.
type spool struct {
	w    http.ResponseWriter // the client side: only run writes to it
	opts *Options
	done chan struct{} // closed when run has returned

	mu       sync.Mutex
	more     sync.Cond // run waits for data, a flush or the end
	room     sync.Cond // write waits for space
	ring     []byte
	rd, n    int // the ring's data: n bytes from rd, wrapping
	file     *os.File
	frd, fwr int64  // the file's data: [frd, fwr)
	rbuf     []byte // run's buffer for reading the file back
	noFile   bool   // memory only: TempMax is 0 or the file failed
	flushReq bool   // the app flushed; run flushes once it has caught up
	closed   bool   // the app is done
	err      error  // the client side failed: the answer is dropped
}

func newSpool(w http.ResponseWriter, o *Options) *spool {
	s := &spool{w: w, opts: o, done: make(chan struct{}), noFile: o.TempMax <= 0}
	s.more.L, s.room.L = &s.mu, &s.mu
	if bp, ok := rings.Get().(*[]byte); ok && len(*bp) == o.Memory {
		s.ring = *bp
	} else {
		s.ring = make([]byte, max(o.Memory, 1))
	}
	// Ended by finish (the app is done and everything is sent) or by a
	// failed write to the client.
	go s.run()
	return s
}

// write queues p, waiting only while both the ring and the file are full.
func (s *spool) write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	written := 0
	for len(p) > 0 {
		if s.err != nil {
			return written, s.err
		}
		var k int
		switch {
		case s.frd == s.fwr && s.n < len(s.ring):
			k = s.toRing(p)
		case !s.noFile && s.fwr < s.opts.TempMax:
			k = s.toFile(p)
		default:
			s.room.Wait()
			continue
		}
		p, written = p[k:], written+k
		s.more.Signal()
	}
	return written, nil
}

// toRing copies what fits of p into the ring's first free stretch.
func (s *spool) toRing(p []byte) int {
	end := (s.rd + s.n) % len(s.ring)
	lim := len(s.ring)
	if end < s.rd || (end == s.rd && s.n > 0) {
		lim = s.rd
	}
	k := copy(s.ring[end:lim], p)
	s.n += k
	return k
}

// toFile appends what fits of p to the temp file, opening it first.
func (s *spool) toFile(p []byte) int {
	if s.file == nil {
		if err := s.openFile(); err != nil {
			s.fileFailed(err)
			return 0
		}
	}
	k := int(min(int64(len(p)), s.opts.TempMax-s.fwr))
	n, err := s.file.WriteAt(p[:k], s.fwr)
	s.fwr += int64(n)
	if err != nil {
		s.fileFailed(err)
	}
	return n
}

// openFile makes the temp file in the private directory and unlinks it at
// once: nobody else can open it, and it is gone with its last descriptor,
// even if gw is killed.
func (s *spool) openFile() error {
	if err := os.Mkdir(s.opts.Dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	f, err := os.CreateTemp(s.opts.Dir, "answer-")
	if err != nil {
		return err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return err
	}
	s.file, s.rbuf = f, make([]byte, sendChunk)
	return nil
}

// fileFailed keeps the rest of the answer in memory: slower for the app
// (it waits for the client), but the answer stays whole.
func (s *spool) fileFailed(err error) {
	s.noFile = true
	if s.opts.Log != nil {
		s.opts.Log.Warn("response buffering: temp file failed; buffering in memory only", "dir", s.opts.Dir, "err", err)
	}
}

// flush asks run to flush the client side once it has written everything
// the app wrote before.
func (s *spool) flush() {
	s.mu.Lock()
	s.flushReq = true
	s.more.Signal()
	s.mu.Unlock()
}

// finish tells run the answer is complete and waits until the client side
// has all of it or has failed.
func (s *spool) finish() {
	s.mu.Lock()
	s.closed = true
	s.more.Signal()
	s.mu.Unlock()
	<-s.done
}

// step is one thing run does next.
type step int

const (
	stepRing  step = iota // write the ring's next stretch
	stepFile              // read the file's next chunk back and write it
	stepFlush             // flush the client side
	stepEnd               // the answer is complete
)

// next waits for work: what to do, and for stepRing and stepFile the
// bytes (the ring's) or the offset and length (the file's).
func (s *spool) next() (step, []byte, int64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case s.n > 0:
			k := min(s.n, len(s.ring)-s.rd, sendChunk)
			return stepRing, s.ring[s.rd : s.rd+k], 0, k
		case s.frd < s.fwr:
			return stepFile, nil, s.frd, int(min(s.fwr-s.frd, int64(len(s.rbuf))))
		case s.flushReq:
			s.flushReq = false
			return stepFlush, nil, 0, 0
		case s.closed:
			return stepEnd, nil, 0, 0
		}
		s.more.Wait()
	}
}

// consume drops k sent bytes from the front of the ring or the file. An
// emptied file is truncated, so a long answer reuses its disk space.
func (s *spool) consume(st step, k int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == stepRing {
		s.rd, s.n = (s.rd+k)%len(s.ring), s.n-k
		if s.n == 0 {
			s.rd = 0
		}
	} else if s.frd += int64(k); s.frd == s.fwr {
		s.frd, s.fwr = 0, 0
		if err := s.file.Truncate(0); err != nil {
			s.fileFailed(err)
		}
	}
	s.room.Signal()
}

// fail records the client side's error: the app's later writes return it,
// and whatever is spooled is dropped.
func (s *spool) fail(err error) {
	s.mu.Lock()
	s.err, s.n, s.frd, s.fwr = err, 0, 0, 0
	s.room.Broadcast()
	s.mu.Unlock()
}

// run copies the spool to the client until the app is done and all is sent,
// or the client side fails.
func (s *spool) run() {
	defer s.release()
	c := sender{rc: http.NewResponseController(s.w), timeout: s.opts.SendTimeout}
	for {
		st, b, off, k := s.next()
		var err error
		switch st {
		case stepEnd:
			c.clear()
			return
		case stepFlush:
			if f, ok := s.w.(http.Flusher); ok {
				f.Flush()
			}
		case stepFile:
			var n int
			n, err = s.file.ReadAt(s.rbuf[:k], off)
			if err == nil || n == k {
				err = c.write(s.w, s.rbuf[:k])
			}
		case stepRing:
			err = c.write(s.w, b)
		}
		if err != nil {
			s.fail(err)
			return
		}
		if st == stepRing || st == stepFile {
			s.consume(st, k)
		}
	}
}

// release gives the ring back and closes the temp file, after run.
func (s *spool) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	ring := s.ring
	rings.Put(&ring)
	s.ring = nil
	close(s.done)
}

// sender writes to the client under the send timeout.
type sender struct {
	rc       *http.ResponseController
	timeout  time.Duration
	deadline bool // a write deadline is set and must be cleared at the end
}

func (c *sender) write(w http.ResponseWriter, b []byte) error {
	if c.timeout > 0 {
		if err := c.rc.SetWriteDeadline(time.Now().Add(c.timeout)); err == nil {
			c.deadline = true
		} else {
			c.timeout = 0 // the client side has no deadlines (http.ErrNotSupported)
		}
	}
	_, err := w.Write(b)
	return err
}

// clear lifts the deadline, so the next request on a kept-alive
// connection does not inherit it.
func (c *sender) clear() {
	if c.deadline {
		c.rc.SetWriteDeadline(time.Time{})
	}
}
