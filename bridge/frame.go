// Package bridge is the Go side of the bridge protocol (proto/bridge.proto):
// frame codec, the hand-rolled fast paths for the per-request messages, and
// Exchange, which streams one HTTP request through a runner slot.
package bridge

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/gwhq/gw/proto/bridgepb"
)

// Protocol is the bridge protocol version carried in Ready.
const Protocol = 2

// HeaderSize is the size of a frame header.
const HeaderSize = 8

// MaxPayload bounds one frame's payload; a larger length means the stream is
// out of sync (or hostile), never a legitimate frame.
const MaxPayload = 16 << 20

// Type is the frame type byte.
type Type = bridgepb.FrameType

// Frame types, re-exported so callers need not import bridgepb for them.
const (
	RequestHead  = bridgepb.FrameType_REQUEST_HEAD
	RequestBody  = bridgepb.FrameType_REQUEST_BODY
	RequestEnd   = bridgepb.FrameType_REQUEST_END
	ResponseHead = bridgepb.FrameType_RESPONSE_HEAD
	ResponseBody = bridgepb.FrameType_RESPONSE_BODY
	ResponseEnd  = bridgepb.FrameType_RESPONSE_END
	Ready        = bridgepb.FrameType_READY
	LoadError    = bridgepb.FrameType_LOAD_ERROR
	Ping         = bridgepb.FrameType_PING
	Pong         = bridgepb.FrameType_PONG
	ReloadApp    = bridgepb.FrameType_RELOAD_APP
	CacheRequest = bridgepb.FrameType_CACHE_REQUEST
	CacheAnswer  = bridgepb.FrameType_CACHE_ANSWER
)

// ErrFrameTooLarge means a header announced more than MaxPayload bytes.
var ErrFrameTooLarge = errors.New("bridge: frame payload exceeds 16 MiB")

// PutHeader writes a frame header into b[:HeaderSize].
func PutHeader(b []byte, t Type, n int) {
	b[0] = byte(t)
	b[1] = 0
	b[2] = 0
	b[3] = 0
	binary.LittleEndian.PutUint32(b[4:8], uint32(n))
}

// AppendHeader appends a frame header to dst.
func AppendHeader(dst []byte, t Type, n int) []byte {
	var h [HeaderSize]byte
	PutHeader(h[:], t, n)
	return append(dst, h[:]...)
}

// AppendFrame appends a whole frame with the given raw payload.
func AppendFrame(dst []byte, t Type, payload []byte) []byte {
	return append(AppendHeader(dst, t, len(payload)), payload...)
}

// AppendMessage appends a frame whose payload is m's protobuf encoding.
func AppendMessage(dst []byte, t Type, m proto.Message) ([]byte, error) {
	start := len(dst)
	dst = AppendHeader(dst, t, 0)
	dst, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(dst, m)
	if err != nil {
		return nil, fmt.Errorf("bridge: encode %v: %w", t, err)
	}
	binary.LittleEndian.PutUint32(dst[start+4:start+8], uint32(len(dst)-start-HeaderSize))
	return dst, nil
}

// WriteMessage writes one message frame to w.
func WriteMessage(w io.Writer, t Type, m proto.Message) error {
	b, err := AppendMessage(nil, t, m)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Reader reads frames from a buffered stream, reusing one payload buffer.
type Reader struct {
	br  *bufio.Reader
	buf []byte
}

// NewReader reads frames from br.
func NewReader(br *bufio.Reader) *Reader { return &Reader{br: br} }

// Buffered reports how many bytes can be read without blocking.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Header reads the next frame header.
func (r *Reader) Header() (Type, int, error) {
	h, err := r.br.Peek(HeaderSize)
	if err != nil {
		if err == io.EOF && len(h) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	t := Type(h[0])
	n := binary.LittleEndian.Uint32(h[4:8])
	r.br.Discard(HeaderSize)
	if n > MaxPayload {
		return t, 0, ErrFrameTooLarge
	}
	return t, int(n), nil
}

// Payload reads n payload bytes. The slice is valid until the next call.
func (r *Reader) Payload(n int) ([]byte, error) {
	if cap(r.buf) < n {
		r.buf = make([]byte, n, max(n, 4096))
	}
	b := r.buf[:n]
	if _, err := io.ReadFull(r.br, b); err != nil {
		return nil, unexpected(err)
	}
	return b, nil
}

// CopyPayload copies n payload bytes to w without an intermediate buffer.
// A write error is returned as a *WriteError after the payload has still been
// consumed, so the stream stays in sync.
func (r *Reader) CopyPayload(w io.Writer, n int) error {
	for n > 0 {
		b, err := r.br.Peek(min(n, r.br.Size()))
		if len(b) == 0 {
			return unexpected(err)
		}
		r.br.Discard(len(b))
		n -= len(b)
		if w != nil {
			if _, werr := w.Write(b); werr != nil {
				if _, err := r.br.Discard(n); err != nil {
					return unexpected(err)
				}
				return &WriteError{Err: werr}
			}
		}
	}
	return nil
}

// Discard skips n payload bytes.
func (r *Reader) Discard(n int) error {
	_, err := r.br.Discard(n)
	return unexpected(err)
}

// Message reads a frame of type want and decodes it into m.
func (r *Reader) Message(want Type, m proto.Message) error {
	t, n, err := r.Header()
	if err != nil {
		return err
	}
	if t != want {
		return fmt.Errorf("bridge: got frame %v, want %v", t, want)
	}
	b, err := r.Payload(n)
	if err != nil {
		return err
	}
	return proto.Unmarshal(b, m)
}

// WriteError wraps an error from the destination of CopyPayload.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "write: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
