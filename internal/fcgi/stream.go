package fcgi

import (
	"errors"
	"io"
	"sync"
)

// bufs holds record buffers for any Size: a stream per request would
// otherwise allocate (and the GC sweep) up to 64 KiB each time.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, HeaderLen+MaxContent+7); return &b }}

// StreamWriter frames a byte stream (STDOUT, STDERR, STDIN, DATA) as records
// of one type and request ID. It buffers up to Size content bytes and hands
// each record to W in a single Write call, so writers of different streams
// sharing a connection only need to serialise W's Write to keep records
// whole.
type StreamWriter struct {
	W    io.Writer
	Type Type
	ID   uint16
	// Size is the content carried per record; 0 or anything over MaxContent
	// means MaxContent.
	Size int
	// Align pads each record to a multiple of 8 bytes (spec §3.3
	// recommends it; nginx does it; nobody requires it).
	Align bool

	buf []byte // header placeholder + pending content
	err error
}

var errClosed = errors.New("fcgi: write to closed stream")

func (s *StreamWriter) size() int {
	if s.Size <= 0 || s.Size > MaxContent {
		return MaxContent
	}
	return s.Size
}

// Write buffers p, sending a record each time Size bytes are pending.
func (s *StreamWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	size := s.size()
	s.init()
	n := 0
	for len(p) > 0 {
		room := size - (len(s.buf) - HeaderLen)
		c := min(room, len(p))
		s.buf = append(s.buf, p[:c]...)
		n += c
		p = p[c:]
		if c == room {
			if err := s.Flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (s *StreamWriter) init() {
	if s.buf == nil {
		s.buf = (*bufs.Get().(*[]byte))[:HeaderLen]
	}
}

// ReadFrom reads r straight into the record buffer (io.Copy would copy
// through a buffer of its own, allocated per call).
func (s *StreamWriter) ReadFrom(r io.Reader) (int64, error) {
	if s.err != nil {
		return 0, s.err
	}
	size := s.size()
	s.init()
	var total int64
	for {
		end := len(s.buf)
		n, err := r.Read(s.buf[end : HeaderLen+size])
		s.buf = s.buf[:end+n]
		total += int64(n)
		if len(s.buf)-HeaderLen == size {
			if ferr := s.Flush(); ferr != nil {
				return total, ferr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// WriteString is Write for a string.
func (s *StreamWriter) WriteString(str string) (int, error) {
	// Small strings (response heads) dominate; the copy is cheap.
	return s.Write([]byte(str))
}

// Flush sends the pending content as one record. With nothing pending it
// sends nothing: an empty record would end the stream.
func (s *StreamWriter) Flush() error {
	if s.err != nil {
		return s.err
	}
	n := len(s.buf) - HeaderLen
	if n <= 0 {
		return nil
	}
	var p uint8
	if s.Align {
		p = padding(n)
	}
	// Fill the placeholder in place: the header goes in front of content
	// that is already in the buffer, so the record costs one Write.
	Header{Version: Version, Type: s.Type, ID: s.ID, ContentLength: uint16(n), PaddingLength: p}.Append(s.buf[:0])
	s.buf = append(s.buf, zeros[:p]...)
	_, err := s.W.Write(s.buf)
	s.buf = s.buf[:HeaderLen]
	if err != nil {
		s.err = err
	}
	return err
}

// Close flushes and then writes the empty record that ends the stream
// (spec §3.3). Later writes fail.
func (s *StreamWriter) Close() error {
	if err := s.Flush(); err != nil {
		return err
	}
	var b [HeaderLen]byte
	Header{Version: Version, Type: s.Type, ID: s.ID}.Append(b[:0])
	_, err := s.W.Write(b[:])
	s.err = errClosed
	if err != nil {
		s.err = err
	}
	if s.buf != nil {
		b := s.buf[:0]
		bufs.Put(&b)
		s.buf = nil
	}
	return err
}

// Reset points s at a new stream, keeping its buffer (if not closed).
func (s *StreamWriter) Reset(w io.Writer, t Type, id uint16) {
	s.W, s.Type, s.ID, s.err = w, t, id, nil
	if s.buf != nil {
		s.buf = s.buf[:HeaderLen]
	}
}
