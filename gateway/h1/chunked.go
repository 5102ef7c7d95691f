package h1

import (
	"errors"
	"io"
)

// Limits of the chunked decoder, net/http's: a chunk-size line (with its
// extensions) of at most 4 KiB, and at most 16 KiB of framing beyond what
// the data justifies (Go's fix for the chunk-extension DoS, CVE-2023-39326).
const (
	maxChunkLine   = 4 << 10
	maxChunkExcess = 16 << 10
)

var (
	errChunkSize    = errors.New("h1: malformed chunk size")
	errChunkTooBig  = errors.New("h1: chunk size too large")
	errChunkCRLF    = errors.New("h1: chunk data not followed by CRLF")
	errChunkExcess  = errors.New("h1: chunked encoding contains too much non-data")
	errTrailer      = errors.New("h1: malformed trailer")
	errTrailerLarge = errors.New("h1: trailers too large")
)

// chunked decodes a chunked body (RFC 9112 §7.1) from src. Trailer fields
// are checked like header fields and dropped: gw's runners (CGI-style
// environments) have no place for them.
type chunked struct {
	src        *reader
	n          int64 // data bytes left in the current chunk
	needSize   bool  // next is a chunk-size line (after the CRLF if needCRLF)
	needCRLF   bool
	done       bool
	excess     int64
	maxTrailer int
}

func (c *chunked) reset(src *reader, maxTrailer int) {
	*c = chunked{src: src, needSize: true, maxTrailer: maxTrailer}
}

// Read returns body bytes, and io.EOF once the last chunk and the trailer
// section are read. When the rest of the framing is already buffered, the
// read that returns the last data returns io.EOF with it.
func (c *chunked) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	if c.n == 0 {
		if err := c.advance(true); err != nil {
			return 0, err
		}
		if c.done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	k, err := c.src.Read(p)
	c.n -= int64(k)
	if err == io.EOF {
		return k, io.ErrUnexpectedEOF
	}
	if err != nil {
		return k, err
	}
	if c.n == 0 {
		c.needCRLF = true
		if err := c.advance(false); err != nil {
			return k, err
		}
		if c.done {
			return k, io.EOF
		}
	}
	return k, nil
}

// advance reads framing up to the next data byte or the end. Unless
// block, it stops instead of reading from the connection.
func (c *chunked) advance(block bool) error {
	for c.n == 0 && !c.done {
		line, ok, err := c.line(block)
		if err != nil || !ok {
			return err
		}
		if c.needCRLF {
			if len(line) != 0 {
				return errChunkCRLF
			}
			c.needCRLF = false
			continue
		}
		if c.n, err = chunkSize(line); err != nil {
			return err
		}
		// The framing allowance: 16 bytes per chunk plus twice its data.
		c.excess += int64(len(line)) + 2 - 16 - 2*c.n
		c.excess = max(c.excess, 0)
		if c.excess > maxChunkExcess {
			return errChunkExcess
		}
		if c.n == 0 {
			if err := c.trailers(); err != nil {
				return err
			}
			c.done = true
		}
	}
	return nil
}

func (c *chunked) line(block bool) ([]byte, bool, error) {
	if !block {
		line, ok, err := c.src.bufferedLine()
		return line, ok, chunkErr(err)
	}
	line, err := c.src.readLine(maxChunkLine)
	return line, err == nil, chunkErr(err)
}

func chunkErr(err error) error {
	switch err {
	case errLineBareLF:
		return errChunkSize
	case errLineTooLong:
		return errChunkExcess
	}
	return err
}

// chunkSize parses chunk-size [ chunk-ext ] (RFC 9112 §7.1.1): 1-16 hex
// digits that fit an int64, then optional whitespace and extensions, which
// are ignored (control bytes but HTAB refused).
func chunkSize(line []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		d := unhex(line[i])
		if d < 0 {
			break
		}
		if i == 16 || n > (1<<59)-1 { // net/http's 16 digits; then int64
			return 0, errChunkTooBig
		}
		n = n<<4 | int64(d)
	}
	if i == 0 {
		return 0, errChunkSize
	}
	rest := line[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0] != ';' {
		return 0, errChunkSize
	}
	for _, b := range rest {
		if (b < ' ' && b != '\t') || b == 0x7f {
			return 0, errChunkSize
		}
	}
	return n, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// trailers reads the trailer section (RFC 9112 §7.1.2) within maxTrailer
// bytes, checking each field as a header field.
func (c *chunked) trailers() error {
	total := 0
	for {
		line, err := c.src.readLine(c.maxTrailer)
		switch {
		case err == errLineTooLong:
			return errTrailerLarge
		case err != nil:
			return chunkErr(err)
		case len(line) == 0:
			return nil
		}
		if total += len(line) + 2; total > c.maxTrailer {
			return errTrailerLarge
		}
		if _, err := parseField(line, 0); err != nil {
			return errTrailer
		}
	}
}
