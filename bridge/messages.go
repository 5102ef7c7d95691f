package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/gwhq/gw/internal/cgi"
)

// The per-request messages are encoded and decoded by hand with protowire:
// they sit on the hot path, and the generic marshaller would allocate a
// message and a [][]byte per request. The tests check both paths agree.

// Head builds a REQUEST_HEAD frame in place.
type Head struct {
	buf   []byte
	start int
}

// BeginHead starts a REQUEST_HEAD frame at the end of dst.
func BeginHead(dst []byte) Head {
	start := len(dst)
	return Head{buf: AppendHeader(dst, RequestHead, 0), start: start}
}

// Add appends one CGI variable with a string value (cgi.Sink).
func (h *Head) Add(name, value string) {
	h.buf = protowire.AppendTag(h.buf, 1, protowire.BytesType)
	h.buf = protowire.AppendVarint(h.buf, uint64(len(name)))
	h.buf = append(h.buf, name...)
	h.buf = protowire.AppendTag(h.buf, 1, protowire.BytesType)
	h.buf = protowire.AppendString(h.buf, value)
}

// AddHeader appends HTTP_<NAME> for a canonical header name (cgi.Sink).
func (h *Head) AddHeader(canonical, value string) {
	h.buf = protowire.AppendTag(h.buf, 1, protowire.BytesType)
	h.buf = protowire.AppendVarint(h.buf, uint64(len("HTTP_")+len(canonical)))
	h.buf = cgi.AppendName(h.buf, canonical)
	h.buf = protowire.AppendTag(h.buf, 1, protowire.BytesType)
	h.buf = protowire.AppendString(h.buf, value)
}

// Finish appends url_scheme and request_id and returns the finished frame
// buffer (dst plus the frame).
func (h *Head) Finish(scheme, requestID string) []byte {
	if scheme != "" {
		h.buf = protowire.AppendTag(h.buf, 2, protowire.BytesType)
		h.buf = protowire.AppendString(h.buf, scheme)
	}
	if requestID != "" {
		h.buf = protowire.AppendTag(h.buf, 3, protowire.BytesType)
		h.buf = protowire.AppendString(h.buf, requestID)
	}
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

// DecodeResponseEnd returns ResponseEnd.error.
func DecodeResponseEnd(b []byte) (string, error) {
	var msg string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", errMalformed
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeString(b)
			if n < 0 {
				return "", errMalformed
			}
			msg, b = v, b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", errMalformed
		}
		b = b[n:]
	}
	return msg, nil
}
