package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/gwhq/gw/internal/gwtest"
	"github.com/gwhq/gw/internal/hostenv"
)

// h3Client speaks HTTP/3 only (quic-go's client), trusting certs.
func h3Client(t *testing.T, certs ...*x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Timeout: 60 * time.Second, Transport: tr}
}

// altSvcRE is what gw advertises: the HTTP/3 port, for a day.
var altSvcRE = regexp.MustCompile(`^h3=":(\d+)"; ma=86400$`)

// TestHTTP3 serves the Python suite over HTTP/3 beside HTTPS: environ,
// uploads with and without a length, an echo of 2 MiB both ways, a
// download, a streamed answer, 413 past max_body, Alt-Svc on the HTTPS
// and HTTP/3 answers, gw's errors included (not on plain HTTP), and the
// access log's protocol.
func TestHTTP3(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	s, cert, _, _ := startTLSSuite(t, "--http3", "127.0.0.1:0", "--max-body", "4MiB", "--access-log", logPath)
	h3addr := s.Addr("http3")
	if h3addr == "" {
		t.Fatalf("no http3= in the serving line:\n%s", s.Log())
	}
	base := "https://" + h3addr
	c := h3Client(t, cert)
	_, port, _ := strings.Cut(h3addr, ":")

	t.Run("environ and Alt-Svc", func(t *testing.T) {
		env := getEnv(t, c, base+"/env", "HTTP/3.0")
		if env["SERVER_PROTOCOL"] != "HTTP/3.0" || env["wsgi.url_scheme"] != "https" {
			t.Errorf("SERVER_PROTOCOL %v, wsgi.url_scheme %v; want HTTP/3.0, https",
				env["SERVER_PROTOCOL"], env["wsgi.url_scheme"])
		}
		for _, tc := range []struct {
			name string
			c    *http.Client
			url  string
			want bool
		}{
			{"HTTPS (h2)", tlsClient(h2, false, cert), s.HTTPS + "/env", true},
			{"HTTPS (HTTP/1.1)", tlsClient(h1, false, cert), s.HTTPS + "/env", true},
			{"HTTP/3", c, base + "/env", true},
			{"plain HTTP", http.DefaultClient, s.URL + "/env", false},
		} {
			resp, err := tc.c.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			got := resp.Header.Values("Alt-Svc")
			if !tc.want {
				if len(got) != 0 {
					t.Errorf("%s: Alt-Svc %q, want none", tc.name, got)
				}
				continue
			}
			if len(got) != 1 || altSvcRE.FindStringSubmatch(got[0]) == nil || altSvcRE.FindStringSubmatch(got[0])[1] != port {
				t.Errorf("%s: Alt-Svc %q, want h3=\":%s\"; ma=86400", tc.name, got, port)
			}
		}
	})

	t.Run("uploads", func(t *testing.T) {
		data := make([]byte, 3<<20)
		rand.Read(data)
		want := fmt.Sprintf("%d %s", len(data), sha(string(data)))
		// With a length, and without (MultiReader hides it: the body
		// ends with the stream).
		for _, body := range []io.Reader{bytes.NewReader(data), io.MultiReader(bytes.NewReader(data))} {
			resp, err := c.Post(base+"/hash", "application/octet-stream", body)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Proto != "HTTP/3.0" || string(got) != want {
				t.Errorf("upload: %s %d %q, want HTTP/3.0 200 %q", resp.Proto, resp.StatusCode, got, want)
			}
		}
	})

	t.Run("echo 2 MiB", func(t *testing.T) {
		data := make([]byte, 2<<20+17)
		rand.Read(data)
		resp, err := c.Post(base+"/echo", "application/octet-stream", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, data) {
			t.Errorf("echo: %d, %d bytes (err %v), want 200 and the %d bytes sent", resp.StatusCode, len(got), err, len(data))
		}
	})

	t.Run("download 32 MiB", func(t *testing.T) {
		const size = 32 << 20
		start := time.Now()
		resp, err := c.Get(base + "/download?" + strconv.Itoa(size))
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size || resp.ContentLength != size {
			t.Errorf("download: %d bytes (Content-Length %d, err %v), want %d", n, resp.ContentLength, err, size)
		}
		t.Logf("32 MiB over HTTP/3 in %v", time.Since(start))
	})

	t.Run("streaming", func(t *testing.T) { checkStreamingWith(t, c, base+"/stream") })

	t.Run("413 past max_body", func(t *testing.T) {
		for _, body := range []io.Reader{bytes.NewReader(make([]byte, 5<<20)), io.MultiReader(bytes.NewReader(make([]byte, 5<<20)))} {
			resp, err := c.Post(base+"/hash", "application/octet-stream", body)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("5 MiB body past a 4 MiB max_body: %d, want 413", resp.StatusCode)
			}
		}
	})

	// gw's own error answers (fail: 413 before the app, 500 from an app
	// that raised) keep Alt-Svc on HTTPS and HTTP/3, and have none on
	// plain HTTP.
	t.Run("Alt-Svc on errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			c    *http.Client
			base string
			want bool
		}{
			{"HTTP/3", c, base, true},
			{"HTTPS (h2)", tlsClient(h2, false, cert), s.HTTPS, true},
			{"HTTPS (HTTP/1.1)", tlsClient(h1, false, cert), s.HTTPS, true},
			{"plain HTTP", http.DefaultClient, s.URL, false},
		} {
			for _, e := range []struct {
				method, path string
				body         io.Reader
				status       int
			}{
				{"POST", "/hash", bytes.NewReader(make([]byte, 5<<20)), http.StatusRequestEntityTooLarge},
				{"GET", "/error", nil, http.StatusInternalServerError},
			} {
				resp, err := tc.c.Do(mustReq(e.method, tc.base+e.path, e.body))
				if err != nil {
					t.Fatalf("%s %s: %v", tc.name, e.path, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				got := resp.Header.Values("Alt-Svc")
				ok := len(got) == 0
				if tc.want {
					m := []string(nil)
					if len(got) == 1 {
						m = altSvcRE.FindStringSubmatch(got[0])
					}
					ok = m != nil && m[1] == port
				}
				if resp.StatusCode != e.status || !ok {
					t.Errorf("%s %s: %d with Alt-Svc %q, want %d and Alt-Svc: %v", tc.name, e.path, resp.StatusCode, got, e.status, tc.want)
				}
			}
		}
	})

	t.Run("access log", func(t *testing.T) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			b, _ := os.ReadFile(logPath)
			if regexp.MustCompile(`path=/echo status=200 bytes=2097169 .* proto=HTTP/3.0`).Match(b) &&
				regexp.MustCompile(`path=/env status=200 .* proto=HTTP/2.0`).Match(b) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no access log lines for /echo over HTTP/3 and /env over HTTP/2:\n%s", b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("runners' environment", func(t *testing.T) {
		// gw sets quic-go's variable in its own environment
		// (gateway/http3.go); a runner must not inherit it.
		code, pid := gwtest.Get(t, s.URL+"/pid")
		if code != 200 {
			t.Fatalf("/pid: %d %q", code, pid)
		}
		b, err := os.ReadFile("/proc/" + pid + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		env := strings.Split(string(b), "\x00")
		if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
			t.Fatalf("runner %s's environment has no PATH: not read right? %q", pid, env)
		}
		for _, kv := range env {
			if strings.HasPrefix(kv, hostenv.QUICNoBufferWarning+"=") {
				t.Errorf("runner %s inherited gw's own %s", pid, kv)
			}
		}
	})
}

