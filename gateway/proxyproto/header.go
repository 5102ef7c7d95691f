// Package proxyproto reads the PROXY protocol header (haproxy's
// proxy-protocol.txt, versions 1 and 2) a load balancer puts before the
// client's bytes, and wraps a listener so the connections it accepts carry
// the client's address. The codec (Parse) is pure: bytes in, a Header out.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
)

// Header is what a PROXY header says about the connection.
type Header struct {
	// Local means the proxy speaks for itself (v2 LOCAL, v1 UNKNOWN, an
	// unspecified or unix address family): the socket's addresses stand.
	Local bool
	// Src is the client's address and port, Dst the one it connected to.
	Src, Dst netip.AddrPort
}

// MaxV1 is the longest v1 header, CRLF included (the spec's 107 bytes).
const MaxV1 = 107

// MaxV2 bounds a v2 header, TLVs included. The spec allows 16+65535 bytes;
// what load balancers send (addresses, ALPN, an authority, a TLS summary)
// is a few hundred, and anything this long is refused rather than buffered.
const MaxV2 = 4096

var (
	// ErrShort means b holds the start of a header that may still be
	// valid: read more and call Parse again.
	ErrShort = errors.New("proxyproto: header incomplete")
	// ErrInvalid is a header that is not one, or a malformed one.
	ErrInvalid = errors.New("proxyproto: malformed header")
)

var (
	sigV1 = []byte("PROXY ")
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// Parse reads the header at the start of b and returns it and its length.
// It never reads past the header: the bytes after n are the client's.
func Parse(b []byte) (h Header, n int, err error) {
	switch {
	case len(b) == 0:
		return h, 0, ErrShort
	case b[0] == 'P':
		return parseV1(b)
	case b[0] == '\r':
		return parseV2(b)
	}
	return h, 0, ErrInvalid
}

// parseV1 reads "PROXY TCP4 src dst sport dport\r\n" (TCP6 alike) or
// "PROXY UNKNOWN ...\r\n".
func parseV1(b []byte) (Header, int, error) {
	var h Header
	if k := min(len(b), len(sigV1)); !bytes.Equal(b[:k], sigV1[:k]) {
		return h, 0, ErrInvalid
	}
	end := bytes.IndexByte(b[:min(len(b), MaxV1)], '\n')
	if end < 0 {
		if len(b) >= MaxV1 {
			return h, 0, ErrInvalid
		}
		return h, 0, ErrShort
	}
	if end == 0 || b[end-1] != '\r' {
		return h, 0, ErrInvalid
	}
	n := end + 1
	line := b[len(sigV1) : end-1]
	fam, rest, _ := bytes.Cut(line, []byte{' '})
	if string(fam) == "UNKNOWN" {
		// "the receiver must ignore anything presented before the
		// CRLF is found" (spec 2.1).
		return Header{Local: true}, n, nil
	}
	if string(fam) != "TCP4" && string(fam) != "TCP6" {
		return h, 0, ErrInvalid
	}
	var f [4][]byte
	for i := range f {
		var ok bool
		if f[i], rest, ok = bytes.Cut(rest, []byte{' '}); ok == (i == 3) {
			return h, 0, ErrInvalid // too few or too many fields
		}
	}
	src, err1 := netip.ParseAddr(string(f[0]))
	dst, err2 := netip.ParseAddr(string(f[1]))
	sp, ok1 := port(f[2])
	dp, ok2 := port(f[3])
	v4 := string(fam) == "TCP4"
	if err1 != nil || err2 != nil || !ok1 || !ok2 || src.Is4() != v4 || dst.Is4() != v4 || src.Zone() != "" || dst.Zone() != "" {
		return h, 0, ErrInvalid
	}
	return Header{Src: netip.AddrPortFrom(src, sp), Dst: netip.AddrPortFrom(dst, dp)}, n, nil
}

// port reads a decimal port: 0 to 65535, no sign, no leading zero.
func port(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 || len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b), 10, 16)
	return uint16(n), err == nil
}

// parseV2 reads the binary header: the 12-byte signature, version and
// command, family and transport, the length of the rest, the addresses,
// then TLVs, which gw skips.
func parseV2(b []byte) (Header, int, error) {
	var h Header
	if k := min(len(b), len(sigV2)); !bytes.Equal(b[:k], sigV2[:k]) {
		return h, 0, ErrInvalid
	}
	if len(b) < 16 {
		return h, 0, ErrShort
	}
	verCmd, famProto := b[12], b[13]
	n := 16 + int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 || verCmd&0xf > 1 || n > MaxV2 {
		return h, 0, ErrInvalid
	}
	if len(b) < n {
		return h, 0, ErrShort
	}
	body := b[16:n]
	fam, proto := famProto>>4, famProto&0xf
	if proto > 2 || fam > 3 {
		return h, 0, ErrInvalid
	}
	var alen int
	switch fam {
	case 1:
		alen = 12
	case 2:
		alen = 36
	case 3:
		alen = 216
	}
	if len(body) < alen {
		return h, 0, ErrInvalid
	}
	if verCmd&0xf == 0 || fam == 0 || fam == 3 {
		// LOCAL: a health check of the proxy's own; UNSPEC and unix
		// sources have no IP address for REMOTE_ADDR (spec 2.2: the
		// receiver uses the real connection's addresses).
		return Header{Local: true}, n, nil
	}
	if proto != 1 {
		return h, 0, ErrInvalid // a datagram source on a stream socket
	}
	ip := alen/2 - 2
	src, _ := netip.AddrFromSlice(body[:ip])
	dst, _ := netip.AddrFromSlice(body[ip : 2*ip])
	sp := binary.BigEndian.Uint16(body[2*ip:])
	dp := binary.BigEndian.Uint16(body[2*ip+2:])
	return Header{Src: netip.AddrPortFrom(src.Unmap(), sp), Dst: netip.AddrPortFrom(dst.Unmap(), dp)}, n, nil
}
