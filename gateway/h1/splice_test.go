package h1

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSplicePipeFull: a pipe too small for the body (one buffer) takes
// what it holds and says ErrPipeFull; the rest is then read as usual, and
// prefix + pipe + rest is the body, byte for byte.
func TestSplicePipeFull(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 3000) // 48000 bytes
	got := make(chan []byte, 1)
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var fds [2]int
		if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
			t.Error(err)
			return
		}
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		if _, err := unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, 4096); err != nil {
			t.Error(err)
			return
		}
		sp := r.Body.(interface {
			SpliceTo([]byte, int, func() error) ([]byte, int64, error)
		})
		pre, n, err := sp.SpliceTo(nil, fds[1], func() error { return nil })
		if !errors.Is(err, ErrPipeFull) || n == 0 {
			t.Errorf("SpliceTo into one page: n %d err %v, want some bytes and ErrPipeFull", n, err)
		}
		all := append([]byte{}, pre...)
		piped := make([]byte, n)
		if k, err := unix.Read(fds[0], piped); int64(k) != n || err != nil {
			t.Errorf("pipe gave %d of %d bytes: %v", k, n, err)
		}
		all = append(all, piped...)
		rest, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		got <- append(all, rest...)
		fmt.Fprint(w, "ok")
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body))
	c.Write(body)
	if b := <-got; !bytes.Equal(b, body) {
		t.Fatalf("read back %d bytes, want the %d sent", len(b), len(body))
	}
}

// TestSpliceNotChunked: a chunked body is not spliced, and nothing of it
// is consumed by asking.
func TestSpliceNotChunked(t *testing.T) {
	got := make(chan string, 1)
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sp := r.Body.(interface {
			SpliceTo([]byte, int, func() error) ([]byte, int64, error)
		})
		if _, _, err := sp.SpliceTo(nil, -1, func() error { return nil }); err != ErrNoSplice {
			t.Errorf("chunked: %v, want ErrNoSplice", err)
		}
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	exchange(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if b := <-got; b != "hello" {
		t.Fatalf("body %q after a refused splice, want hello", b)
	}
}
