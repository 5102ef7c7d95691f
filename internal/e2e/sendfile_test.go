package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// sendfileRoot makes a root with a 1 MiB file, a file outside it, and a
// symlink in the root leading to that one.
func sendfileRoot(t *testing.T) (root, outside string, data []byte) {
	t.Helper()
	root, outside = t.TempDir(), filepath.Join(t.TempDir(), "secret.txt")
	data = bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	if err := os.WriteFile(filepath.Join(root, "report.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "leak.txt")); err != nil {
		t.Fatal(err)
	}
	return root, outside, data
}

// sendfileApp starts one app with root as its only sendfile root.
func sendfileApp(t *testing.T, root, app string, extra ...string) *gwtest.Server {
	t.Helper()
	cfg := fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
apps:
  - name: app
    mount: /a
    workers: 1
    threads: 1
    sendfile: [%s]
    env: { SENDFILE_ROOT: %s }
%s`, root, root, strings.Join(append([]string{"    path: " + app}, extra...), "\n"))
	return gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
}

// checkSendfile asks for the file at url and checks what gw made of the
// app's answer: the whole file, a range, a conditional, the app's headers.
func checkSendfile(t *testing.T, s *gwtest.Server, url string, data []byte, ctype string) {
	t.Helper()
	resp, body := do(t, mustReq("GET", url, nil))
	if resp.StatusCode != 200 || body != string(data) {
		t.Fatalf("GET: %d, %d bytes, want 200 and %d\n%s", resp.StatusCode, len(body), len(data), s.Log())
	}
	if cl := resp.Header.Get("Content-Length"); cl != fmt.Sprint(len(data)) {
		t.Errorf("Content-Length %q, want %d", cl, len(data))
	}
	if got := resp.Header.Get("Content-Type"); got != ctype {
		t.Errorf("Content-Type %q, want the app's %q", got, ctype)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "attachment") {
		t.Errorf("Content-Disposition %q lost", cd)
	}
	for _, h := range []string{"X-Sendfile", "X-Accel-Redirect"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("%s %q reached the client", h, v)
		}
	}
	req := mustReq("GET", url, nil)
	req.Header.Set("Range", "bytes=16-31")
	if resp, body := do(t, req); resp.StatusCode != 206 || body != string(data[16:32]) {
		t.Errorf("Range: %d %q", resp.StatusCode, body)
	}
	etag := resp.Header.Get("ETag")
	req = mustReq("GET", url, nil)
	req.Header.Set("If-None-Match", etag)
	if resp, _ := do(t, req); etag == "" || resp.StatusCode != 304 {
		t.Errorf("If-None-Match %q: %d, want 304", etag, resp.StatusCode)
	}
	req = mustReq("GET", url, nil)
	req.Header.Set("If-Modified-Since", resp.Header.Get("Last-Modified"))
	if resp, _ := do(t, req); resp.StatusCode != 304 {
		t.Errorf("If-Modified-Since: %d, want 304", resp.StatusCode)
	}
}

// refused checks that asking for path is a plain 500 and that gw's log
// names the path.
func refused(t *testing.T, s *gwtest.Server, url, path string) {
	t.Helper()
	resp, body := do(t, mustReq("GET", url, nil))
	if resp.StatusCode != 500 || strings.Contains(body, path) || strings.Contains(body, "secret") {
		t.Errorf("%s: %d %q, want a plain 500", url, resp.StatusCode, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Log(), path) {
		if time.Now().After(deadline) {
			t.Errorf("the log does not name %q:\n%s", path, s.Log())
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// slotFreed checks that the app's one runner thread is free once it
// answered with a file: a client that does not read the big file at dl
// does not keep ping (same app) from being answered.
func slotFreed(t *testing.T, s *gwtest.Server, dl, ping string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", dl)
	time.Sleep(200 * time.Millisecond) // the answer stalls on the unread connection
	start := time.Now()
	if code, body := gwtest.Get(t, s.URL+ping); code != 200 || body != "pong" {
		t.Fatalf("ping while a download stalls: %d %q\n%s", code, body, s.Log())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("ping took %v beside a stalled download", d)
	}
	t.Logf("ping beside a stalled 64 MiB download: %v", time.Since(start))
}

// TestSendfileFlask: Flask's use_x_sendfile answer (X-Sendfile, the file's
// Content-Length, no body) becomes the file, with Range and conditionals;
// paths outside the root, or leading out of it by a symlink, are a 500.
func TestSendfileFlask(t *testing.T) {
	py := gwtest.RequirePython(t)
	root, outside, data := sendfileRoot(t)
	s := sendfileApp(t, root, app("sendfile_flask.py"), "    interpreter: "+py)
	checkSendfile(t, s, s.URL+"/a/dl?path=report.bin", data, "application/octet-stream")

	req := mustReq("GET", s.URL+"/a/type", nil)
	req.Header.Set("X-Accel-Mapping", "/=/etc/")
	req.Header.Set("X-Sendfile-Type", "X-Accel-Redirect")
	if _, body := do(t, req); body != "X-Sendfile|" {
		t.Errorf("the app saw X-Sendfile-Type|X-Accel-Mapping %q, want gw's X-Sendfile and no mapping", body)
	}
	refused(t, s, s.URL+"/a/dl?path="+outside, outside)
	refused(t, s, s.URL+"/a/dl?path=leak.txt", filepath.Join(root, "leak.txt"))

	big := filepath.Join(root, "big.bin")
	if err := os.WriteFile(big, make([]byte, 64<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	slotFreed(t, s, "/a/dl?path=big.bin", "/a/ping")

	// A figure: the whole 64 MiB through gw's sendfile(2).
	start := time.Now()
	resp, err := http.Get(s.URL + "/a/dl?path=big.bin")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != 64<<20 {
		t.Fatalf("big download: %d bytes, %v", n, err)
	}
	d := time.Since(start)
	t.Logf("64 MiB by X-Sendfile in %v (%.0f MiB/s)", d, 64/d.Seconds())
}

// TestSendfileDjango: a Django view's X-Sendfile (django-sendfile2's
// xsendfile backend answers the same way).
func TestSendfileDjango(t *testing.T) {
	py := gwtest.RequirePython(t)
	root, _, data := sendfileRoot(t)
	s := sendfileApp(t, root, "djsend:application", "    interpreter: "+py, "    dir: "+app("djsendfile"))
	checkSendfile(t, s, s.URL+"/a/dl?name=report.bin", data, "application/x-report")
	refused(t, s, s.URL+"/a/dl?name=leak.txt", filepath.Join(root, "leak.txt"))
}

// TestSendfileRack: Sinatra's send_file behind Rack::Sendfile.
func TestSendfileRack(t *testing.T) {
	ruby := gwtest.RequireInterpreter(t, "ruby")
	root, _, data := sendfileRoot(t)
	s := sendfileApp(t, root, suitePath("ruby/sendfile/config.ru"), "    interpreter: "+ruby)
	checkSendfile(t, s, s.URL+"/a/dl?name=report.bin", data, "application/octet-stream")
	if _, body := gwtest.Get(t, s.URL+"/a/type"); body != "X-Sendfile" {
		t.Errorf("HTTP_X_SENDFILE_TYPE %q, want X-Sendfile", body)
	}
	refused(t, s, s.URL+"/a/dl?name=leak.txt", filepath.Join(root, "leak.txt"))
}

// TestSendfileRails: a real Rails app (action_controller/railtie, no
// database) whose controller calls send_file, with
// config.action_dispatch.x_sendfile_header = "X-Sendfile": Rails' own
// Rack::Sendfile answers with the header, gw sends the file.
func TestSendfileRails(t *testing.T) {
	ruby := requireRuby(t, "action_controller/railtie")
	root, _, data := sendfileRoot(t)
	s := sendfileApp(t, root, suitePath("ruby/rails/config.ru"), "    interpreter: "+ruby)
	checkSendfile(t, s, s.URL+"/a/dl?name=report.bin", data, "application/x-report")
	if _, body := gwtest.Get(t, s.URL+"/a/type"); body != "X-Sendfile" {
		t.Errorf("X-Sendfile-Type seen by the controller %q, want X-Sendfile", body)
	}
	refused(t, s, s.URL+"/a/dl?name=leak.txt", filepath.Join(root, "leak.txt"))
	if err := os.WriteFile(filepath.Join(root, "big.bin"), make([]byte, 64<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	slotFreed(t, s, "/a/dl?name=big.bin", "/a/ping")
}

// TestSendfilePHP: a PHP script's X-Accel-Redirect, percent-encoded or
// not; its own body is dropped.
func TestSendfilePHP(t *testing.T) {
	php := gwtest.RequireInterpreter(t, "php-cgi")
	root, outside, data := sendfileRoot(t)
	s := sendfileApp(t, root, suitePath("php/site"), "    interpreter: "+php)
	checkSendfile(t, s, s.URL+"/a/accel.php?f="+root+"/report.bin", data, "application/x-report")
	if code, body := gwtest.Get(t, s.URL+"/a/accel.php?f="+strings.ReplaceAll(root, "/", "%252F")+"%252Freport.bin"); code != 200 || body != string(data) {
		t.Errorf("percent-encoded X-Accel-Redirect: %d, %d bytes", code, len(body))
	}
	refused(t, s, s.URL+"/a/accel.php?f="+outside, outside)
	resp, err := http.Head(s.URL + "/a/accel.php?f=" + root + "/report.bin")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
		t.Errorf("HEAD: %d Content-Length %d", resp.StatusCode, resp.ContentLength)
	}
}
