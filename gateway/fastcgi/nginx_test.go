package fastcgi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func TestRealNginx(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/ignore") {
			w.WriteHeader(http.StatusForbidden) // the body stays unread
			return
		}
		sum := sha256.New()
		n, err := io.Copy(sum, r.Body)
		p := Params(r.Context())
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		if r.URL.Path == "/big" {
			w.Write(bytes.Repeat([]byte("z"), 300<<10))
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s %s %s host=%s cookie=%q dup=%q te=%q cl=%d/%s n=%d sha=%x err=%v sw=%s",
			r.Method, r.RequestURI, r.URL.Path, r.Host, r.Header.Get("Cookie"), r.Header.Get("X-Dup"),
			r.Header.Get("Transfer-Encoding"), r.ContentLength, p["CONTENT_LENGTH"], n, sum.Sum(nil), err, p["SERVER_SOFTWARE"])
	})
	addr := filepath.Join(t.TempDir(), "fcgi.sock")
	ln, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	s := &Server{Handler: h}
	go s.Serve(cl) // ends at Shutdown below
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	base := gwtest.StartNginx(t, "upstream gw { server unix:"+addr+"; keepalive 4; }",
		"location / { include /etc/nginx/fastcgi_params; fastcgi_pass gw; fastcgi_keep_conn on; }\n"+
			"location /nokeep/ { include /etc/nginx/fastcgi_params; fastcgi_pass unix:"+addr+"; }")
	get := func(req *http.Request) (*http.Response, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}

	req, _ := http.NewRequest("GET", base+"/f/a%20b?x=1", nil)
	req.Host = "Client.Example:8080"
	req.Header.Add("Cookie", "c1=1")
	req.Header.Add("Cookie", "c2=2")
	req.Header.Add("X-Dup", "x")
	req.Header.Add("X-Dup", "y")
	resp, body := get(req)
	want := `GET /f/a%20b?x=1 /f/a b host=client.example cookie="c1=1; c2=2" dup="x, y" te="" cl=0/ n=0`
	if resp.StatusCode != 201 || len(resp.Header["Set-Cookie"]) != 2 || !strings.HasPrefix(body, want) || !strings.Contains(body, "sw=nginx/") {
		t.Fatalf("%d %v\n%s\nwant prefix %s", resp.StatusCode, resp.Header, body, want)
	}

	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	req, _ = http.NewRequest("POST", base+"/up", bytes.NewReader(payload))
	_, body = get(req)
	if want := fmt.Sprintf("cl=%d/%d n=%d sha=%x err=<nil>", len(payload), len(payload), len(payload), sha256.Sum256(payload)); !strings.Contains(body, want) {
		t.Fatalf("1 MiB POST: %s\nwant %s", body, want)
	}

	// Chunked from the client: nginx buffers it and sends a length; the
	// Transfer-Encoding header it still forwards (trap 2) is dropped.
	req, _ = http.NewRequest("POST", base+"/chunked", io.MultiReader(strings.NewReader("hello")))
	if _, body = get(req); !strings.Contains(body, `te="" cl=5/5 n=5`) {
		t.Fatalf("chunked POST: %s", body)
	}

	req, _ = http.NewRequest("GET", base+"/big", nil)
	if resp, body = get(req); resp.StatusCode != 200 || len(body) != 300<<10 {
		t.Fatalf("300 KiB response: %d, %d bytes", resp.StatusCode, len(body))
	}

	// fastcgi_keep_conn on + keepalive: nginx reused one connection.
	if n := cl.n.Load(); n != 1 {
		t.Errorf("%d connections for 4 sequential requests, want 1 (FCGI_KEEP_CONN)", n)
	}

	// An early answer to an unread 4 MiB upload, with and without
	// FCGI_KEEP_CONN, reaches the client intact (no reset, no 502).
	big := bytes.Repeat([]byte("u"), 4<<20)
	for _, path := range []string{"/ignore", "/nokeep/ignore"} {
		req, _ = http.NewRequest("POST", base+path, bytes.NewReader(big))
		if resp, _ = get(req); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	req, _ = http.NewRequest("GET", base+"/nokeep/x", nil)
	if resp, body = get(req); resp.StatusCode != 201 || !strings.Contains(body, "GET /nokeep/x") {
		t.Errorf("without keep-conn: %d %s", resp.StatusCode, body)
	}
}

// TestCGIFCGI talks to the server with libfcgi's cgi-fcgi, a second,
// independent FastCGI client.
func TestCGIFCGI(t *testing.T) {
	bin := gwtest.RequireInterpreter(t, "cgi-fcgi")
	ts := start(t, echo)
	cmd := exec.Command(bin, "-bind", "-connect", ts.addr)
	cmd.Env = []string{"REQUEST_METHOD=POST", "REQUEST_URI=/cgi?x=1", "SERVER_PROTOCOL=HTTP/1.0",
		"CONTENT_LENGTH=5", "HTTP_HOST=cgi.example"}
	cmd.Stdin = strings.NewReader("hello")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.HasPrefix(string(out), "Status: 200 OK\r\n") || !strings.HasSuffix(string(out), `POST /cgi?x=1 host=cgi.example body="hello" err=<nil>`) {
		t.Fatalf("cgi-fcgi printed %q", out)
	}
}
