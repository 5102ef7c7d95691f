package h1

import (
	"io"
	"net"
)

// wbuf is the part of bufio.Writer a response uses, with one difference:
// a write that does not fit goes out together with what is buffered in
// one writev(2), where bufio.Writer first sends a full buffer and then
// the rest. A 16 KiB answer (head and body) is then one syscall instead
// of two (docs/design/hop.md, "ASGI echo").
type wbuf struct {
	w   io.Writer
	buf []byte
	err error
	vec net.Buffers
	arr [2][]byte // vec's backing array: no allocation per writev
}

func newWbuf(size int) *wbuf { return &wbuf{buf: make([]byte, 0, size)} }

// Reset drops what is buffered and any error, and writes to w from now on.
func (b *wbuf) Reset(w io.Writer) { b.w, b.buf, b.err = w, b.buf[:0], nil }

func (b *wbuf) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(b.buf)+len(p) <= cap(b.buf) {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	if len(b.buf) == 0 {
		n, err := b.w.Write(p)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		b.err = err
		return n, err
	}
	held := int64(len(b.buf))
	b.arr = [2][]byte{b.buf, p}
	b.vec = b.arr[:]
	n, err := b.vec.WriteTo(b.w) // writev on a *net.TCPConn; else one write each
	b.arr = [2][]byte{}
	b.buf = b.buf[:0]
	if err == nil && n < held+int64(len(p)) {
		err = io.ErrShortWrite
	}
	b.err = err
	return int(max(n-held, 0)), err
}

func (b *wbuf) WriteString(s string) (int, error) {
	if len(b.buf)+len(s) <= cap(b.buf) && b.err == nil {
		b.buf = append(b.buf, s...)
		return len(s), nil
	}
	return b.Write([]byte(s))
}

// Flush writes what is buffered.
func (b *wbuf) Flush() error {
	if b.err != nil || len(b.buf) == 0 {
		return b.err
	}
	n, err := b.w.Write(b.buf)
	if err == nil && n < len(b.buf) {
		err = io.ErrShortWrite
	}
	b.buf = b.buf[:0]
	b.err = err
	return err
}
