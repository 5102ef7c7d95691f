package bridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/gwhq/gw/internal/cgi"
)

// The per-request messages are encoded and decoded by hand with protowire:
// they sit on the hot path, and the generic marshaller would allocate a
// message and a [][]byte per request. The tests check both paths agree.

// Head builds a REQUEST_HEAD frame in place. Pairs go into env_block
// (NUL-separated), which the shims split in C; a pair whose value holds a
// NUL goes into env instead.
type Head struct {
	buf   []byte
	start int
	blk   *[]byte // env_block under construction, from blockPool
}

var blockPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// BeginHead starts a REQUEST_HEAD frame at the end of dst.
func BeginHead(dst []byte) Head {
	start := len(dst)
	blk := blockPool.Get().(*[]byte)
	*blk = (*blk)[:0]
	return Head{buf: AppendHeader(dst, RequestHead, 0), start: start, blk: blk}
}

// Add appends one CGI variable with a string value (cgi.Sink).
func (h *Head) Add(name, value string) {
	if strings.IndexByte(value, 0) >= 0 {
		h.buf = protowire.AppendTag(h.buf, 1, protowire.BytesType)
		h.buf = protowire.AppendString(h.buf, name)
		h.buf = protowire.AppendTag(h.buf, 1, protowire.BytesType)
		h.buf = protowire.AppendString(h.buf, value)
		return
	}
	b := append(*h.blk, name...)
	b = append(b, 0)
	b = append(b, value...)
	*h.blk = append(b, 0)
}

// AddHeader appends HTTP_<NAME> for a canonical header name (cgi.Sink).
func (h *Head) AddHeader(canonical, value string) {
	if strings.IndexByte(value, 0) >= 0 {
		h.buf = protowire.AppendTag(h.buf, 1, protowire.BytesType)
		h.buf = protowire.AppendVarint(h.buf, uint64(len("HTTP_")+len(canonical)))
		h.buf = cgi.AppendName(h.buf, canonical)
		h.buf = protowire.AppendTag(h.buf, 1, protowire.BytesType)
		h.buf = protowire.AppendString(h.buf, value)
		return
	}
	b := cgi.AppendName(*h.blk, canonical)
	b = append(b, 0)
	b = append(b, value...)
	*h.blk = append(b, 0)
}

// Finish appends url_scheme, request_id and env_block and returns the
// finished frame buffer (dst plus the frame). h is spent afterwards.
func (h *Head) Finish(scheme, requestID string) []byte {
	if scheme != "" {
		h.buf = protowire.AppendTag(h.buf, 2, protowire.BytesType)
		h.buf = protowire.AppendString(h.buf, scheme)
	}
	if requestID != "" {
		h.buf = protowire.AppendTag(h.buf, 3, protowire.BytesType)
		h.buf = protowire.AppendString(h.buf, requestID)
	}
	if blk := *h.blk; len(blk) > 0 {
		h.buf = protowire.AppendTag(h.buf, 4, protowire.BytesType)
		h.buf = protowire.AppendBytes(h.buf, blk[:len(blk)-1]) // no trailing NUL
	}
	blockPool.Put(h.blk)
	h.blk = nil
	binary.LittleEndian.PutUint32(h.buf[h.start+4:], uint32(len(h.buf)-h.start-HeaderSize))
	return h.buf
}

// AppendRequestEnd appends a REQUEST_END frame.
func AppendRequestEnd(dst []byte, aborted bool, reason string) []byte {
	if !aborted {
		return AppendHeader(dst, RequestEnd, 0)
	}
	n := 2 + protowire.SizeTag(2) + protowire.SizeBytes(len(reason))
	if reason == "" {
		n = 2
	}
	dst = AppendHeader(dst, RequestEnd, n)
	dst = protowire.AppendTag(dst, 1, protowire.VarintType)
	dst = protowire.AppendVarint(dst, 1)
	if reason != "" {
		dst = protowire.AppendTag(dst, 2, protowire.BytesType)
		dst = protowire.AppendString(dst, reason)
	}
	return dst
}

var errMalformed = errors.New("bridge: malformed message")

// DecodeResponseHead parses a ResponseHead payload, calling header for each
// name/value pair in order. The slices alias b.
func DecodeResponseHead(b []byte, header func(name, value []byte)) (status int, err error) {
	var name []byte
	odd := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, errMalformed
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, errMalformed
			}
			status, b = int(v), b[n:]
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, errMalformed
			}
			b = b[n:]
			if odd {
				header(name, v)
			} else {
				name = v
			}
			odd = !odd
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, errMalformed
			}
			b = b[n:]
			if odd {
				return 0, fmt.Errorf("bridge: response header %q has no value", name)
			}
			if err := splitBlock(v, header); err != nil {
				return 0, err
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, errMalformed
			}
			b = b[n:]
		}
	}
	if odd {
		return 0, fmt.Errorf("bridge: response header %q has no value", name)
	}
	return status, nil
}

// splitBlock calls pair for each name NUL value in a header_block.
func splitBlock(blk []byte, pair func(name, value []byte)) error {
	for len(blk) > 0 {
		i := bytes.IndexByte(blk, 0)
		if i < 0 {
			return fmt.Errorf("bridge: response header %q has no value", blk)
		}
		name := blk[:i]
		blk = blk[i+1:]
		j := bytes.IndexByte(blk, 0)
		if j < 0 {
			pair(name, blk)
			return nil
		}
		pair(name, blk[:j])
		blk = blk[j+1:]
		if len(blk) == 0 {
			return errors.New("bridge: header_block ends with NUL")
		}
	}
	return nil
}

// DecodeResponseEnd returns ResponseEnd.error and its logvars (name,
// value, ...; nil when the app set none, as it almost never does: a
// successful end is an empty payload, decoded without an allocation).
func DecodeResponseEnd(b []byte) (string, []string, error) {
	var msg string
	var vars []string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", nil, errMalformed
		}
		b = b[n:]
		if (num == 1 || num == 2) && typ == protowire.BytesType {
			v, n := protowire.ConsumeString(b)
			if n < 0 {
				return "", nil, errMalformed
			}
			if num == 1 {
				msg = v
			} else {
				vars = append(vars, v)
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", nil, errMalformed
		}
		b = b[n:]
	}
	if len(vars)%2 != 0 {
		return "", nil, errMalformed
	}
	return msg, vars, nil
}
