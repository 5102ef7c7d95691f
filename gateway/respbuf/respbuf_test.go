package respbuf

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// client is the client side of an answer: like a socket, it takes Direct
// bytes at once; further writes wait until open is closed (a client that
// does not read). It records what it got.
type client struct {
	h    http.Header
	open chan struct{}

	mu      sync.Mutex
	code    int
	codes   []int // every WriteHeader, 1xx included
	got     bytes.Buffer
	flushes []int // got.Len() at each Flush
	failAt  int   // a write that would pass this many bytes fails (0 = never)
}

var errGone = errors.New("client gone")

var h1 = &http.Request{ProtoMajor: 1, ProtoMinor: 1}

func newClient(reading bool) *client {
	c := &client{h: http.Header{}, open: make(chan struct{})}
	if reading {
		close(c.open)
	}
	return c
}

func (c *client) Header() http.Header { return c.h }
func (c *client) WriteHeader(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.codes = append(c.codes, code)
	if c.code == 0 {
		c.code = code
	}
}

func (c *client) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.got.Len()+len(p) > Direct {
		c.mu.Unlock()
		<-c.open
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	if c.failAt > 0 && c.got.Len()+len(p) > c.failAt {
		return 0, errGone
	}
	return c.got.Write(p)
}

func (c *client) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushes = append(c.flushes, c.got.Len())
}

func (c *client) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.got.Bytes())
}

// pattern is n bytes that show any reordering or loss.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// writeAll writes b in chunks of size, as the runners' exchanges do, and
// reports the first error (nil when all of b was taken).
func writeAll(w io.Writer, b []byte, size int) error {
	for len(b) > 0 {
		k := min(size, len(b))
		if _, err := w.Write(b[:k]); err != nil {
			return err
		}
		b = b[k:]
	}
	return nil
}

// within runs f and fails the test if it does not return within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: not done within %v", what, d)
	}
}

// TestSmallAnswerGoesStraightThrough: an answer within Direct reaches the
// client during the app's Write, with no spool.
func TestSmallAnswerGoesStraightThrough(t *testing.T) {
	c := newClient(true)
	w := New(c, h1, &Options{Memory: 64 << 10, TempMax: 1 << 20, Dir: t.TempDir()})
	w.Write([]byte("Hello, world!"))
	if w.sp != nil {
		t.Fatal("a 13-byte answer started a spool")
	}
	if got := string(c.bytes()); got != "Hello, world!" || c.code != 200 {
		t.Fatalf("client got %d %q before Finish", c.code, got)
	}
	w.Finish()
}

// TestHTTP2Spools: an HTTP/2 answer is spooled from its first byte, since
// a client may hold the connection window at zero.
func TestHTTP2Spools(t *testing.T) {
	c := newClient(true)
	w := New(c, &http.Request{ProtoMajor: 2}, &Options{Memory: 64 << 10, Dir: t.TempDir()})
	w.Write([]byte("Hello, world!"))
	if w.sp == nil {
		t.Fatal("an HTTP/2 answer went straight through")
	}
	w.Finish()
	if got := string(c.bytes()); got != "Hello, world!" {
		t.Fatalf("client got %q", got)
	}
}

