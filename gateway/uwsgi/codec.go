package uwsgi

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The uwsgi packet (protocols.md §1.1; uwsgi-docs Protocol.rst):
//
//	u8 modifier1 | u16le datasize | u8 modifier2 | vars block[datasize]
//	vars block: (u16le keylen, key, u16le vallen, val)*
//
// then, from nginx, exactly CONTENT_LENGTH body bytes with no framing.

// HeaderLen is the size of the packet header.
const HeaderLen = 4

// MaxVarsSize is the largest vars block a header can announce.
const MaxVarsSize = 65535

// Header is a uwsgi packet header.
type Header struct {
	Modifier1 uint8
	DataSize  uint16
	Modifier2 uint8
}

// ParseHeader decodes the first HeaderLen bytes of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("uwsgi: packet header: %w", io.ErrUnexpectedEOF)
	}
	return Header{Modifier1: b[0], DataSize: binary.LittleEndian.Uint16(b[1:]), Modifier2: b[3]}, nil
}

// Append appends the 4-byte encoding of h.
func (h Header) Append(dst []byte) []byte {
	return append(dst, h.Modifier1, byte(h.DataSize), byte(h.DataSize>>8), h.Modifier2)
}

// ParseVars calls fn for each key/value of a vars block; k and v alias
// block. A zero-length key (uWSGI: "uwsgi key cannot be null") and a
// length that runs past the block are errors; so is any error from fn,
// which stops the walk and is returned as is. Values may be empty.
func ParseVars(block []byte, fn func(k, v []byte) error) error {
	for off := 0; off < len(block); {
		start := off
		k, off2, err := field(block, off, "key")
		if err != nil {
			return err
		}
		if len(k) == 0 {
			return fmt.Errorf("uwsgi: zero-length key at offset %d", start)
		}
		v, off3, err := field(block, off2, "value")
		if err != nil {
			return fmt.Errorf("%w (key %.64q)", err, k)
		}
		off = off3
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// field reads one u16le-length-prefixed field at block[off:].
func field(block []byte, off int, what string) ([]byte, int, error) {
	if len(block)-off < 2 {
		return nil, 0, fmt.Errorf("uwsgi: %s length at offset %d cut off by the end of the %d-byte vars block", what, off, len(block))
	}
	n := int(binary.LittleEndian.Uint16(block[off:]))
	off += 2
	if n > len(block)-off {
		return nil, 0, fmt.Errorf("uwsgi: %s length %d at offset %d overruns the %d-byte vars block", what, n, off-2, len(block))
	}
	return block[off : off+n : off+n], off + n, nil
}

// AppendVar appends one key/value to a vars block. A key or value over
// 65535 bytes cannot be encoded and panics.
func AppendVar(dst []byte, k, v string) []byte {
	if len(k) > MaxVarsSize || len(v) > MaxVarsSize {
		panic("uwsgi: var longer than 65535 bytes")
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(k)))
	dst = append(dst, k...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(v)))
	return append(dst, v...)
}

// AppendPacket appends a whole packet: the header for a vars block, then
// the block. It is the client side, used by tests and tools.
func AppendPacket(dst []byte, modifier1, modifier2 uint8, vars []byte) ([]byte, error) {
	if len(vars) > MaxVarsSize {
		return dst, fmt.Errorf("uwsgi: vars block of %d bytes, over %d", len(vars), MaxVarsSize)
	}
	dst = Header{Modifier1: modifier1, DataSize: uint16(len(vars)), Modifier2: modifier2}.Append(dst)
	return append(dst, vars...), nil
}
