package h1

import (
	"bytes"
	"errors"
	"io"
)

// defaultBuf is the read buffer a connection starts with and returns to:
// a whole usual head, and a small body with it, in one read.
const defaultBuf = 4 << 10

var (
	errLineTooLong = errors.New("h1: line too long")
	errLineBareLF  = errors.New("h1: bare LF line ending")
)

// reader is a connection's read buffer. Unlike bufio.Reader it grows to
// hold a head of up to the limit in one piece (so the parser sees it
// whole) and shrinks back once the head has been used.
type reader struct {
	src  io.Reader
	buf  []byte
	r, w int
	err  error // the read error after the buffered bytes
}

func (b *reader) buffered() int { return b.w - b.r }

// fill reads once more into the buffer, growing it up to limit bytes.
func (b *reader) fill(limit int) error {
	if b.err != nil {
		return b.err
	}
	if b.r == b.w {
		b.r, b.w = 0, 0
	}
	if b.w == len(b.buf) {
		if b.r > 0 {
			b.w = copy(b.buf, b.buf[b.r:b.w])
			b.r = 0
		} else {
			if len(b.buf) >= limit {
				return errLineTooLong
			}
			nb := make([]byte, min(max(2*len(b.buf), defaultBuf), limit))
			b.w = copy(nb, b.buf[b.r:b.w])
			b.buf, b.r = nb, 0
		}
	}
	n, err := b.src.Read(b.buf[b.w:])
	b.w += n
	if err != nil {
		b.err = err
		if n == 0 {
			return err
		}
	}
	return nil
}

// shrink drops a buffer grown past the default once it holds nothing.
func (b *reader) shrink() {
	if len(b.buf) > defaultBuf && b.r == b.w {
		b.buf, b.r, b.w = make([]byte, defaultBuf), 0, 0
	}
}

// Read serves buffered bytes first; a read as large as the buffer goes to
// the source directly, as bufio.Reader's does.
func (b *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			return 0, b.err
		}
		if len(p) >= len(b.buf) {
			n, err := b.src.Read(p)
			if err != nil {
				b.err = err
			}
			return n, err
		}
		if err := b.fill(len(b.buf)); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// readLine returns the next CRLF-terminated line without its CRLF; it is
// valid until the next read. A line longer than max is errLineTooLong, a
// bare LF errLineBareLF, and EOF inside a line io.ErrUnexpectedEOF.
func (b *reader) readLine(max int) ([]byte, error) {
	from := b.r
	for {
		if i := bytes.IndexByte(b.buf[from:b.w], '\n'); i >= 0 {
			i += from
			if i == b.r || b.buf[i-1] != '\r' {
				return nil, errLineBareLF
			}
			line := b.buf[b.r : i-1]
			b.r = i + 1
			return line, nil
		}
		if b.w-b.r >= max+2 {
			return nil, errLineTooLong
		}
		from = b.w - b.r // relative: fill may move the bytes
		if err := b.fill(max + 2); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		from += b.r
	}
}

// bufferedLine is readLine without reading: ok is false when no whole
// line is buffered yet.
func (b *reader) bufferedLine() (line []byte, ok bool, err error) {
	i := bytes.IndexByte(b.buf[b.r:b.w], '\n')
	if i < 0 {
		return nil, false, nil
	}
	line, err = b.readLine(i)
	return line, err == nil, err
}
