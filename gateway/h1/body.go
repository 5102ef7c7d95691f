package h1

import (
	"io"
	"net/http"
	"sync/atomic"
)

// maxPostHandlerRead is how much of a body its handler left unread the
// server reads and drops to keep the connection: net/http's 256 KiB. Past
// that, the connection closes (lingering, see conn.linger).
const maxPostHandlerRead = 256 << 10

// body is a request body as its handler reads it. It belongs to the
// connection and is reused by the next request: a handler must be done
// with it when it returns (as with every part of the request; see Server).
type body struct {
	c       *conn
	n       int64 // bytes left of a Content-Length body
	chunked bool
	ch      chunked
	eof     bool
	left    atomic.Int64 // bytes left (-1: unknown, chunked), for the response writer
	closed  bool         // the handler closed it; reads fail as net/http's do
	err     error
}

func (b *body) reset(c *conn, fr framing) {
	*b = body{c: c, n: fr.length, chunked: fr.chunked}
	b.left.Store(fr.length)
	if fr.chunked {
		b.ch.reset(&c.r, c.srv.maxHeader())
	}
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.read(p)
}

func (b *body) read(p []byte) (int, error) {
	switch {
	case b.eof:
		return 0, io.EOF
	case b.err != nil:
		return 0, b.err
	}
	b.c.bodyReading(!b.chunked && int64(b.c.r.buffered()) >= b.n)
	var n int
	var err error
	if b.chunked {
		n, err = b.ch.Read(p)
	} else {
		if int64(len(p)) > b.n {
			p = p[:b.n]
		}
		n, err = b.c.r.Read(p)
		b.n -= int64(n)
		b.left.Store(b.n)
		switch {
		case b.n == 0:
			err = io.EOF // with the last bytes, as net/http's body does
		case err == io.EOF:
			err = io.ErrUnexpectedEOF
		}
	}
	switch {
	case err == io.EOF:
		b.eof = true
		b.left.Store(0)
		b.c.bodyDone()
	case err != nil:
		b.err = err
	}
	return n, err
}

// Close stops the handler's reads; what it left unread is the server's
// to drop after the handler returns.
func (b *body) Close() error {
	b.closed = true
	return nil
}

// unread reports whether some of the body was never read.
func (b *body) unread() bool { return b.c != nil && !b.eof }

// discard reads and drops up to limit bytes of what is left, reporting
// whether that reached the end of the body.
func (b *body) discard(limit int64) bool {
	if !b.chunked && b.n > limit {
		return false
	}
	var scratch [512]byte
	for range limit/int64(len(scratch)) + 1 {
		if _, err := b.read(scratch[:]); err != nil {
			return err == io.EOF
		}
	}
	return false
}
