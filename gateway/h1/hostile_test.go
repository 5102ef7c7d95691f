package h1

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLingeringClose: a handler that answers without reading a 4 MiB body
// still gets its answer to a client that writes the whole body before
// reading. A plain close on the unread bytes sends a RST, and the client
// sees its write fail (EPIPE/ECONNRESET) instead of the 413.
func TestLingeringClose(t *testing.T) {
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}))
	c, br := dial(t, addr)
	const size = 4 << 20
	head := "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4194304\r\n\r\n"
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(bytes.Repeat([]byte("x"), size)); err != nil {
		t.Fatalf("writing the body: %v (the server reset the connection)", err)
	}
	resp, body := readResponse(t, br, "POST")
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close || !strings.Contains(body, "too large") {
		t.Fatalf("got %d close=%v %q", resp.StatusCode, resp.Close, body)
	}
	// The server half-closed after the answer: EOF, not a reset.
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the answer: %v, want EOF", err)
	}
}

// TestUnreadSmallBodyKeepsConnection: an unread body under 256 KiB is
// dropped and the connection serves the next request (net/http's rule).
func TestUnreadSmallBodyKeepsConnection(t *testing.T) {
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	c, br := dial(t, addr)
	body := strings.Repeat("b", 100<<10)
	io.WriteString(c, "POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 102400\r\n\r\n"+body+"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"/1", "/2"} {
		resp, got := readResponse(t, br, "GET")
		if got != want || resp.Close {
			t.Fatalf("got %q close=%v, want %q kept alive", got, resp.Close, want)
		}
	}
}

// TestExpectContinue, both ways: the 100 goes out on the handler's first
// body read only; a handler that answers without reading gets its answer
// out with no 100 and the connection closed, and the client is never left
// waiting.
func TestExpectContinue(t *testing.T) {
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reject" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	t.Run("read", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("first line %q, %v; want 100 Continue", line, err)
		}
		if l, _ := br.ReadString('\n'); l != "\r\n" {
			t.Fatalf("100 Continue not followed by an empty line: %q", l)
		}
		io.WriteString(c, "hello")
		resp, body := readResponse(t, br, "POST")
		if resp.StatusCode != 200 || body != "hello" || resp.Close {
			t.Fatalf("got %d %q close=%v", resp.StatusCode, body, resp.Close)
		}
	})
	t.Run("unread", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "POST /reject HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		resp, _ := readResponse(t, br, "POST") // would fail on a 100 first
		if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
			t.Fatalf("got %d close=%v, want 401 and close", resp.StatusCode, resp.Close)
		}
		c.Close() // the client gives up on the body; the server's linger ends
	})
}

// TestClientGone: a handler waiting on its request's context learns that
// the client closed the connection, with ErrClientGone as the cause.
func TestClientGone(t *testing.T) {
	started := make(chan struct{})
	cause := make(chan error, 1)
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		waitCtx(t, r.Context())
		cause <- context.Cause(r.Context())
	}))
	c, _ := dial(t, addr)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	c.Close()
	select {
	case err := <-cause:
		if !errors.Is(err, ErrClientGone) {
			t.Fatalf("cause %v, want ErrClientGone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler not told within 10s")
	}
}

// TestPipelinedNotGone: the watch reads the next request's first byte; it
// must keep it, not take it for the client leaving.
func TestPipelinedNotGone(t *testing.T) {
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/1" {
			time.Sleep(20 * watchAfter) // long enough for the watch to read
		}
		if err := r.Context().Err(); err != nil {
			t.Errorf("%s: context ended: %v", r.URL.Path, err)
		}
		io.WriteString(w, r.URL.Path)
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(5 * watchAfter)
	io.WriteString(c, "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"/1", "/2"} {
		if _, got := readResponse(t, br, "GET"); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestSlowHead: a head that trickles in is cut at ReadHeaderTimeout; an
// oversized one gets 431.
func TestSlowHead(t *testing.T) {
	addr := serve(t, &Server{ReadHeaderTimeout: 200 * time.Millisecond, MaxHeaderBytes: 1024},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Run("slowloris", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHo")
		done := make(chan error, 1)
		go func() { _, err := br.ReadByte(); done <- err }() // ends when the server closes or the deadline passes
		for i := 0; i < 50; i++ {
			select {
			case err := <-done:
				// A reset is a close too: a byte written just as the
				// server closed makes its kernel answer with RST.
				if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("got %v, want the server to close", err)
				}
				return
			case <-time.After(50 * time.Millisecond):
				c.Write([]byte("x"))
			}
		}
		t.Fatal("still open after 2.5s of a head at 20 bytes/s")
	})
	t.Run("431", func(t *testing.T) {
		raw := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2000) + "\r\n\r\n"
		rs, _ := responses(exchange(t, addr, raw), "GET")
		if len(rs) != 1 || rs[0].StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("got %v, want one 431", rs)
		}
	})
}

// TestShutdown: idle connections close at once, a request in flight
// finishes (its answer saying close), then Shutdown returns.
func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	inHandler := make(chan struct{}, 1)
	s := &Server{}
	addr := serve(t, s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			inHandler <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	}))
	idle, idleR := dial(t, addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	readResponse(t, idleR, "GET")
	busy, busyR := dial(t, addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-inHandler
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }() // returns once /slow is answered
	if _, err := idleR.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	close(release)
	resp, body := readResponse(t, busyR, "GET")
	if body != "done" || !resp.Close {
		t.Fatalf("in-flight request: %q close=%v", body, resp.Close)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}
