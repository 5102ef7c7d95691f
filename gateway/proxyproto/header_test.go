package proxyproto

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func v2(cmd, fam byte, body []byte) []byte {
	b := append([]byte{}, sigV2...)
	b = append(b, 0x20|cmd, fam, 0, 0)
	binary.BigEndian.PutUint16(b[14:], uint16(len(body)))
	return append(b, body...)
}

func TestParse(t *testing.T) {
	ap := netip.MustParseAddrPort
	inet := []byte{192, 0, 2, 1, 198, 51, 100, 2, 0x30, 0x39, 0x01, 0xbb} // 12345 -> 443
	inet6 := make([]byte, 36)
	copy(inet6, netip.MustParseAddr("2001:db8::1").AsSlice())
	copy(inet6[16:], netip.MustParseAddr("2001:db8::2").AsSlice())
	binary.BigEndian.PutUint16(inet6[32:], 5000)
	binary.BigEndian.PutUint16(inet6[34:], 80)
	tlv := append(append([]byte{}, inet...), 0x01, 0x00, 0x02, 'h', '2') // ALPN TLV, skipped
	for i, tc := range []struct {
		name string
		in   string
		want Header
		n    int
		err  error
	}{
		{"v1 tcp4", "PROXY TCP4 192.0.2.1 198.51.100.2 12345 443\r\nGET /", Header{Src: ap("192.0.2.1:12345"), Dst: ap("198.51.100.2:443")}, 45, nil},
		{"v1 tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 5000 80\r\n", Header{Src: ap("[2001:db8::1]:5000"), Dst: ap("[2001:db8::2]:80")}, 44, nil},
		{"v1 unknown", "PROXY UNKNOWN ffff:f...f:ffff 0 0\r\nx", Header{Local: true}, 35, nil},
		{"v1 unknown bare", "PROXY UNKNOWN\r\n", Header{Local: true}, 15, nil},
		{"v1 short", "PROXY TCP4 192.0.2.1", Header{}, 0, ErrShort},
		{"v1 prefix short", "PRO", Header{}, 0, ErrShort},
		{"v1 tcp4 with v6", "PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 tcp6 with v4", "PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 port range", "PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 leading zero", "PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 extra field", "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n", Header{}, 0, ErrInvalid},
		{"v1 missing field", "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n", Header{}, 0, ErrInvalid},
		{"v1 double space", "PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 bare LF", "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n", Header{}, 0, ErrInvalid},
		{"v1 zone", "PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 too long", "PROXY UNKNOWN " + strings.Repeat("x", 120), Header{}, 0, ErrInvalid},
		{"v1 bad family", "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n", Header{}, 0, ErrInvalid},
		{"http, no header", "GET / HTTP/1.1\r\n", Header{}, 0, ErrInvalid},
		{"tls, no header", "\x16\x03\x01\x02\x00", Header{}, 0, ErrInvalid},
		{"empty", "", Header{}, 0, ErrShort},
		{"v2 inet", string(v2(1, 0x11, inet)) + "GET", Header{Src: ap("192.0.2.1:12345"), Dst: ap("198.51.100.2:443")}, 28, nil},
		{"v2 inet tlv", string(v2(1, 0x11, tlv)), Header{Src: ap("192.0.2.1:12345"), Dst: ap("198.51.100.2:443")}, 33, nil},
		{"v2 inet6", string(v2(1, 0x21, inet6)), Header{Src: ap("[2001:db8::1]:5000"), Dst: ap("[2001:db8::2]:80")}, 52, nil},
		{"v2 local", string(v2(0, 0x00, nil)), Header{Local: true}, 16, nil},
		{"v2 local with addresses", string(v2(0, 0x11, inet)), Header{Local: true}, 28, nil},
		{"v2 unspec", string(v2(1, 0x00, nil)), Header{Local: true}, 16, nil},
		{"v2 unix", string(v2(1, 0x31, make([]byte, 216))), Header{Local: true}, 232, nil},
		{"v2 short body", string(v2(1, 0x11, inet))[:20], Header{}, 0, ErrShort},
		{"v2 short sig", string(sigV2[:5]), Header{}, 0, ErrShort},
		{"v2 addresses cut", string(v2(1, 0x11, inet[:8])), Header{}, 0, ErrInvalid},
		{"v2 version 1", string(append(append([]byte{}, sigV2...), 0x11, 0x11, 0, 0)), Header{}, 0, ErrInvalid},
		{"v2 command 2", string(append(append([]byte{}, sigV2...), 0x22, 0x11, 0, 0)), Header{}, 0, ErrInvalid},
		{"v2 family 4", string(v2(1, 0x41, inet)), Header{}, 0, ErrInvalid},
		{"v2 dgram", string(v2(1, 0x12, inet)), Header{}, 0, ErrInvalid},
		{"v2 too long", string(append(append([]byte{}, sigV2...), 0x21, 0x11, 0xff, 0xff)), Header{}, 0, ErrInvalid},
		{"v2 bad sig", "\r\n\r\n\x00\r\nQUIX\n" + "\x21\x11\x00\x00", Header{}, 0, ErrInvalid},
	} {
		h, n, err := Parse([]byte(tc.in))
		if !errors.Is(err, tc.err) || err == nil && (h != tc.want || n != tc.n) {
			t.Errorf("%d %s: got %+v, %d, %v; want %+v, %d, %v", i, tc.name, h, n, err, tc.want, tc.n, tc.err)
		}
	}
}

// FuzzProxyHeader checks Parse never panics, never claims more bytes than
// it was given or than the spec allows, and agrees with itself on a prefix:
// a header it accepts is found the same once more bytes follow it.
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 198.51.100.2 12345 443\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 5000 80\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(1, 0x11, []byte{192, 0, 2, 1, 198, 51, 100, 2, 0, 1, 0, 2}))
	f.Add(v2(0, 0, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with n=%d", err, n)
			}
			return
		}
		if n <= 0 || n > len(b) || n > MaxV2 {
			t.Fatalf("n=%d of %d bytes", n, len(b))
		}
		if !h.Local && (!h.Src.IsValid() || !h.Dst.IsValid()) {
			t.Fatalf("addresses missing: %+v", h)
		}
		h2, n2, err2 := Parse(append(b[:n:n], "GET / HTTP/1.1\r\n"...))
		if err2 != nil || h2 != h || n2 != n {
			t.Fatalf("with more bytes: %+v %d %v, was %+v %d", h2, n2, err2, h, n)
		}
	})
}