// TestHotPathAllocs: wrapping a small answer allocates nothing.
func TestHotPathAllocs(t *testing.T) {
	c := newClient(true)
	o := &Options{Memory: 64 << 10, TempMax: 1 << 20, Dir: t.TempDir()}
	body := []byte("Hello, world!")
	allocs := testing.AllocsPerRun(1000, func() {
		w := New(c, h1, o)
		w.WriteHeader(200)
		w.Write(body)
		w.Flush()
		w.Finish()
		c.got.Reset()
		c.flushes = c.flushes[:0]
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per answer, want 0", allocs)
	}
}

// TestSpoolFreesTheApp: with a client that reads nothing, the app still
// writes its whole answer (memory, then the temp file); once the client
// reads, it gets exactly that answer.
func TestSpoolFreesTheApp(t *testing.T) {
	for i, tc := range []struct {
		name    string
		memory  int
		tempMax int64
		size    int
		chunk   int
	}{
		{"memory only", 1 << 20, 0, 512 << 10, 64 << 10},
		{"memory then file", 64 << 10, 8 << 20, 4 << 20, 64 << 10},
		{"odd chunks wrap the ring", 10000, 1 << 20, 300001, 4093},
		{"one big write", 16 << 10, 2 << 20, 1 << 20, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(false)
			dir := filepath.Join(t.TempDir(), "spool")
			w := New(c, h1, &Options{Memory: tc.memory, TempMax: tc.tempMax, Dir: dir})
			want := pattern(tc.size + i)
			within(t, 10*time.Second, "the app's writes", func() {
				if err := writeAll(w, want, tc.chunk); err != nil {
					t.Errorf("write: %v", err)
				}
			})
			if tc.tempMax > 0 {
				fi, err := os.Stat(dir)
				if err != nil || fi.Mode().Perm() != 0o700 {
					t.Errorf("spool dir: %v, %v; want mode 0700", fi, err)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Errorf("temp files visible in the spool dir: %v", ents)
				}
			}
			close(c.open)
			within(t, 10*time.Second, "Finish", w.Finish)
			if got := c.bytes(); !bytes.Equal(got, want) {
				t.Fatalf("client got %d bytes (sha %x), want %d (sha %x)", len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
			}
		})
	}
}

// TestBackPressure: past the memory and the temp file limit the app's
// write waits for the client instead of growing the spool; the file is
// reused once drained, and the answer arrives whole.
func TestBackPressure(t *testing.T) {
	c := newClient(false)
	w := New(c, h1, &Options{Memory: 8 << 10, TempMax: 16 << 10, Dir: t.TempDir()})
	want := pattern(256 << 10)
	// Direct bytes go through, the next ones start the spool.
	if err := writeAll(w, want[:Direct+4<<10], 4<<10); err != nil || w.sp == nil {
		t.Fatalf("write: %v; spooling %v", err, w.sp != nil)
	}
	sp := w.sp
	wrote := make(chan error, 1)
	go func() { wrote <- writeAll(w, want[Direct+4<<10:], 4<<10) }()
	select {
	case err := <-wrote:
		t.Fatalf("the app wrote 256 KiB into a 8 KiB + 16 KiB spool (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	if n := sp.size(); n > 8<<10+16<<10 {
		t.Fatalf("spool holds %d bytes, over its bounds", n)
	}
	close(c.open)
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the app's write stayed blocked after the client read")
	}
	w.Finish()
	if got := c.bytes(); !bytes.Equal(got, want) {
		t.Fatalf("client got %d bytes, want %d, or different bytes", len(got), len(want))
	}
}

// size is what the spool holds now.
func (s *spool) size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.n) + s.fwr - s.frd
}

