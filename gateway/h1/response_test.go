package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestResponseFraming checks what goes on the wire for each way a
// handler can answer: the framing headers, the body, and whether the
// connection stays open.
func TestResponseFraming(t *testing.T) {
	big := strings.Repeat("z", 3*preSize)
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			io.WriteString(w, "hello")
		case "/big":
			io.WriteString(w, big)
		case "/flush":
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		case "/declared":
			w.Header().Set("Content-Length", "3")
			io.WriteString(w, "abc")
		case "/short":
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "abc")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			if _, err := io.WriteString(w, "x"); err != http.ErrBodyNotAllowed {
				t.Errorf("write on 204: %v", err)
			}
		case "/trailers":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "data")
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Late", "7")
		case "/te":
			w.Header().Set("Transfer-Encoding", "identity") // the server's to choose
			io.WriteString(w, "x")
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "x")
		case "/early-hints":
			w.Header().Set("Link", "</s.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "x")
		}
	}))
	for _, tc := range []struct {
		req, method   string
		status        int
		cl            int64
		te            []string
		body          string
		close         bool
		trailer, more string
	}{
		{req: "GET /small HTTP/1.1", status: 200, cl: 5, body: "hello"},
		{req: "HEAD /small HTTP/1.1", method: "HEAD", status: 200, cl: 5},
		{req: "GET /big HTTP/1.1", status: 200, cl: -1, te: []string{"chunked"}, body: big},
		{req: "HEAD /big HTTP/1.1", method: "HEAD", status: 200, cl: int64(len(big))}, // net/http: none
		{req: "GET /big HTTP/1.0", status: 200, cl: -1, body: big, close: true},
		{req: "GET /small HTTP/1.0", status: 200, cl: 5, body: "hello", close: true},
		{req: "GET /flush HTTP/1.1", status: 200, cl: -1, te: []string{"chunked"}, body: "ab"},
		{req: "GET /declared HTTP/1.1", status: 200, cl: 3, body: "abc"},
		{req: "GET /nocontent HTTP/1.1", status: 204, cl: 0},
		{req: "GET /trailers HTTP/1.1", status: 200, cl: -1, te: []string{"chunked"}, body: "data", trailer: "X-Sum", more: "X-Late"},
		{req: "GET /te HTTP/1.1", status: 200, cl: 1, body: "x"},
		{req: "GET /close HTTP/1.1", status: 200, cl: 1, body: "x", close: true},
		{req: "GET /early-hints HTTP/1.1", status: 200, cl: 1, body: "x"},
	} {
		t.Run(tc.req, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			c, br := dial(t, addr)
			io.WriteString(c, tc.req+"\r\nHost: x\r\n\r\n")
			resp, body := readResponse(t, br, method)
			switch {
			case resp.StatusCode != tc.status || resp.ContentLength != tc.cl || body != tc.body:
				t.Fatalf("got %d cl=%d %.20q, want %d cl=%d %.20q", resp.StatusCode, resp.ContentLength, body, tc.status, tc.cl, tc.body)
			case strings.Join(resp.TransferEncoding, ",") != strings.Join(tc.te, ","):
				t.Fatalf("Transfer-Encoding %v, want %v", resp.TransferEncoding, tc.te)
			case resp.Close != tc.close:
				t.Fatalf("close=%v, want %v", resp.Close, tc.close)
			case resp.Header.Get("Date") == "":
				t.Fatal("no Date")
			case resp.Header.Get("Content-Type") != "" && tc.req != "GET /trailers HTTP/1.1":
				t.Fatalf("Content-Type %q: h1 must not sniff", resp.Header.Get("Content-Type"))
			case tc.trailer != "" && (resp.Trailer.Get(tc.trailer) != "42" || resp.Trailer.Get(tc.more) != "7"):
				t.Fatalf("trailers %v", resp.Trailer)
			}
		})
	}
	t.Run("short Content-Length closes", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.Body); err != io.ErrUnexpectedEOF {
			t.Fatalf("body read: %v, want unexpected EOF at the close", err)
		}
	})
	t.Run("103 before 200", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "GET /early-hints HTTP/1.1\r\nHost: x\r\n\r\n")
		if line, _ := br.ReadString('\n'); line != "HTTP/1.1 103 Early Hints\r\n" {
			t.Fatalf("first line %q", line)
		}
	})
}

// TestSendfile: ReadFrom of a file with a declared length sends the file
// (through the connection's ReadFrom, sendfile(2) on Linux) and keeps the
// connection.
func TestSendfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	content := strings.Repeat("0123456789", 50000)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, path) // sets Content-Length, then io.CopyN → ReadFrom
	}))
	c, br := dial(t, addr)
	for range 2 {
		io.WriteString(c, "GET /f HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := readResponse(t, br, "GET")
		if body != content || resp.ContentLength != int64(len(content)) || resp.Close {
			t.Fatalf("got %d bytes cl=%d close=%v", len(body), resp.ContentLength, resp.Close)
		}
	}
}

