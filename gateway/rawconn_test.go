package gateway

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestIsUpgrade(t *testing.T) {
	for _, c := range []struct {
		name string
		req  string
		want bool
	}{
		{"websocket", "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", true},
		{"any protocol", "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n", true},
		{"no Connection token", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", false},
		{"no Upgrade", "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n", false},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n", false},
		{"with a body", "POST / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\nContent-Length: 3\r\n\r\nabc", false},
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
	} {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(c.req)))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := isUpgrade(r); got != c.want {
			t.Errorf("%s: isUpgrade = %v, want %v", c.name, got, c.want)
		}
	}
	r, _ := http.ReadRequest(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")))
	r.ProtoMajor, r.ProtoMinor = 2, 0
	if isUpgrade(r) {
		t.Error("an HTTP/2 request counted as an upgrade")
	}
}

// TestRawSet: wait returns when the last connection goes, or at ctx's
// end; closeAll cuts what is open and refuses new ones.
func TestRawSet(t *testing.T) {
	var s openSet
	pair := func() *rawRelay {
		a, b := net.Pipe()
		c, d := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close(); c.Close(); d.Close() })
		return &rawRelay{client: a, app: c}
	}
	rr := pair()
	if !s.add(rr) {
		t.Fatal("add refused")
	}
	go func() { time.Sleep(20 * time.Millisecond); s.remove(rr) }()
	s.wait(context.Background()) // returns once rr is removed
	rr = pair()
	s.add(rr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	s.wait(ctx)
	if ctx.Err() == nil {
		t.Fatal("wait returned with a connection open and ctx live")
	}
	s.closeAll()
	if _, err := rr.client.Write([]byte("x")); err == nil {
		t.Error("closeAll left the client connection open")
	}
	if s.add(pair()) {
		t.Error("add after closeAll accepted")
	}
}
