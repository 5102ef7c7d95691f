package fcgi

import (
	"encoding/binary"
	"fmt"
)

// Name-value pairs (spec §3.4) carry PARAMS, GET_VALUES and
// GET_VALUES_RESULT: nameLength, valueLength, name, value. A length under
// 128 takes one byte; otherwise four, big-endian, with the top bit set.

// maxLen is the largest length a 4-byte length field can hold.
const maxLen = 1<<31 - 1

func appendLen(dst []byte, n int) []byte {
	if n < 128 {
		return append(dst, byte(n))
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n)|1<<31)
}

func lenLen(n int) int {
	if n < 128 {
		return 1
	}
	return 4
}

// ParamLen is the encoded size of one name-value pair.
func ParamLen(name, value string) int {
	return lenLen(len(name)) + lenLen(len(value)) + len(name) + len(value)
}

// AppendParam appends one encoded name-value pair. Lengths over 2^31-1 are
// not representable; such a pair panics (no record could carry it anyway).
func AppendParam(dst []byte, name, value string) []byte {
	return appendParam(dst, name, value)
}

func appendParam[N ~string | ~[]byte](dst []byte, name N, value string) []byte {
	if len(name) > maxLen || len(value) > maxLen {
		panic("fcgi: name-value pair too long")
	}
	dst = appendLen(dst, len(name))
	dst = appendLen(dst, len(value))
	dst = append(dst, name...)
	return append(dst, value...)
}

// readLen decodes one length at b[off:]; n is 0 when b is too short.
func readLen(b []byte, off int) (length, n int) {
	if off >= len(b) {
		return 0, 0
	}
	if b[off]&0x80 == 0 {
		return int(b[off]), 1
	}
	if len(b)-off < 4 {
		return 0, 0
	}
	return int(binary.BigEndian.Uint32(b[off:]) &^ (1 << 31)), 4
}

// ParseParams calls fn for each name-value pair of a complete PARAMS (or
// GET_VALUES) stream. name and value alias b. A length that is cut off or
// runs past the end of b is an error; so is any error from fn, which stops
// the walk and is returned as is.
func ParseParams(b []byte, fn func(name, value []byte) error) error {
	for off := 0; off < len(b); {
		start := off
		nl, n := readLen(b, off)
		if n == 0 {
			return fmt.Errorf("fcgi: name length cut off at offset %d", start)
		}
		off += n
		vl, n := readLen(b, off)
		if n == 0 {
			return fmt.Errorf("fcgi: value length cut off at offset %d", start)
		}
		off += n
		if nl > len(b)-off || vl > len(b)-off-nl {
			return fmt.Errorf("fcgi: pair at offset %d (name %d, value %d bytes) overruns the %d-byte stream",
				start, nl, vl, len(b))
		}
		name := b[off : off+nl : off+nl]
		off += nl
		value := b[off : off+vl : off+vl]
		off += vl
		if err := fn(name, value); err != nil {
			return err
		}
	}
	return nil
}

// ParamsEncoder builds a whole PARAMS stream for the client direction
// (gw -> php-cgi). Every pair sits whole inside one record: php-cgi resets
// the connection on a pair split across two records although the spec
// allows it (trap 5), so a single pair longer than MaxContent is an error.
// The zero value is not ready; call Reset.
type ParamsEncoder struct {
	buf []byte
	id  uint16
	rec int // offset of the open record's header in buf, or -1
	err error
}

// Reset starts a stream for request id, appending to dst.
func (e *ParamsEncoder) Reset(dst []byte, id uint16) {
	*e = ParamsEncoder{buf: dst, id: id, rec: -1}
}

// Add appends one pair. The first error sticks and is returned by Finish.
func (e *ParamsEncoder) Add(name, value string) { addParam(e, name, value) }

// AddBytes is Add for a name built in a scratch buffer (cgi.AppendName):
// no string conversion, no allocation per header.
func (e *ParamsEncoder) AddBytes(name []byte, value string) { addParam(e, name, value) }

func addParam[N ~string | ~[]byte](e *ParamsEncoder, name N, value string) {
	if e.err != nil {
		return
	}
	n := lenLen(len(name)) + lenLen(len(value)) + len(name) + len(value)
	if n > MaxContent {
		e.err = fmt.Errorf("fcgi: param %.64q is %d bytes encoded; a pair must fit one %d-byte record (php-cgi cannot join split pairs)",
			name, n, MaxContent)
		return
	}
	if e.rec >= 0 && len(e.buf)-e.rec-HeaderLen+n > MaxContent {
		e.closeRecord()
	}
	if e.rec < 0 {
		e.rec = len(e.buf)
		e.buf = append(e.buf, zeros[:HeaderLen]...)
	}
	e.buf = appendParam(e.buf, name, value)
}

func (e *ParamsEncoder) closeRecord() {
	n := len(e.buf) - e.rec - HeaderLen
	p := padding(n)
	Header{Version: Version, Type: TypeParams, ID: e.id, ContentLength: uint16(n), PaddingLength: p}.Append(e.buf[e.rec:e.rec])
	e.buf = append(e.buf, zeros[:p]...)
	e.rec = -1
}

// Finish closes the open record, appends the empty PARAMS record that ends
// the stream, and returns the whole buffer.
func (e *ParamsEncoder) Finish() ([]byte, error) {
	if e.err != nil {
		return nil, e.err
	}
	if e.rec >= 0 {
		e.closeRecord()
	}
	e.buf = AppendRecord(e.buf, TypeParams, e.id, nil)
	return e.buf, nil
}

// Names the GET_VALUES query may ask about (spec §4.1).
const (
	MaxConns  = "FCGI_MAX_CONNS"
	MaxReqs   = "FCGI_MAX_REQS"
	MpxsConns = "FCGI_MPXS_CONNS"
)

// Pair is one name-value pair.
type Pair struct{ Name, Value string }

// AppendGetValues appends a GET_VALUES record (ID 0) asking for names.
func AppendGetValues(dst []byte, names ...string) ([]byte, error) {
	var b []byte
	for _, n := range names {
		b = AppendParam(b, n, "")
	}
	return appendPairsRecord(dst, TypeGetValues, b)
}

// AppendGetValuesResult appends a GET_VALUES_RESULT record (ID 0).
func AppendGetValuesResult(dst []byte, pairs []Pair) ([]byte, error) {
	var b []byte
	for _, p := range pairs {
		b = AppendParam(b, p.Name, p.Value)
	}
	return appendPairsRecord(dst, TypeGetValuesResult, b)
}

func appendPairsRecord(dst []byte, t Type, content []byte) ([]byte, error) {
	if len(content) > MaxContent {
		return dst, fmt.Errorf("fcgi: %s body is %d bytes, over one record", t, len(content))
	}
	return AppendRecord(dst, t, 0, content), nil
}

// ParseGetValues returns the names a GET_VALUES body asks about. The spec
// says the values are empty; any value is ignored.
func ParseGetValues(content []byte) ([]string, error) {
	var names []string
	err := ParseParams(content, func(name, _ []byte) error {
		names = append(names, string(name))
		return nil
	})
	return names, err
}

// ParseGetValuesResult decodes a GET_VALUES_RESULT body.
func ParseGetValuesResult(content []byte) (map[string]string, error) {
	m := map[string]string{}
	err := ParseParams(content, func(name, value []byte) error {
		m[string(name)] = string(value)
		return nil
	})
	return m, err
}