// TestResponseController: the deadline, flush and full-duplex methods are
// found by http.ResponseController, through a wrapper's Unwrap as the
// gateway's statusWriter has.
func TestResponseController(t *testing.T) {
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(unwrapper{w})
		for name, err := range map[string]error{
			"SetReadDeadline":  rc.SetReadDeadline(time.Now().Add(time.Minute)),
			"SetWriteDeadline": rc.SetWriteDeadline(time.Now().Add(time.Minute)),
			"EnableFullDuplex": rc.EnableFullDuplex(),
		} {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		io.WriteString(w, "x")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := readResponse(t, br, "GET"); body != "x" {
		t.Fatalf("body %q", body)
	}
}

type unwrapper struct{ http.ResponseWriter }

func (u unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// TestHijack: the handler gets the connection, with the bytes the client
// sent past the head, and the server leaves it alone.
func TestHijack(t *testing.T) {
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		line, _ := rw.ReadString('\n')
		rw.WriteString("echo " + line)
		rw.Flush()
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	line, err := bufio.NewReader(br).ReadString('\n')
	if err != nil || line != "echo early\n" {
		t.Fatalf("got %q, %v", line, err)
	}
}

// TestBodyKinds: Content-Length and chunked bodies, read by the handler
// in small pieces, on one keep-alive connection.
func TestBodyKinds(t *testing.T) {
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var got []byte
		p := make([]byte, 7)
		for {
			n, err := r.Body.Read(p)
			got = append(got, p[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
		}
		w.Write(got)
	}))
	c, br := dial(t, addr)
	long := strings.Repeat("L", 100<<10)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 102400\r\n\r\n"+long)
	if _, body := readResponse(t, br, "POST"); body != long {
		t.Fatalf("Content-Length body: %d bytes", len(body))
	}
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n19000\r\n"+long+"\r\n0\r\n\r\n")
	if _, body := readResponse(t, br, "POST"); body != "abc"+long {
		t.Fatalf("chunked body: %d bytes", len(body))
	}
}

// TestBodyPumpConcurrent: a handler that reads the body on another
// goroutine while it writes and flushes its answer (as gw's body pump
// does) is race-free, also with a 100-continue owed: run with -race.
func TestBodyPumpConcurrent(t *testing.T) {
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := make(chan int, 1)
		go func() { // the handler waits for it below
			b, _ := io.ReadAll(r.Body)
			got <- len(b)
		}()
		io.WriteString(w, "head first\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, strings.Repeat("n", <-got))
	}))
	for _, expect := range []string{"", "Expect: 100-continue\r\n"} {
		c, br := dial(t, addr)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\n"+expect+"Content-Length: 300000\r\n\r\n")
		go func() { // ends when the body is written or the connection closes
			io.WriteString(c, strings.Repeat("b", 300000))
		}()
		_, body := readResponse(t, br, "POST")
		if body != "head first\n"+strings.Repeat("n", 300000) {
			t.Fatalf("%q: got %d bytes", expect, len(body))
		}
	}
}

// TestContextEndsWithHandler: the request context is cancelled once the
// handler returns, as net/http's is.
func TestContextEndsWithHandler(t *testing.T) {
	ctxs := make(chan context.Context, 1)
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Err() != nil {
			t.Error("context ended before the handler returned")
		}
		ctxs <- r.Context()
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	readResponse(t, br, "GET")
	waitCtx(t, <-ctxs)
}

// TestHijackAfterWatch: a handler that hijacks after the idle watch has
// started (the client sent nothing past the head, the handler took longer
// than watchAfter) gets a connection without the watch's abort deadline.
func TestHijackAfterWatch(t *testing.T) {
	addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * watchAfter) // the watch's read is under way
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		line, err := rw.ReadString('\n')
		if err != nil {
			t.Errorf("read after hijack: %v", err)
		}
		rw.WriteString("echo " + line)
		rw.Flush()
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	io.WriteString(c, "late\n")
	line, err := bufio.NewReader(br).ReadString('\n')
	if err != nil || line != "echo late\n" {
		t.Fatalf("got %q, %v", line, err)
	}
}

// TestHandover: the socket is given up whole only when nothing past the
// head was read (not sent with the head, not read by the watch); once
// hijacked, the server forgets the connection without closing the socket,
// so another descriptor of it (another process's, in gw) serves it.
func TestHandover(t *testing.T) {
	for _, tc := range []struct {
		name  string
		early string        // sent with the head
		later string        // sent in its own write right after the head
		wait  time.Duration // before Handover: the watch reads what came
		want  bool
	}{
		{"nothing past the head", "", "", 0, true},
		{"bytes with the head", "early\n", "", 0, false},
		{"byte read by the watch", "", "x", 3 * watchAfter, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(tc.wait)
				tc2, ok := w.(interface {
					Handover() (*net.TCPConn, bool)
				}).Handover()
				if !ok {
					io.WriteString(w, "relayed\n")
					return
				}
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil || conn != net.Conn(tc2) {
					t.Errorf("hijack: %v (same conn: %v)", err, conn == net.Conn(tc2))
					return
				}
				f, err := tc2.File() // the other owner's descriptor
				conn.Close()         // the server's: the socket lives on in f
				if err != nil {
					t.Error(err)
					return
				}
				go func() {
					defer f.Close()
					io.WriteString(f, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
					line, _ := bufio.NewReader(f).ReadString('\n')
					io.WriteString(f, "echo "+line)
				}()
			}))
			c, br := dial(t, addr)
			io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"+tc.early)
			if tc.later != "" {
				io.WriteString(c, tc.later)
			}
			resp, body := readResponse(t, br, "GET")
			if got := resp.StatusCode == 101; got != tc.want {
				t.Fatalf("handed over: %v (%s %q), want %v", got, resp.Status, body, tc.want)
			}
			if !tc.want {
				return
			}
			io.WriteString(c, "late\n")
			if line, err := br.ReadString('\n'); err != nil || line != "echo late\n" {
				t.Fatalf("through the other descriptor: %q, %v", line, err)
			}
		})
	}
}
