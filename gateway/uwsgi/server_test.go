package uwsgi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuf is a goroutine-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testServer struct {
	srv  *Server
	addr string // unix socket path
	log  *logBuf
}

// start serves h on a unix socket in t.TempDir().
func start(t *testing.T, h http.Handler, opts ...func(*Server)) *testServer {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "uwsgi.sock")
	ln, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	lb := &logBuf{}
	s := &Server{Handler: h, Log: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, o := range opts {
		o(s)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }() // ends at Shutdown in Cleanup
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve returned %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", lb.String())
		}
	})
	return &testServer{srv: s, addr: addr, log: lb}
}

func (ts *testServer) dial(t *testing.T) *net.UnixConn {
	t.Helper()
	c, err := net.Dial("unix", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second)) // nothing may hang
	t.Cleanup(func() { c.Close() })
	return c.(*net.UnixConn)
}

// roundTrip sends raw bytes, half-closes, and reads everything back.
func (ts *testServer) roundTrip(t *testing.T, raw []byte) []byte {
	t.Helper()
	c := ts.dial(t)
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("reading the response: %v", err)
	}
	return out
}

func packet(t testing.TB, m1 uint8, kv ...string) []byte {
	var vars []byte
	for i := 0; i < len(kv); i += 2 {
		vars = AppendVar(vars, kv[i], kv[i+1])
	}
	p, err := AppendPacket(nil, m1, 0, vars)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func get(path string, extra ...string) []string {
	return append([]string{"REQUEST_METHOD", "GET", "REQUEST_URI", path, "PATH_INFO", path, "QUERY_STRING", "",
		"CONTENT_TYPE", "", "CONTENT_LENGTH", "", "SERVER_PROTOCOL", "HTTP/1.1", "HTTP_HOST", "example.com"}, extra...)
}

func parse(t *testing.T, out []byte) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
	if err != nil {
		t.Fatalf("response %q: %v", out, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("response body: %v", err)
	}
	return resp, string(b)
}

// seen records what the handler saw of each request.
type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
	errs []error
	ps   []map[string]string
}

func (s *seen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	s.mu.Lock()
	s.reqs, s.body, s.errs, s.ps = append(s.reqs, r), append(s.body, string(b)), append(s.errs, err), append(s.ps, Params(r.Context()))
	s.mu.Unlock()
	fmt.Fprintf(w, "%s %s body=%d err=%v", r.Method, r.URL.Path, len(b), err)
}

func (s *seen) last(t *testing.T) (*http.Request, string, error, map[string]string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("handler never ran")
	}
	i := len(s.reqs) - 1
	return s.reqs[i], s.body[i], s.errs[i], s.ps[i]
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func TestMinimalGET(t *testing.T) {
	var h seen
	ts := start(t, &h)
	resp, body := parse(t, ts.roundTrip(t, minimalGET))
	if resp.StatusCode != 200 || body != "GET / body=0 err=<nil>" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length %d for a %d-byte body", resp.ContentLength, len(body))
	}
	r, _, _, p := h.last(t)
	if r.RequestURI != "/" || len(p) != 2 {
		t.Errorf("RequestURI %q, params %v", r.RequestURI, p)
	}
}

