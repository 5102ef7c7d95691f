package gateway

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/gateway/h1"
	"github.com/gwhq/gw/internal/bodypipe"
)

// spliceResult is what the test handler saw of one body.
type spliceResult struct {
	status  int    // 0: the body was read
	kind    string // "pipe", "mem" or "file"
	sum     string // sha256 of what reading r.Body gave
	release func()
}

// spliceServer serves h1 on loopback with a handler that buffers each
// body as the gateway does for a bridge app (pipe=true) and reports it.
// The handler holds the body until the test calls release, so pool reuse
// is the test's to order.
func spliceServer(t *testing.T, p *bodyPolicy) (string, chan spliceResult) {
	t.Helper()
	results := make(chan spliceResult, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := newReqBody(w, r, p)
		if b == nil { // no body
			data, _ := io.ReadAll(r.Body)
			results <- spliceResult{kind: "none", sum: sumOf(data), release: func() {}}
			fmt.Fprint(w, sumOf(data))
			return
		}
		if p.max > 0 && r.ContentLength > p.max { // handler.go's check
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			results <- spliceResult{status: 413, release: func() {}}
			return
		}
		release, err := b.buffer(r, p, false, true)
		if err != nil {
			status, _ := bodyStatus(err)
			if status > 0 {
				w.WriteHeader(status)
			} else {
				status = -1 // nobody to answer
			}
			results <- spliceResult{status: status, release: release}
			return
		}
		kind := "file"
		switch r.Body.(type) {
		case *bodypipe.Body:
			kind = "pipe"
		case interface{ Bytes() []byte }:
			kind = "mem"
		}
		data, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading the buffered body: %v", err)
		}
		sum := sha256.Sum256(data)
		hexSum := hex.EncodeToString(sum[:])
		done := make(chan struct{})
		results <- spliceResult{kind: kind, sum: hexSum, release: func() { release(); close(done) }}
		<-done
		fmt.Fprint(w, hexSum)
	})
	srv := &h1.Server{Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) // ends at Close
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), results
}

func splicePolicy(t *testing.T, mem int64, timeout time.Duration, pipeSize int) *bodyPolicy {
	p := testPolicy(t, 4<<20, mem)
	p.timeout = timeout
	p.pipes = bodypipe.NewPool(4, pipeSize)
	t.Cleanup(p.pipes.Close)
	return &p
}

func randomBody(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sumOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestSplicedBodyBytes: bodies of every awkward size come out of the pipe
// exactly as sent, whether all in one write with the head or in pieces
// after it; those from spliceMin to the memory limit go through a pipe.
func TestSplicedBodyBytes(t *testing.T) {
	const mem = 1 << 20
	p := splicePolicy(t, mem, 5*time.Second, mem)
	addr, results := spliceServer(t, p)
	sizes := []int{0, 1, 4095, 4096, spliceMin - 1, spliceMin, 65535, 65536, 65537, 1000000}
	for _, split := range []bool{false, true} {
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%d split=%v", n, split), func(t *testing.T) {
				body := randomBody(t, n)
				c := dialT(t, addr)
				head := fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", n)
				if split {
					// Head and 100 bytes, then the rest in 3 writes: a
					// prefix from h1's buffer, then several splices.
					k := min(100, n)
					writeT(t, c, append([]byte(head), body[:k]...))
					for i, rest := 0, body[k:]; len(rest) > 0; i++ {
						m := min(len(rest), max(len(rest)/3, 1)+1)
						time.Sleep(time.Millisecond) // pieces, not a synchronisation
						writeT(t, c, rest[:m])
						rest = rest[m:]
					}
				} else {
					writeT(t, c, append([]byte(head), body...))
				}
				res := <-results
				res.release()
				if res.status != 0 {
					t.Fatalf("status %d", res.status)
				}
				if res.sum != sumOf(body) {
					t.Fatalf("body of %d bytes read back wrong (%s)", n, res.kind)
				}
				want := "mem"
				switch {
				case n == 0:
					want = "none"
				case n >= spliceMin:
					want = "pipe"
				}
				if n > 1<<16 && res.kind == "mem" {
					// Legitimate: the body came in more pieces than
					// the pipe has buffers and was finished in memory.
					t.Logf("%d bytes: the pipe filled, finished in memory", n)
				} else if res.kind != want {
					t.Errorf("kind %s, want %s", res.kind, want)
				}
				readAnswer(t, c, sumOf(body))
			})
		}
	}
}