// TestHTTP3Reload: a graceful reload (SIGHUP) while HTTP/3 clients send
// requests loses none, and the new generation's runners answer over the
// same QUIC connection afterwards.
func TestHTTP3Reload(t *testing.T) {
	s, cert, _, _ := startTLSSuite(t, "--http3", "127.0.0.1:0", "--workers", "1")
	base := "https://" + s.Addr("http3")
	c := h3Client(t, cert)
	pid := func() string {
		resp, err := c.Get(base + "/pid")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 3 {
			t.Fatalf("/pid: %s %d %q", resp.Proto, resp.StatusCode, b)
		}
		return string(b)
	}
	before := pid()
	syscall.Kill(s.PID(), syscall.SIGHUP)
	// Bounded: at most 2000 requests or 60 s, until a new runner answers.
	deadline := time.Now().Add(60 * time.Second)
	n := 0
	for after := pid(); after == before; after = pid() {
		if n++; n > 2000 || time.Now().After(deadline) {
			t.Fatalf("runner %s still answers after %d requests; log:\n%s", before, n, s.Log())
		}
	}
	if !strings.Contains(s.Log(), "reload") {
		t.Errorf("no reload in the log:\n%s", s.Log())
	}
	t.Logf("%d HTTP/3 requests across the reload, none failed", n+2)
}

