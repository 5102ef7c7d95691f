package gwtest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Raw is one client connection that writes bytes exactly as given, for the
// hostile-client tests: what net/http's client would refuse to send.
type Raw struct {
	t testing.TB
	net.Conn
	R *bufio.Reader
}

// Dial opens a raw connection to base ("http://127.0.0.1:PORT" or
// "127.0.0.1:PORT"); it is closed at cleanup. Every read and write is
// bounded by a 10 s deadline, so a server that hangs fails the test.
func Dial(t testing.TB, base string) *Raw {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &Raw{t: t, Conn: c, R: bufio.NewReader(c)}
}

// Send writes s; an error fails the test.
func (r *Raw) Send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.Conn, s); err != nil {
		r.t.Fatalf("raw write: %v", err)
	}
}

// Response reads one response (for a request of method) with its whole
// body; an error fails the test.
func (r *Raw) Response(method string) (*http.Response, string) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.R, &http.Request{Method: method})
	if err != nil {
		r.t.Fatalf("raw read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		r.t.Fatalf("raw read body: %v", err)
	}
	return resp, string(b)
}

// Rest reads until the server closes the connection (or the deadline) and
// returns what came.
func (r *Raw) Rest() string {
	b, _ := io.ReadAll(r.R)
	return string(b)
}