// TestSplicedBodyFailures: a stalled client gets 408 after body_timeout,
// one that leaves mid-body is dropped quietly, and neither leaves a pipe
// or a descriptor behind; a body over max_body is refused before any
// pipe is taken.
func TestSplicedBodyFailures(t *testing.T) {
	p := splicePolicy(t, 64<<10, 200*time.Millisecond, 128<<10)
	p.max = 100 << 10
	addr, results := spliceServer(t, p)
	// One body through first, so the pool has a free pipe and h1 its
	// RawConn: the fd count below then sees only what failures leave.
	oneBody(t, addr, results, 20000)
	fds := openFDs(t)
	pipes := p.pipes.Open()

	t.Run("stall", func(t *testing.T) {
		c := dialT(t, addr)
		writeT(t, c, []byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30000\r\n\r\n"+strings.Repeat("a", 20000)))
		res := <-results
		res.release()
		if res.status != http.StatusRequestTimeout {
			t.Fatalf("status %d, want 408", res.status)
		}
	})
	t.Run("client leaves", func(t *testing.T) {
		c := dialT(t, addr)
		writeT(t, c, []byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30000\r\n\r\n"+strings.Repeat("a", 20000)))
		c.Close()
		res := <-results
		res.release()
		if res.status != -1 {
			t.Fatalf("status %d, want none (client gone)", res.status)
		}
	})
	t.Run("over max_body", func(t *testing.T) {
		c := dialT(t, addr)
		writeT(t, c, []byte(fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 200<<10)))
		res := <-results
		res.release()
		if res.status != 413 {
			t.Fatalf("status %d, want 413", res.status)
		}
	})
	// The failed pipes were closed, not pooled: at most the one free
	// pipe is open, and descriptors are back where they were.
	if got := p.pipes.Open(); got > pipes {
		t.Errorf("%d pipes open after the failures, %d before", got, pipes)
	}
	waitUntilT(t, func() bool { return openFDs(t) <= fds }, "descriptors back to %d", fds)

	// A good body after the failures still goes through a pipe.
	if kind := oneBody(t, addr, results, 30000); kind != "pipe" {
		t.Errorf("after failures: kind %s, want pipe", kind)
	}
}

// TestSplicedPipeReuse: an emptied pipe goes back to the pool and the
// next body takes it (no pipe2 per request).
func TestSplicedPipeReuse(t *testing.T) {
	p := splicePolicy(t, 64<<10, 5*time.Second, 128<<10)
	addr, results := spliceServer(t, p)
	for range 5 {
		if kind := oneBody(t, addr, results, 40000); kind != "pipe" {
			t.Fatalf("kind %s, want pipe", kind)
		}
	}
	if got := p.pipes.Open(); got != 1 {
		t.Errorf("%d pipes made for 5 sequential bodies, want 1", got)
	}
}

// oneBody sends a random body of n bytes on a new connection, checks the
// answer and returns how it was buffered.
func oneBody(t *testing.T, addr string, results chan spliceResult, n int) string {
	t.Helper()
	body := randomBody(t, n)
	c := dialT(t, addr)
	writeT(t, c, append([]byte(fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", n)), body...))
	res := <-results
	res.release()
	if res.sum != sumOf(body) {
		t.Fatalf("body of %d read back wrong (%s, status %d)", n, res.kind, res.status)
	}
	readAnswer(t, c, sumOf(body))
	c.Close()
	return res.kind
}

func dialT(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func writeT(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func readAnswer(t *testing.T, c net.Conn, want string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(got, []byte(want)) {
		t.Fatalf("answer %d %q, want 200 %q", resp.StatusCode, got, want)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

// waitUntilT polls cond for up to 5 s.
func waitUntilT(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Errorf("timed out: "+format, args...)
}