// TestConformance runs protocols.md §1.6's vectors that end in a request.
func TestConformance(t *testing.T) {
	var h seen
	ts := start(t, &h)
	many := get("/many")
	for i := range 300 {
		many = append(many, fmt.Sprintf("HTTP_X_V%03d", i), fmt.Sprint(i))
	}
	fiveK := get("/5k", "HTTP_X_BIG", strings.Repeat("b", 5*1024))
	tests := []struct {
		name  string
		raw   []byte
		check func(t *testing.T, r *http.Request, p map[string]string)
	}{
		{"datasize 65535", packet(t, 0, "REQUEST_METHOD", "GET", "REQUEST_URI", "/max", "K", strings.Repeat("x", MaxVarsSize-4-14-3-4-11-4-4-1)),
			func(t *testing.T, r *http.Request, p map[string]string) {
				if len(p["K"]) != MaxVarsSize-4-14-3-4-11-4-4-1 {
					t.Errorf("K is %d bytes", len(p["K"]))
				}
			}},
		{"5 KiB vars block (uWSGI's 4 KiB default refuses it)", packet(t, 0, fiveK...),
			func(t *testing.T, r *http.Request, p map[string]string) {
				if len(r.Header.Get("X-Big")) != 5*1024 {
					t.Errorf("X-Big is %d bytes", len(r.Header.Get("X-Big")))
				}
			}},
		{"300 vars", packet(t, 0, many...), func(t *testing.T, r *http.Request, p map[string]string) {
			if r.Header.Get("X-V299") != "299" || len(p) != 308 {
				t.Errorf("X-V299 %q, %d params", r.Header.Get("X-V299"), len(p))
			}
		}},
		{"empty value survives", packet(t, 0, get("/e", "HTTP_X_E", "")...), func(t *testing.T, r *http.Request, p map[string]string) {
			if v, ok := r.Header["X-E"]; !ok || v[0] != "" {
				t.Errorf("X-E = %q, %v", v, ok)
			}
		}},
		{"duplicates joined (trap 4)", packet(t, 0, get("/d", "HTTP_COOKIE", "a=1", "HTTP_X_DUP", "x", "HTTP_COOKIE", "b=2", "HTTP_X_DUP", "y")...),
			func(t *testing.T, r *http.Request, p map[string]string) {
				if r.Header.Get("Cookie") != "a=1; b=2" || r.Header.Get("X-Dup") != "x, y" {
					t.Errorf("Cookie %q, X-Dup %q", r.Header.Get("Cookie"), r.Header.Get("X-Dup"))
				}
			}},
		{"CONTENT_LENGTH='' means no body (trap 3)", packet(t, 0, get("/nobody")...),
			func(t *testing.T, r *http.Request, p map[string]string) {
				if r.ContentLength != 0 || r.Body != http.NoBody {
					t.Errorf("ContentLength %d, Body %T", r.ContentLength, r.Body)
				}
			}},
		{"framing headers dropped (trap 2)", packet(t, 0, get("/t2", "HTTP_TRANSFER_ENCODING", "chunked", "HTTP_CONTENT_LENGTH", "9", "HTTP_PROXY", "x")...),
			func(t *testing.T, r *http.Request, p map[string]string) {
				if len(r.TransferEncoding) != 0 || r.Header.Get("Transfer-Encoding") != "" || r.Header.Get("Proxy") != "" || r.Header.Get("Content-Length") != "" {
					t.Errorf("header %v", r.Header)
				}
			}},
	}
	if h, _ := ParseHeader(tests[0].raw); h.DataSize != MaxVarsSize {
		t.Fatalf("datasize %d", h.DataSize)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := parse(t, ts.roundTrip(t, tc.raw))
			if resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /") {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			r, _, _, p := h.last(t)
			tc.check(t, r, p)
		})
	}
}

func TestShortBody(t *testing.T) {
	var h seen
	ts := start(t, &h)
	raw := append(packet(t, 0, "REQUEST_METHOD", "POST", "REQUEST_URI", "/p", "CONTENT_LENGTH", "5"), "ab"...)
	_, body := parse(t, ts.roundTrip(t, raw)) // roundTrip half-closes: EOF after 2 bytes
	_, got, err, _ := h.last(t)
	if !errors.Is(err, io.ErrUnexpectedEOF) || got != "ab" {
		t.Fatalf("handler read %q, %v; want \"ab\", io.ErrUnexpectedEOF", got, err)
	}
	if !strings.Contains(body, "unexpected EOF") {
		t.Errorf("response %q", body)
	}
}

func TestBodyStreamed(t *testing.T) {
	const size = 8 << 20
	sums := make(chan string, 1)
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hash := sha256.New()
		n, err := io.Copy(hash, r.Body)
		sums <- hex.EncodeToString(hash.Sum(nil))
		fmt.Fprintf(w, "%d %v", n, err)
	}))
	c := ts.dial(t)
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	want := sha256.Sum256(payload)
	go func() { // ends when the payload is written or the conn closes
		c.Write(packet(t, 0, "REQUEST_METHOD", "PUT", "REQUEST_URI", "/up", "CONTENT_LENGTH", fmt.Sprint(size)))
		c.Write(payload)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != fmt.Sprintf("%d <nil>", size) || <-sums != hex.EncodeToString(want[:]) {
		t.Fatalf("response %q", b)
	}
}