// TestHTTP3Upgrade: SIGUSR2 hands the UDP socket to the new gw, which
// answers HTTP/3 on the same port once the old one has gone.
func TestHTTP3Upgrade(t *testing.T) {
	asSubreaper(t)
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := writeCert(t, certFile, keyFile, 1)
	app := filepath.Join(dir, "who.py")
	if err := os.WriteFile(app, []byte(whoApp), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen:
  http: "127.0.0.1:0"
  https: "127.0.0.1:0"
  http3: "127.0.0.1:0"
  tls: {cert: %s, key: %s}
limits:
  shutdown_timeout: 10s
apps:
  - name: who
    lang: python
    path: %s
    interpreter: %s
    workers: 1
`, certFile, keyFile, app, py)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startGW(t, "-c", cfg)
	_, oldPID, next := p.serving(t, 0, 0)
	line, _ := p.log.await(t, 0, time.Second, "gw serving", "http3=")
	h3 := regexp.MustCompile(`\bhttp3=(\S+)`).FindStringSubmatch(line)
	if h3 == nil {
		t.Fatalf("no http3= in %s", line)
	}
	base := "https://" + strings.Trim(h3[1], `"`)
	who := func(c *http.Client) (gw int, err error) {
		resp, err := c.Get(base + "/who")
		if err != nil {
			return 0, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var runner int
		_, err = fmt.Sscanf(string(b), "%d %d", &runner, &gw)
		return gw, err
	}
	if gw, err := who(h3Client(t, cert)); err != nil || gw != oldPID {
		t.Fatalf("before the upgrade: gw %d (%v), want %d", gw, err, oldPID)
	}
	syscall.Kill(oldPID, syscall.SIGUSR2)
	_, newPID, _ := p.serving(t, next, 0)
	t.Cleanup(func() { syscall.Kill(newPID, syscall.SIGKILL) })
	if newPID == oldPID {
		t.Fatalf("the serving line after SIGUSR2 is the old gw's")
	}
	if code := waitOrphan(t, oldPID, 60*time.Second); code != 0 {
		t.Errorf("old gw exited %d", code)
	}
	// A fresh client: a new QUIC connection on the same port.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var gw int
	var err error
	for gw, err = who(h3Client(t, cert)); err != nil && ctx.Err() == nil; gw, err = who(h3Client(t, cert)) {
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || gw != newPID {
		t.Fatalf("after the upgrade: gw %d (%v), want the new gw %d; log:\n%s", gw, err, newPID, p.log)
	}
	syscall.Kill(newPID, syscall.SIGTERM)
	if code := waitOrphan(t, newPID, 60*time.Second); code != 0 {
		t.Errorf("new gw exited %d", code)
	}
}

// TestHTTP3Drain: at SIGTERM a request in flight over HTTP/3 finishes,
// and an idle HTTP/3 connection the client keeps open does not hold gw to
// its shutdown bound (quic-go alone would wait for the client to close).
func TestHTTP3Drain(t *testing.T) {
	s, cert, _, _ := startTLSSuite(t, "--http3", "127.0.0.1:0", "--workers", "2", "--shutdown-timeout", "60s")
	base := "https://" + s.Addr("http3")
	idle, busy := h3Client(t, cert), h3Client(t, cert)
	getEnv(t, idle, base+"/env", "HTTP/3.0") // opens a connection, then leaves it idle
	type answer struct {
		status int
		body   string
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := busy.Get(base + "/sleep?2")
		if err != nil {
			done <- answer{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- answer{resp.StatusCode, string(b), err}
	}()
	time.Sleep(500 * time.Millisecond) // the request is in the app
	start := time.Now()
	syscall.Kill(s.PID(), syscall.SIGTERM)
	a := <-done
	if a.err != nil || a.status != 200 || a.body != "slept" {
		t.Errorf("request in flight at SIGTERM: %d %q %v, want 200 slept", a.status, a.body, a.err)
	}
	select {
	case <-s.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("gw still draining 30s after SIGTERM (bound 60s): the idle HTTP/3 connection holds it")
	}
	t.Logf("gw exited %v after SIGTERM", time.Since(start))
}

// TestHTTP3Limits: the limits and deadlines hold over HTTP/3 as over
// HTTP/1.1, and the metrics count HTTP/3 requests: 504 past the app's
// timeout, 408 for a body that stalls past body_timeout, 431 past
// max_header (quic-go answers that one itself, before gw's handler, so it
// is in neither the metrics nor the access log).
func TestHTTP3Limits(t *testing.T) {
	s, cert, _, _ := startTLSSuite(t, "--http3", "127.0.0.1:0", "--timeout", "2s", "--body-timeout", "2s",
		"--max-header", "8KiB", "--stats", "127.0.0.1:0", "--name", "suite")
	base, stats := "https://"+s.Addr("http3"), "http://"+s.Addr("stats")
	c := h3Client(t, cert)
	do3 := func(req *http.Request) int {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Proto != "HTTP/3.0" {
			t.Errorf("%s: %s, want HTTP/3.0", req.URL.Path, resp.Proto)
		}
		return resp.StatusCode
	}
	for range 3 {
		if code := do3(mustReq("GET", base+"/pid", nil)); code != 200 {
			t.Fatalf("/pid: %d", code)
		}
	}
	start := time.Now()
	if code := do3(mustReq("GET", base+"/sleep?10", nil)); code != http.StatusGatewayTimeout {
		t.Errorf("past the 2 s timeout: %d, want 504", code)
	}
	t.Logf("504 after %v (timeout 2s)", time.Since(start).Round(time.Millisecond))

	// A body that sends 1 KiB and stalls.
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(make([]byte, 1024))
	start = time.Now()
	if code := do3(mustReq("POST", base+"/hash", pr)); code != http.StatusRequestTimeout {
		t.Errorf("stalled body: %d, want 408", code)
	}
	t.Logf("408 after %v (body_timeout 2s)", time.Since(start).Round(time.Millisecond))

	req := mustReq("GET", base+"/pid", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 16<<10))
	if code := do3(req); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("16 KiB header past an 8 KiB max_header: %d, want 431", code)
	}

	want := map[string]float64{"2xx": 3, "4xx": 1, "5xx": 1}
	got := map[string]float64{}
	deadline := time.Now().Add(20 * time.Second)
	for !maps.Equal(got, want) {
		if time.Now().After(deadline) {
			t.Fatalf("gw_requests_total by class %v, want %v", got, want)
		}
		fams := scrape(t, stats)
		for code := range want {
			got[code], _ = metric(fams, "gw_requests_total", map[string]string{"app": "suite", "code": code})
		}
		time.Sleep(50 * time.Millisecond)
	}
}
