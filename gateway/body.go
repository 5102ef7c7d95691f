package gateway

import (
	"bytes"
	"io"
	"net/http"
	"sync"
)

// smallBody is the largest request body (with a Content-Length) the
// gateway reads whole before the request queues for a runner. The runner
// then gets head, body and end in one write, no pump goroutine runs, and a
// slow upload never holds a runner: nginx buffers bodies the same way
// (client_body_buffer_size). Larger and chunked bodies stream.
const smallBody = 64 << 10

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, smallBody); return &b }}

// bufferedBody is a request body already in memory. Bytes is the whole
// body, for a runner that sends it inline before anything reads it.
type bufferedBody struct {
	bytes.Reader
	b []byte
}

func (b *bufferedBody) Bytes() []byte { return b.b }
func (b *bufferedBody) Close() error  { return nil }

// bufferBody reads r's body into memory when it is small and of known
// length. release returns the buffer once nothing reads the body any more
// (every worker kind waits for its body pump before Serve returns).
func bufferBody(r *http.Request) (release func(), err error) {
	n := r.ContentLength
	if n <= 0 || n > smallBody || r.Body == nil || r.Body == http.NoBody {
		return func() {}, nil
	}
	buf := bodyBufs.Get().(*[]byte)
	if _, err := io.ReadFull(r.Body, (*buf)[:n]); err != nil {
		bodyBufs.Put(buf)
		return func() {}, err
	}
	bb := &bufferedBody{b: (*buf)[:n]}
	bb.Reset(bb.b)
	r.Body = bb
	return func() { bodyBufs.Put(buf) }, nil
}