func TestHeaderSplitAcrossReads(t *testing.T) {
	var h seen
	ts := start(t, &h)
	c := ts.dial(t)
	c.Write(minimalGET[:2])
	time.Sleep(50 * time.Millisecond)
	c.Write(minimalGET[2:7])
	time.Sleep(50 * time.Millisecond)
	c.Write(minimalGET[7:])
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("response %v, %v", resp, err)
	}
}

// TestUWSGIVarsIgnored is trap 1: uWSGI 2.0.21 ran the file UWSGI_FILE named.
func TestUWSGIVarsIgnored(t *testing.T) {
	var h seen
	ts := start(t, &h)
	resp, _ := parse(t, ts.roundTrip(t, packet(t, 0, get("/x", "UWSGI_FILE", "/tmp/uw/evil.py", "UWSGI_SCRIPT", "evil:app")...)))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, _, _, p := h.last(t)
	for k := range p {
		if strings.HasPrefix(k, "UWSGI_") {
			t.Errorf("handler saw %s", k)
		}
	}
	want := "uwsgi: ignored UWSGI_FILE, UWSGI_SCRIPT (gw never loads code named by a client)"
	if got := ts.log.String(); strings.Count(got, "uwsgi: ignored") != 1 || !strings.Contains(got, want) {
		t.Errorf("log lacks %q once:\n%s", want, got)
	}
}

func TestModifiers(t *testing.T) {
	var h seen
	ts := start(t, &h)
	for _, m1 := range []uint8{0, 5, 7, 9, 14} {
		t.Run(fmt.Sprintf("accept %d", m1), func(t *testing.T) {
			resp, _ := parse(t, ts.roundTrip(t, packet(t, m1, get("/m")...)))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
	before := h.count()
	for _, m1 := range []uint8{10, 17, 18, 22, 26, 97, 98, 100, 101, 110, 111, 173, 200, 224, 255, 6, 30} {
		t.Run(fmt.Sprintf("refuse %d", m1), func(t *testing.T) {
			if out := ts.roundTrip(t, packet(t, m1, get("/m")...)); len(out) != 0 {
				t.Fatalf("answered %q", out)
			}
			if want := fmt.Sprintf("uwsgi: refused modifier1 %d (", m1); !strings.Contains(ts.log.String(), want) {
				t.Errorf("log lacks %q", want)
			}
		})
	}
	if h.count() != before {
		t.Error("the handler ran for a refused modifier")
	}
	if !strings.Contains(ts.log.String(), "refused modifier1 22 (raw code eval)") {
		t.Error("22 not named raw code eval")
	}
}

func TestRejectedPackets(t *testing.T) {
	var h seen
	ts := start(t, &h)
	tests := []struct {
		name, raw, log string
	}{
		{"datasize 0", "\x00\x00\x00\x00", "datasize 0"},
		{"zero-length key", "\x00\x06\x00\x00\x00\x00\x02\x00ab", "zero-length key"},
		{"key overruns", "\x00\x05\x00\x00\x09\x00abc", "key length 9 at offset 0 overruns"},
		{"value overruns", "\x00\x07\x00\x00\x01\x00a\x09\x00ab", "value length 9 at offset 3 overruns"},
		{"block cut short", "\x00\x10\x00\x00\x01\x00a", "vars block cut short"},
		{"header cut short", "\x00\x10", "packet header cut short"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if out := ts.roundTrip(t, []byte(tc.raw)); len(out) != 0 {
				t.Fatalf("answered %q", out)
			}
			if !strings.Contains(ts.log.String(), tc.log) {
				t.Errorf("log lacks %q", tc.log)
			}
		})
	}
	if h.count() != 0 {
		t.Error("the handler ran")
	}
	resp, _ := parse(t, ts.roundTrip(t, packet(t, 0, "REQUEST_METHOD", "GET", "REQUEST_URI", "/", "CONTENT_LENGTH", "x")))
	if resp.StatusCode != 400 {
		t.Errorf("bad CONTENT_LENGTH: %d", resp.StatusCode)
	}
}

func TestMaxVars(t *testing.T) {
	var h seen
	ts := start(t, &h, func(s *Server) { s.MaxVars = 1024 })
	resp, _ := parse(t, ts.roundTrip(t, packet(t, 0, get("/", "HTTP_X_BIG", strings.Repeat("b", 2000))...)))
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !strings.Contains(ts.log.String(), "over MaxVars (1024)") || h.count() != 0 {
		t.Errorf("log:\n%s", ts.log.String())
	}
}