// TestClientGone: once a write to the client fails, the app's writes get
// that error (what a synchronous write would have said), the spool is
// dropped, and Finish returns.
func TestClientGone(t *testing.T) {
	c := newClient(false)
	c.failAt = 100 << 10
	w := New(c, h1, &Options{Memory: 64 << 10, TempMax: 1 << 20, Dir: t.TempDir()})
	if err := writeAll(w, pattern(512<<10), 16<<10); err != nil {
		t.Fatalf("write before the client failed: %v", err)
	}
	close(c.open)
	var err error
	within(t, 10*time.Second, "writes after the client failed", func() {
		for range 1000 {
			if _, err = w.Write(pattern(16 << 10)); err != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
	})
	if !errors.Is(err, errGone) {
		t.Fatalf("write after the client failed: %v, want %v", err, errGone)
	}
	within(t, 10*time.Second, "Finish", w.Finish)
}

// TestFlushKeepsOrder: a flush while spooling reaches the client after
// every byte written before it.
func TestFlushKeepsOrder(t *testing.T) {
	c := newClient(false)
	w := New(c, h1, &Options{Memory: 16 << 10, TempMax: 1 << 20, Dir: t.TempDir()})
	writeAll(w, pattern(100<<10), 8<<10)
	w.Flush()
	close(c.open)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		f := append([]int(nil), c.flushes...)
		c.mu.Unlock()
		if len(f) > 0 {
			if f[0] != 100<<10 {
				t.Fatalf("flushed at %d bytes, want after all %d", f[0], 100<<10)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the app's Flush never reached the client before Finish")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.Finish()
}

// TestAccelBufferingNo: "X-Accel-Buffering: no" from the app turns
// buffering off for its answer and is not sent (nginx).
func TestAccelBufferingNo(t *testing.T) {
	for _, tc := range []struct{ value, sent string }{{"no", ""}, {"No", ""}, {"yes", ""}} {
		c := newClient(true)
		w := New(c, h1, &Options{Memory: 16 << 10, TempMax: 1 << 20, Dir: t.TempDir()})
		w.Header().Set("X-Accel-Buffering", tc.value)
		w.WriteHeader(200)
		writeAll(w, pattern(100<<10), 8<<10)
		if spooled := w.sp != nil; spooled != (tc.value == "yes") {
			t.Errorf("X-Accel-Buffering: %s: spooled %v", tc.value, spooled)
		}
		if v, ok := c.h["X-Accel-Buffering"]; ok {
			t.Errorf("X-Accel-Buffering: %s reached the client as %q", tc.value, v)
		}
		w.Finish()
	}
}

// TestInterimPassesThrough: a 103 (early hints) goes to the client side at
// once and is not the answer's head: the final head's X-Accel-Buffering is
// still obeyed.
func TestInterimPassesThrough(t *testing.T) {
	c := newClient(true)
	w := New(c, h1, &Options{Memory: 16 << 10, TempMax: 1 << 20, Dir: t.TempDir()})
	w.WriteHeader(http.StatusEarlyHints)
	if w.headed {
		t.Fatal("a 103 was taken for the final head")
	}
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	writeAll(w, pattern(100<<10), 8<<10)
	spooled := w.sp != nil
	w.Finish()
	if spooled || c.h["X-Accel-Buffering"] != nil {
		t.Errorf("X-Accel-Buffering: no after a 103: spooled %v, header %q", spooled, c.h["X-Accel-Buffering"])
	}
	if fmt.Sprint(c.codes) != "[103 200]" {
		t.Errorf("the client side got %v, want [103 200]", c.codes)
	}
}

// TestSendTimeout: a real HTTP/1.1 client that never reads loses its
// answer after SendTimeout without progress: the app's writes fail and the
// handler returns, the temp file with it.
func TestSendTimeout(t *testing.T) {
	dir := t.TempDir()
	finished := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := New(rw, r, &Options{Memory: 64 << 10, TempMax: 64 << 20, Dir: dir, SendTimeout: 300 * time.Millisecond})
		err := writeAll(w, pattern(32<<20), 64<<10)
		if err == nil { // the app is done before the client has failed
			time.Sleep(time.Second)
			_, err = w.Write([]byte("x"))
		}
		w.Finish()
		finished <- err
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-finished:
		if err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("app's write after the send timeout: %v, want a timeout", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the handler did not return after the send timeout")
	}
	// What the client got is a prefix of the answer, then the end.
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	n, _ := io.Copy(io.Discard, resp.Body)
	if n >= 32<<20 {
		t.Fatalf("client got the whole answer (%d bytes) after the send timeout", n)
	}
}

// TestKeepAliveAfterSpool: a spooled answer on a kept-alive connection
// leaves no write deadline behind for the next one.
func TestKeepAliveAfterSpool(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := New(rw, r, &Options{Memory: 64 << 10, TempMax: 64 << 20, Dir: t.TempDir(), SendTimeout: 200 * time.Millisecond})
		if r.URL.Path == "/big" {
			writeAll(w, pattern(1<<20), 64<<10)
		} else {
			time.Sleep(500 * time.Millisecond)
			writeAll(w, pattern(100<<10), 64<<10)
		}
		w.Finish()
	}))
	defer srv.Close()
	for _, path := range []string{"/big", "/slow", "/big"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v after %d bytes", path, err, len(b))
		}
	}
}
