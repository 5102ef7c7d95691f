package bridge

import (
	"net/http"
	"net/textproto"
	"reflect"
	"testing"

	"github.com/gwhq/gw/proto/bridgepb"
)

// TestCopyHeadDropsHopByHop: the front end owns the client connection, so
// an app's Connection, Transfer-Encoding, Keep-Alive... never reach it.
func TestCopyHeadDropsHopByHop(t *testing.T) {
	frame, err := AppendMessage(nil, ResponseHead, &bridgepb.ResponseHead{Status: 201, Headers: bs(
		"content-type", "text/plain",
		"Set-Cookie", "a=1", "set-cookie", "b=2",
		"Connection", "close", "Transfer-Encoding", "chunked", "Keep-Alive", "timeout=5",
		"Upgrade", "h2c", "TE", "trailers", "Trailer", "X-T",
		"X-Kept", "yes",
	)})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	status, err := copyHead(h, frame[HeaderSize:])
	if err != nil || status != 201 {
		t.Fatalf("status %d err %v", status, err)
	}
	want := http.Header{"Content-Type": {"text/plain"}, "Set-Cookie": {"a=1", "b=2"}, "X-Kept": {"yes"}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("headers %v, want %v", h, want)
	}
}

func TestDecodeResponseHeadRejectsOddHeaders(t *testing.T) {
	frame, _ := AppendMessage(nil, ResponseHead, &bridgepb.ResponseHead{Status: 200, Headers: bs("X-Lonely")})
	if _, err := DecodeResponseHead(frame[HeaderSize:], func(n, v []byte) {}); err == nil {
		t.Fatal("a header name without a value was accepted")
	}
}

// TestCommonHeadersCanonical: the allocation-free lookup gives exactly
// what canonicalizing would.
func TestCommonHeadersCanonical(t *testing.T) {
	for name, k := range commonHeaders {
		if want := textproto.CanonicalMIMEHeaderKey(name); k != want {
			t.Errorf("%q maps to %q, want %q", name, k, want)
		}
	}
}
