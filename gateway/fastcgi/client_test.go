package fastcgi

import (
	"bufio"
	"bytes"
	"context"
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

	"github.com/gwhq/gw/internal/fcgi"
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
	addr string
	log  *logBuf
}

// start serves h on a unix socket in t.TempDir().
func start(t *testing.T, h http.Handler, opts ...func(*Server)) *testServer {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "fcgi.sock")
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

// client is a hand-rolled FastCGI web server side.
type client struct {
	t  *testing.T
	c  net.Conn
	rd *fcgi.Reader
}

func (ts *testServer) dial(t *testing.T) *client {
	t.Helper()
	c, err := net.Dial("unix", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second)) // nothing may hang
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, rd: fcgi.NewReader(bufio.NewReader(c))}
}

func (cl *client) send(bs ...[]byte) {
	cl.t.Helper()
	for _, b := range bs {
		if _, err := cl.c.Write(b); err != nil {
			cl.t.Fatalf("send: %v", err)
		}
	}
}

func begin(id uint16, keep bool) []byte {
	return fcgi.AppendBeginRequest(nil, id, fcgi.RoleResponder, keep)
}

func params(id uint16, kv ...string) []byte {
	var e fcgi.ParamsEncoder
	e.Reset(nil, id)
	for i := 0; i < len(kv); i += 2 {
		e.Add(kv[i], kv[i+1])
	}
	b, err := e.Finish()
	if err != nil {
		panic(err)
	}
	return b
}

// nginxGET is roughly what nginx 1.22 with Debian's fastcgi_params sends.
func nginxGET(path string, extra ...string) []string {
	return append([]string{"QUERY_STRING", "", "REQUEST_METHOD", "GET", "CONTENT_TYPE", "", "CONTENT_LENGTH", "",
		"SCRIPT_NAME", path, "REQUEST_URI", path, "DOCUMENT_URI", path, "DOCUMENT_ROOT", "/srv",
		"SERVER_PROTOCOL", "HTTP/1.1", "REQUEST_SCHEME", "http", "GATEWAY_INTERFACE", "CGI/1.1",
		"SERVER_SOFTWARE", "nginx/1.22.1", "REMOTE_ADDR", "127.0.0.1", "REMOTE_PORT", "40000",
		"REMOTE_USER", "", "SERVER_ADDR", "127.0.0.1", "SERVER_PORT", "8080", "SERVER_NAME", "_",
		"REDIRECT_STATUS", "200", "HTTP_HOST", "example.com"}, extra...)
}

func stdin(id uint16, body []byte) []byte {
	var out bytes.Buffer
	w := &fcgi.StreamWriter{W: &out, Type: fcgi.TypeStdin, ID: id, Size: 32 << 10, Align: true}
	w.Write(body)
	w.Close()
	return out.Bytes()
}

// get sends a whole GET request.
func (cl *client) get(id uint16, keep bool, path string, extra ...string) {
	cl.send(begin(id, keep), params(id, nginxGET(path, extra...)...), stdin(id, nil))
}

// reply is what came back for one request.
type reply struct {
	stdout  []byte
	records int // STDOUT records with content
	largest int
	end     fcgi.EndRequest
}

// read collects records for id until its END_REQUEST.
func (cl *client) read(id uint16) reply {
	cl.t.Helper()
	var r reply
	for {
		h, content, err := cl.rd.Next()
		if err != nil {
			cl.t.Fatalf("waiting for END_REQUEST %d: %v", id, err)
		}
		if h.ID != id {
			cl.t.Fatalf("record %s for request %d while reading %d", h.Type, h.ID, id)
		}
		switch h.Type {
		case fcgi.TypeStdout:
			if len(content) > 0 {
				r.records++
				r.largest = max(r.largest, len(content))
			}
			r.stdout = append(r.stdout, content...)
		case fcgi.TypeEndRequest:
			if r.end, err = fcgi.ParseEndRequest(content); err != nil {
				cl.t.Fatal(err)
			}
			return r
		default:
			cl.t.Fatalf("unexpected %s", h.Type)
		}
	}
}

// response parses the CGI head on STDOUT.
func (r reply) response(t *testing.T) (*http.Response, string) {
	t.Helper()
	status, rest, ok := bytes.Cut(r.stdout, []byte("\r\n"))
	code, found := bytes.CutPrefix(status, []byte("Status: "))
	if !ok || !found {
		t.Fatalf("no Status line in %q", r.stdout[:min(len(r.stdout), 100)])
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader("HTTP/1.1 "+string(code)+"\r\n"), bytes.NewReader(rest))), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// closed reports whether the server closed the connection (EOF) within d.
func (cl *client) closed(d time.Duration) bool {
	cl.c.SetReadDeadline(time.Now().Add(d))
	_, _, err := cl.rd.Next()
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || (err != nil && strings.Contains(err.Error(), "reset"))
}

// echo answers with what it saw.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s host=%s body=%q err=%v", r.Method, r.RequestURI, r.Host, b, err)
})
