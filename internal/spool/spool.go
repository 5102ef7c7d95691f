// Package spool buffers request bodies before they reach an app: in memory
// up to a limit, then in an unlinked temporary file, as nginx does with
// client_body_buffer_size and client_body_temp_path. A buffered body has a
// known length, can be sent in one go, and frees the client from the app:
// a slow upload waits in the gateway, not on a runner.
package spool

import (
	"bytes"
	"io"
	"os"
	"sync"
)

// Error is a failure of the spool itself (its directory, a full disk),
// not of the body's source.
type Error struct{ Err error }

func (e *Error) Error() string { return "spool: " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Spool fills bodies. It is safe for concurrent use.
type Spool struct {
	dir  string // private (0700) directory for body files; "" = os.TempDir
	mem  int    // bytes a body may keep in memory
	bufs sync.Pool
}

// New returns a spool that keeps bodies of up to mem bytes in (pooled)
// memory and writes larger ones to files in dir, which it creates 0700 if
// missing: nobody else may list or open an upload in flight.
func New(dir string, mem int) (*Spool, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, &Error{err}
		}
	}
	s := &Spool{dir: dir, mem: max(mem, 1)}
	s.bufs.New = func() any { b := make([]byte, s.mem); return &b }
	return s, nil
}

// Body is a filled body. Its Close does nothing: net/http and the runner
// protocols close request bodies when they are done, while the memory or
// file must live until the last reader is gone; Release frees it.
type Body interface {
	io.ReadCloser
	// Len is the body's size in bytes.
	Len() int64
	// Release gives back the memory or closes the file. Call it once,
	// after nothing reads the body any more.
	Release()
}

// Fill reads src to its end. size is its length when known (a
// Content-Length) or -1; a body known to be larger than the memory limit
// goes straight to a file. A read error is returned unwrapped, so the
// caller can tell a client that left from a malformed body.
func (s *Spool) Fill(src io.Reader, size int64) (Body, error) {
	buf := s.bufs.Get().(*[]byte)
	n := 0
	if size <= int64(s.mem) {
		var err error
		n, err = readUpTo(src, *buf)
		if err == nil && size >= 0 && int64(n) != size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			s.bufs.Put(buf)
			return nil, err
		}
		if n < len(*buf) || size == int64(n) {
			b := &memBody{s: s, buf: buf, n: n}
			b.Reset((*buf)[:n])
			return b, nil
		}
	}
	f, err := s.spill(src, *buf, n)
	s.bufs.Put(buf)
	if err == nil && size >= 0 && f.n != size {
		f.Release()
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// readUpTo fills b from src; n < len(b) means src ended. Unlike
// io.ReadFull it passes src's own errors on as they are (a client gone
// mid-body reads as io.ErrUnexpectedEOF from net/http).
func readUpTo(src io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := src.Read(b[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// spill writes head[:n] and the rest of src to a new file, using head as
// the copy buffer.
func (s *Spool) spill(src io.Reader, head []byte, n int) (*fileBody, error) {
	f, err := os.CreateTemp(s.dir, "body-")
	if err != nil {
		return nil, &Error{err}
	}
	// Unlinked at once: the file goes away when closed, also if gw dies.
	os.Remove(f.Name())
	total, err := copyTo(f, src, head, n)
	if err == nil {
		if _, serr := f.Seek(0, io.SeekStart); serr != nil {
			err = &Error{serr}
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileBody{f: f, n: total}, nil
}

// copyTo writes buf[:n], then src through buf, to f. A write error is an
// *Error (the disk, not the client).
func copyTo(f *os.File, src io.Reader, buf []byte, n int) (int64, error) {
	var total int64
	for done := false; ; {
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return total, &Error{err}
			}
			total += int64(n)
		}
		if done {
			return total, nil
		}
		var err error
		n, err = src.Read(buf)
		switch {
		case err == io.EOF:
			done = true
		case err != nil:
			return total, err
		}
	}
}

// memBody is a body that fit in memory. Bytes is all of it, for a runner
// protocol that sends a small body inline with the request head.
type memBody struct {
	bytes.Reader
	s   *Spool
	buf *[]byte
	n   int
}

func (b *memBody) Bytes() []byte { return (*b.buf)[:b.n] }
func (b *memBody) Len() int64    { return int64(b.n) }
func (b *memBody) Close() error  { return nil }
func (b *memBody) Release()      { b.s.bufs.Put(b.buf) }

// fileBody is a body in an unlinked file. It has no Bytes, so runner
// protocols stream it.
type fileBody struct {
	f *os.File
	n int64
}

func (b *fileBody) Read(p []byte) (int, error) { return b.f.Read(p) }
func (b *fileBody) Len() int64                 { return b.n }
func (b *fileBody) Close() error               { return nil }
func (b *fileBody) Release()                   { b.f.Close() }
