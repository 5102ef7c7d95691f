package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve starts s (h1) on a loopback port with handler h; it is closed at
// cleanup.
func serve(t testing.TB, s *Server, h http.Handler) string {
	t.Helper()
	s.Handler = h
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }() // ends at Close below
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// serveStd starts net/http's server the same way, for comparisons.
func serveStd(t testing.TB, s *http.Server, h http.Handler) string {
	t.Helper()
	s.Handler = h
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln) // ends at Close below
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// exchange writes raw on a new connection, half-closes it, and reads
// everything until the server closes (bounded by a deadline).
func exchange(t testing.TB, addr, raw string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Logf("write: %v", err)
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read: %v", err)
	}
	return b
}

// responses parses the final responses in b (skipping 1xx), each read
// as the answer to method.
func responses(b []byte, method string) ([]*http.Response, []string) {
	br := bufio.NewReader(bytes.NewReader(b))
	var rs []*http.Response
	var bodies []string
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return rs, bodies
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			body = append(body, "<cut: "+err.Error()+">"...)
		}
		if resp.StatusCode >= 200 {
			rs, bodies = append(rs, resp), append(bodies, string(body))
		}
	}
}

// dial opens a client connection with a deadline.
func dial(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func readResponse(t testing.TB, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	for err == nil && resp.StatusCode < 200 && resp.StatusCode != 101 {
		resp, err = http.ReadResponse(br, &http.Request{Method: method}) // skip 1xx
	}
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

func waitCtx(t testing.TB, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("context not cancelled within 10s")
	}
}
