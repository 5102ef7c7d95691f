package e2e

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
	"github.com/klauspost/compress/zstd"
)

// startCompress serves compress_app.py with compress on and a static
// directory holding app.css and its precompressed siblings.
func startCompress(t *testing.T) (*gwtest.Server, string) {
	t.Helper()
	py := gwtest.RequirePython(t)
	static := t.TempDir()
	css := strings.Repeat("body { color: #333; margin: 0 auto; }\n", 200)
	for name, body := range map[string]string{"app.css": css, "app.css.gz": "GZ-SIBLING", "app.css.zst": "ZST-SIBLING", "plain.css": css} {
		if err := os.WriteFile(filepath.Join(static, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
compress: true
apps:
  - name: app
    path: %s
    interpreter: %s
    workers: 1
    static: { /static: %s }
`, app("compress_app.py"), py, static)
	return gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg)), css
}

// get asks for url with Accept-Encoding ae (the transport's own gzip
// handling stays off when the header is set by hand) and decodes the body.
func getEncoded(t *testing.T, url, ae string) (*http.Response, string) {
	t.Helper()
	req := mustReq("GET", url, nil)
	req.Header.Set("Accept-Encoding", ae)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	switch resp.Header.Get("Content-Encoding") {
	case "gzip":
		if r, err = gzip.NewReader(resp.Body); err != nil {
			t.Fatal(err)
		}
	case "zstd":
		zr, err := zstd.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp, string(b)
}

func TestCompressAnswers(t *testing.T) {
	s, _ := startCompress(t)
	_, want := getEncoded(t, s.URL+"/json", "identity")
	tests := []struct {
		path, ae, enc string
	}{
		{"/json", "gzip, deflate, br, zstd", "zstd"},
		{"/json", "gzip", "gzip"},
		{"/json", "zstd;q=0.5, gzip", "gzip"},
		{"/json", "br", ""},
		{"/json", "identity", ""},
		{"/small", "gzip", ""},
		{"/png", "gzip", ""},
		{"/notransform", "gzip", ""},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.ae, func(t *testing.T) {
			resp, body := getEncoded(t, s.URL+tc.path, tc.ae)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != tc.enc {
				t.Fatalf("%d Content-Encoding %q, want %q", resp.StatusCode, resp.Header.Get("Content-Encoding"), tc.enc)
			}
			if tc.path == "/json" && body != want {
				t.Errorf("decoded body: %d bytes, want %d", len(body), len(want))
			}
			if tc.enc != "" {
				if resp.Header.Get("Vary") != "Accept-Encoding" || resp.ContentLength != -1 || resp.Header.Get("ETag") != `W/"doc1"` {
					t.Errorf("Vary %q Content-Length %d ETag %q", resp.Header.Get("Vary"), resp.ContentLength, resp.Header.Get("ETag"))
				}
			}
		})
	}
	// A range is never compressed; a HEAD has no body to compress.
	req := mustReq("GET", s.URL+"/static/plain.css", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("Range", "bytes=0-3")
	if resp, body := do(t, req); resp.StatusCode != 206 || body != "body" || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("range: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Encoding"))
	}
	req = mustReq("HEAD", s.URL+"/json", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	if resp, _ := do(t, req); resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("HEAD: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
}

// TestCompressStatic: precompressed siblings by preference, else the file
// compressed on the fly.
func TestCompressStatic(t *testing.T) {
	s, css := startCompress(t)
	for _, tc := range []struct{ path, ae, enc, body string }{
		{"/static/app.css", "gzip, br, zstd", "zstd", "ZST-SIBLING"},
		{"/static/app.css", "gzip", "gzip", "GZ-SIBLING"},
		{"/static/app.css", "", "", css},
		{"/static/plain.css", "gzip", "gzip", css}, // no sibling: compressed by gw
	} {
		req := mustReq("GET", s.URL+tc.path, nil)
		if tc.ae != "" {
			req.Header.Set("Accept-Encoding", tc.ae)
		} else {
			req.Header.Set("Accept-Encoding", "identity")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if tc.path == "/static/plain.css" && resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			d, _ := io.ReadAll(zr)
			body = string(d)
		}
		if resp.Header.Get("Content-Encoding") != tc.enc || body != tc.body || resp.Header.Get("Content-Type") != "text/css; charset=utf-8" {
			t.Errorf("%s %q: %q %q %.20q", tc.path, tc.ae, resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Type"), body)
		}
	}
}

// TestCompressStreams: a streamed answer's first part, flushed by the app,
// reaches the client decodable while the app still sleeps before the
// second.
func TestCompressStreams(t *testing.T) {
	s, _ := startCompress(t)
	for _, enc := range []string{"gzip", "zstd"} {
		t.Run(enc, func(t *testing.T) {
			req := mustReq("GET", s.URL+"/stream", nil)
			req.Header.Set("Accept-Encoding", enc)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.Header.Get("Content-Encoding") != enc {
				t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
			}
			var r io.Reader
			if enc == "gzip" {
				if r, err = gzip.NewReader(resp.Body); err != nil {
					t.Fatal(err)
				}
			} else {
				zr, err := zstd.NewReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				r = zr
			}
			br := bufio.NewReader(r)
			first, err := br.ReadString('\n')
			got := time.Now()
			if err != nil || first != "first part\n" {
				t.Fatalf("first part %q, %v", first, err)
			}
			rest, err := io.ReadAll(br)
			gap := time.Since(got)
			if err != nil || string(rest) != "second part\n" {
				t.Fatalf("rest %q, %v", rest, err)
			}
			// The app sleeps 4 s between the parts: the first came
			// when it was written, not with the end.
			if gap < 2*time.Second {
				t.Errorf("first part came only %v before the end: held back", gap)
			}
			t.Logf("first part %v before the second", gap)
		})
	}
}

// TestCompressCurl: curl --compressed, a real client, gets and decodes it.
func TestCompressCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	s, _ := startCompress(t)
	_, want := getEncoded(t, s.URL+"/json", "identity")
	out, err := exec.Command(curl, "-sS", "--compressed", "-D", "-", s.URL+"/json").Output()
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(out), "\r\n\r\n")
	if !strings.Contains(strings.ToLower(head), "content-encoding: ") || body != want {
		t.Errorf("curl --compressed: head %q, body %d bytes (want %d)", head, len(body), len(want))
	}
}

// TestEdgeHTTP2: over HTTP/2 (TLS, ALPN) a compressed answer, a streamed
// compressed answer and an X-Sendfile file with a Range come out as over
// HTTP/1.1.
func TestEdgeHTTP2(t *testing.T) {
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := writeCert(t, certFile, keyFile, 1)
	root := t.TempDir()
	data := strings.Repeat("0123456789", 1000)
	if err := os.WriteFile(filepath.Join(root, "report.bin"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
listen:
  https: "127.0.0.1:0"
  tls: { cert: %s, key: %s }
compress: true
apps:
  - name: app
    path: %s
    interpreter: %s
    workers: 1
    sendfile: [%s]
    env: { SENDFILE_ROOT: %s }
`, certFile, keyFile, app("compress_app.py"), py, root, root)
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	c := tlsClient(h2, false, cert)

	req := mustReq("GET", s.HTTPS+"/json", nil)
	req.Header.Set("Accept-Encoding", "zstd")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zstd.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	zr.Close()
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Header.Get("Content-Encoding") != "zstd" || err != nil || !strings.HasPrefix(string(b), `[{"id": 0`) {
		t.Errorf("json over h2: proto %d, Content-Encoding %q, %v, %.20q", resp.ProtoMajor, resp.Header.Get("Content-Encoding"), err, b)
	}

	req = mustReq("GET", s.HTTPS+"/file", nil)
	req.Header.Set("Range", "bytes=10-19")
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 206 || string(b) != "0123456789" || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("X-Sendfile range over h2: proto %d, %d %q, Content-Encoding %q", resp.ProtoMajor, resp.StatusCode, b, resp.Header.Get("Content-Encoding"))
	}

	req = mustReq("GET", s.HTTPS+"/stream", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	gr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(gr)
	first, err := br.ReadString('\n')
	got := time.Now()
	rest, _ := io.ReadAll(br)
	if err != nil || first != "first part\n" || string(rest) != "second part\n" {
		t.Fatalf("stream over h2: %q %q %v", first, rest, err)
	}
	if gap := time.Since(got); gap < 2*time.Second {
		t.Errorf("over h2 the first part came only %v before the end", gap)
	}
}
