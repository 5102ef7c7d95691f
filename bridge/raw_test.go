package bridge

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gwhq/gw/proto/bridgepb"
)

// TestRawFrames: raw_connection added to a finished head decodes as
// field 6 beside the rest; RAW_CONNECT is the header and the u32le id.
func TestRawFrames(t *testing.T) {
	h := BeginHead(nil)
	h.Add("REQUEST_METHOD", "GET")
	head := RawHead(h.Finish("https", "rid"), 7)
	typ := Type(head[0])
	n := binary.LittleEndian.Uint32(head[4:8])
	var m bridgepb.RequestHead
	if err := proto.Unmarshal(head[HeaderSize:], &m); err != nil || typ != RequestHead || int(n) != len(head)-HeaderSize {
		t.Fatalf("head: type %v, length %d of %d, %v", typ, n, len(head)-HeaderSize, err)
	}
	if m.RawConnection != 7 || m.UrlScheme != "https" || m.RequestId != "rid" || string(m.EnvBlock) != "REQUEST_METHOD\x00GET" {
		t.Errorf("head decodes as %v", &m)
	}
	f := RawConnectFrame(0x01020304)
	if len(f) != HeaderSize+4 || Type(f[0]) != RawConnect || binary.LittleEndian.Uint32(f[4:8]) != 4 ||
		binary.LittleEndian.Uint32(f[8:]) != 0x01020304 {
		t.Errorf("RAW_CONNECT % x", f)
	}
}

type fakeRaw struct {
	*httptest.ResponseRecorder
	hijacks int
}

func (f *fakeRaw) OfferRaw(net.Conn) {}
func (f *fakeRaw) HijackRaw() error  { f.hijacks++; return nil }

// TestExchangeRawHijacked: RAW_HIJACKED hands the connection over once,
// the exchange then ends at RESPONSE_END with status 101; a writer that
// cannot take connections gets a protocol error.
func TestExchangeRawHijacked(t *testing.T) {
	for _, raw := range []bool{true, false} {
		s, reqR, respW := pipeSlot(t)
		go func() {
			rd := NewReader(bufio.NewReader(reqR))
			for {
				typ, n, err := rd.Header()
				if err != nil {
					return
				}
				rd.Payload(n)
				if typ == RequestEnd {
					break
				}
			}
			respW.Write(AppendHeader(nil, RawHijacked, 0))
			respW.Write(AppendHeader(nil, ResponseEnd, 0))
		}()
		h := BeginHead(nil)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		var w http.ResponseWriter = httptest.NewRecorder()
		f := &fakeRaw{ResponseRecorder: httptest.NewRecorder()}
		if raw {
			w = f
		}
		res, err := s.Exchange(w, r, RawHead(h.Finish("http", ""), 1), nil)
		if raw && (err != nil || res.Status != http.StatusSwitchingProtocols || f.hijacks != 1) {
			t.Errorf("raw: %+v %v, %d hijacks", res, err, f.hijacks)
		}
		if !raw && err == nil {
			t.Error("RAW_HIJACKED to a writer that cannot take the connection: no error")
		}
	}
}
