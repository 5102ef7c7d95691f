package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

func app(name string) string {
	p, _ := filepath.Abs(filepath.Join("testdata", "python", name))
	return p
}

// startSuite serves testdata/python/suite.py (wrapped in wsgiref's
// validator) with PEP 3333 warnings turned into errors.
func startSuite(t *testing.T, extra ...string) *gwtest.Server {
	py := gwtest.RequirePython(t)
	cfg := fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
apps:
  - name: suite
    lang: python
    path: %s
    interpreter: %s
    workers: 2
    mount: /app
    env:
      PYTHONWARNINGS: error
`, app("suite.py"), py)
	return gwtest.Start(t, append([]string{"-c", writeFile(t, "gw.yaml", cfg)}, extra...)...)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

func post(t *testing.T, url string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, body)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// TestPEP3333Validator drives every endpoint of the validated app: a
// violation of PEP 3333 on either side raises inside wsgiref.validate (or
// warns, made an error by PYTHONWARNINGS=error) and turns into a 500.
func TestPEP3333Validator(t *testing.T) {
	s := startSuite(t)
	tests := []struct {
		name, method, path, body string
		want                     string
	}{
		{"environ", "GET", "/app/env?x=1", "", `"QUERY_STRING": "x=1"`},
		{"read(n)", "POST", "/app/hash", "hello", "5 " + sha("hello")},
		{"readline+readlines", "POST", "/app/lines", "first\nsecond\nthird\n", "3|first|13"},
		{"iteration", "POST", "/app/iter", "a\nb\nc\nd", "4"},
		{"write callable", "GET", "/app/write", "", "via write; then iterable"},
		{"generator", "GET", "/app/stream", "", "chunk 0\nchunk 1\nchunk 2\n"},
		{"download", "GET", "/app/download?1000", "", ""},
		{"unread body", "POST", "/app/unread", strings.Repeat("z", 5000), "ignored your body"},
		{"cookies", "GET", "/app/cookies", "", "two cookies"},
		{"file wrapper absent path", "GET", "/app/nope", "", "no such test endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, s.URL+tc.path, body)
			resp, got := do(t, req)
			if resp.StatusCode == 500 {
				t.Fatalf("500: the validator rejected something; log:\n%s", s.Log())
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("body = %.300q, want it to contain %q", got, tc.want)
			}
		})
	}
	resp, _ := do(t, mustReq("GET", s.URL+"/app/cookies", nil))
	if got := resp.Header.Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Errorf("Set-Cookie = %q, want [a=1 b=2]", got)
	}
	if strings.Contains(s.Log(), "WSGIWarning") {
		t.Errorf("validator warned:\n%s", s.Log())
	}
}

func mustReq(method, url string, body io.Reader) *http.Request {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		panic(err)
	}
	return req
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestEnviron(t *testing.T) {
	s := startSuite(t)
	req := mustReq("GET", s.URL+"/app/env/caf%C3%A9/x%2Fy?q=%20a", nil)
	req.Header.Set("X-Custom", "v1")
	req.Header.Add("X-Dup", "a")
	req.Header.Add("X-Dup", "b")
	req.Header.Set("Proxy", "http://evil.example")
	resp, body := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	want := map[string]any{
		"REQUEST_METHOD":    "GET",
		"SCRIPT_NAME":       "/app",
		"PATH_INFO":         "/env/caf\u00c3\u00a9/x/y", // UTF-8 bytes as latin-1 (PEP 3333)
		"QUERY_STRING":      "q=%20a",
		"REQUEST_URI":       "/app/env/caf%C3%A9/x%2Fy?q=%20a",
		"SERVER_NAME":       host,
		"SERVER_PORT":       port,
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"REMOTE_ADDR":       "127.0.0.1",
		"HTTP_X_CUSTOM":     "v1",
		"HTTP_X_DUP":        "a, b",
		"HTTP_HOST":         host + ":" + port,
		"wsgi.url_scheme":   "http",
		"wsgi.multithread":  false,
		"wsgi.multiprocess": true,
		"wsgi.run_once":     false,
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %#v, want %#v", k, env[k], v)
		}
	}
	if v, ok := env["wsgi.version"].([]any); !ok || len(v) != 2 || v[0] != 1.0 || v[1] != 0.0 {
		t.Errorf("wsgi.version = %v", env["wsgi.version"])
	}
	for _, k := range []string{"CONTENT_LENGTH", "CONTENT_TYPE", "HTTP_PROXY", "HTTP_CONNECTION"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s present (%v), want absent", k, v)
		}
	}
}

// TestBigBodiesStream sends 10 MiB both ways by hash, then 64 MiB both ways
// while checking gw's peak RSS stays far below the body size: bodies stream,
// they are never held whole.
func TestBigBodiesStream(t *testing.T) {
	s := startSuite(t)
	for _, size := range []int{10 << 20, 64 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		resp, got := post(t, s.URL+"/app/hash", bytes.NewReader(data))
		if want := fmt.Sprintf("%d %s", size, sha(string(data))); resp.StatusCode != 200 || got != want {
			t.Fatalf("upload %d: %d %q, want %q", size, resp.StatusCode, got, want)
		}
		resp, err := http.Get(fmt.Sprintf("%s/app/download?%d", s.URL, size))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(size) {
			t.Fatalf("download %d: got %d bytes, %v", size, n, err)
		}
		if got, want := hex.EncodeToString(h.Sum(nil)), sha(string(pattern(size))); got != want {
			t.Fatalf("download %d: sha256 %s, want %s", size, got, want)
		}
	}
	hwm := vmHWM(t, s.PID())
	t.Logf("gw peak RSS after 64 MiB up and down: %d KiB", hwm)
	if hwm > 40<<10 {
		t.Errorf("gw peak RSS %d KiB: bodies are being buffered", hwm)
	}
}

func pattern(size int) []byte {
	block := make([]byte, 256*256)
	for i := range block {
		block[i] = byte(i % 256)
	}
	out := make([]byte, 0, size)
	for len(out) < size {
		out = append(out, block[:min(len(block), size-len(out))]...)
	}
	return out
}

func vmHWM(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

func TestChunkedRequestBody(t *testing.T) {
	s := startSuite(t)
	pr, pw := io.Pipe()
	go func() {
		for i := range 50 {
			fmt.Fprintf(pw, "line %d\n", i)
		}
		pw.Close()
	}()
	req := mustReq("POST", s.URL+"/app/hash", pr)
	req.ContentLength = -1 // force Transfer-Encoding: chunked
	resp, got := do(t, req)
	var want strings.Builder
	for i := range 50 {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if exp := fmt.Sprintf("%d %s", want.Len(), sha(want.String())); resp.StatusCode != 200 || got != exp {
		t.Fatalf("%d %q, want %q", resp.StatusCode, got, exp)
	}
}

// rawConn speaks HTTP/1.1 by hand, so tests control the bytes and the
// connection reuse.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, s *gwtest.Server) *rawConn {
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawConn) response() (*http.Response, string) {
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatal(err)
	}
	return resp, string(b)
}

// TestUnreadBodyKeepsConnection: an app that never reads a POST body must
// not corrupt the next request on the same client connection, nor the next
// request on the same runner (uWSGI's clobbered-socket trap).
func TestUnreadBodyKeepsConnection(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "1", app("suite.py"))
	rc := dialRaw(t, s)
	body := strings.Repeat("u", 100000)
	rc.send("POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	if resp, got := rc.response(); resp.StatusCode != 200 || got != "ignored your body" {
		t.Fatalf("first: %d %q", resp.StatusCode, got)
	}
	rc.send("POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	if resp, got := rc.response(); resp.StatusCode != 200 || got != "3 "+sha("abc") {
		t.Fatalf("second on same connection: %d %q", resp.StatusCode, got)
	}
	// A big unread body: gw may close that client connection, but the
	// (single) runner must serve the next request cleanly.
	resp, got := post(t, s.URL+"/unread", bytes.NewReader(make([]byte, 8<<20)))
	if resp.StatusCode != 200 || got != "ignored your body" {
		t.Fatalf("big unread: %d %q", resp.StatusCode, got)
	}
	for range 3 {
		if resp, got := post(t, s.URL+"/hash", strings.NewReader("xyz")); resp.StatusCode != 200 || got != "3 "+sha("xyz") {
			t.Fatalf("after big unread: %d %q", resp.StatusCode, got)
		}
	}
}

func TestExpectContinue(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "1", app("suite.py"))
	rc := dialRaw(t, s)
	rc.send("POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := rc.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("interim response %q, %v", line, err)
	}
	rc.br.ReadString('\n') // blank line after 100 Continue
	rc.send("hello")
	if resp, got := rc.response(); resp.StatusCode != 200 || got != "5 "+sha("hello") {
		t.Fatalf("%d %q", resp.StatusCode, got)
	}
}

func TestHeaderLimits(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "1", app("suite.py"))
	big := func(n int) *http.Request {
		req := mustReq("GET", s.URL+"/env", nil)
		for i := 0; i < n/1024; i++ {
			req.Header.Set(fmt.Sprintf("X-Pad-%d", i), strings.Repeat("p", 1000))
		}
		return req
	}
	resp, body := do(t, big(16<<10))
	if resp.StatusCode != 200 || !strings.Contains(body, "HTTP_X_PAD_15") {
		t.Fatalf("16 KiB of headers: %d %.200s", resp.StatusCode, body)
	}
	resp, _ = do(t, big(80<<10))
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("80 KiB of headers: %d, want 431", resp.StatusCode)
	}
}

func TestBodyLimit(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "1", "--max-body", "1KiB", app("suite.py"))
	if resp, _ := post(t, s.URL+"/hash", strings.NewReader(strings.Repeat("a", 2048))); resp.StatusCode != 413 {
		t.Errorf("2 KiB with Content-Length: %d, want 413", resp.StatusCode)
	}
	req := mustReq("POST", s.URL+"/hash", io.MultiReader(strings.NewReader(strings.Repeat("a", 2048))))
	req.ContentLength = -1
	if resp, _ := do(t, req); resp.StatusCode != 413 {
		t.Errorf("2 KiB chunked: %d, want 413", resp.StatusCode)
	}
	if resp, got := post(t, s.URL+"/hash", strings.NewReader("ok")); resp.StatusCode != 200 || got != "2 "+sha("ok") {
		t.Errorf("small body after limit hits: %d %q", resp.StatusCode, got)
	}
}

// TestRunnerKilledMidRequest: SIGKILL of the runner serving a request gives
// that request a 502; a respawned runner serves the next one.
func TestRunnerKilledMidRequest(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "1", app("suite.py"))
	killMidRequest(t, s.URL+"/pid", s.URL+"/sleep?10", 10*time.Second)
	if !strings.Contains(s.Log(), "runner exited") {
		t.Errorf("no exit logged:\n%s", s.Log())
	}
}

// TestImportErrorExits1: an app that cannot load stops gw run with exit 1
// and Python's own report (file, line, traceback).
func TestImportErrorExits1(t *testing.T) {
	py := gwtest.RequirePython(t)
	tests := []struct {
		app  string
		want []string
	}{
		{"broken.py", []string{"SyntaxError", "broken.py", "line 3", "def application(environ, start_response)"}},
		{"import_fails.py", []string{"Traceback (most recent call last)", "import_fails.py\", line 8", "JSONDecodeError"}},
	}
	for _, tc := range tests {
		t.Run(tc.app, func(t *testing.T) {
			code, out := gwtest.Run(t, 30*time.Second, "run", "--interpreter", py, "--http", "127.0.0.1:0", app(tc.app))
			if code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestFlask(t *testing.T) {
	py := gwtest.RequirePython(t)
	s := gwtest.Start(t, "--interpreter", py, "--workers", "1", "--mount", "/f", app("flask_app.py"))
	if code, body := gwtest.Get(t, s.URL+"/f/"); code != 200 || body != "Hello from Flask" {
		t.Fatalf("%d %q", code, body)
	}
	req := mustReq("POST", s.URL+"/f/form", strings.NewReader("name=gw+test"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body := do(t, req)
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %q %v", resp.StatusCode, body, err)
	}
	if got["name"] != "gw test" || got["script_root"] != "/f" || got["path"] != "/form" {
		t.Errorf("got %v", got)
	}
}

func TestDjango(t *testing.T) {
	py := gwtest.RequirePython(t)
	cfg := fmt.Sprintf(`
listen: {http: "127.0.0.1:0"}
apps:
  - name: dj
    lang: python
    path: djapp:application
    dir: %s
    interpreter: %s
    workers: 1
    mount: /dj
    env: {GW_TEST_SETTING: KeepsCase}
`, app("djangoproj"), py)
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	if code, body := gwtest.Get(t, s.URL+"/dj/"); code != 200 || body != "Hello from Django" {
		t.Fatalf("%d %q\n%s", code, body, s.Log())
	}
	resp, body := post(t, s.URL+"/dj/echo", strings.NewReader("payload"))
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %q %v", resp.StatusCode, body, err)
	}
	want := map[string]string{"method": "POST", "path": "/dj/echo", "path_info": "/echo", "body": "payload", "setting": "KeepsCase"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// TestTwoAppsByMount: longest-prefix routing across two Python apps.
func TestTwoAppsByMount(t *testing.T) {
	py := gwtest.RequirePython(t)
	cfg := fmt.Sprintf(`
listen: {http: "127.0.0.1:0"}
apps:
  - {name: a, lang: python, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /a}
  - {name: b, lang: python, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /b}
  - {name: ab, lang: python, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /a/b}
`, app("suite.py"), py)
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	tests := []struct{ path, script, pathInfo string }{
		{"/a/env", "/a", "/env"},
		{"/b/env", "/b", "/env"},
		{"/a/b/env", "/a/b", "/env"},
		{"/a/bc/env", "/a", "/bc/env"},
	}
	for _, tc := range tests {
		_, body := gwtest.Get(t, s.URL+tc.path)
		var env map[string]any
		if err := json.Unmarshal([]byte(body), &env); err != nil {
			t.Fatalf("%s: %q", tc.path, body)
		}
		if env["SCRIPT_NAME"] != tc.script || env["PATH_INFO"] != tc.pathInfo {
			t.Errorf("%s: SCRIPT_NAME=%v PATH_INFO=%v, want %s %s", tc.path, env["SCRIPT_NAME"], env["PATH_INFO"], tc.script, tc.pathInfo)
		}
	}
	if code, _ := gwtest.Get(t, s.URL+"/c/env"); code != 404 {
		t.Errorf("/c/env: %d, want 404", code)
	}
}

// TestThreads: with --threads 4 one runner serves 4 slow requests at once,
// and threads the app starts (at import and per request) run.
func TestThreads(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "1", "--threads", "4", app("suite.py"))
	code, body := gwtest.Get(t, s.URL+"/threads")
	if code != 200 || !strings.Contains(body, `"request_thread": true`) || !strings.Contains(body, `"import_thread": "import-thread"`) {
		t.Fatalf("%d %s", code, body)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body := gwtest.Get(t, s.URL+"/sleep?1"); code != 200 {
				t.Errorf("%d %s", code, body)
			}
		}()
	}
	wg.Wait()
	// Serially this takes 4 s; concurrently about 1 s.
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("4 requests of 1 s on 4 threads took %v: not concurrent", d)
	}
	if _, body := gwtest.Get(t, s.URL+"/env"); !strings.Contains(body, `"wsgi.multithread": true`) {
		t.Errorf("wsgi.multithread not true with 4 threads: %s", body)
	}
}

func TestStreamingResponseArrivesIncrementally(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "1", app("suite.py"))
	checkStreaming(t, s.URL+"/stream")
}

func TestWSGIErrorsAndAppErrorsReachLog(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "1", app("suite.py"))
	if code, _ := gwtest.Get(t, s.URL+"/log"); code != 200 {
		t.Fatalf("/log: %d", code)
	}
	if code, _ := gwtest.Get(t, s.URL+"/error"); code != 500 {
		t.Fatalf("/error: %d, want 500", code)
	}
	if code, _ := gwtest.Get(t, s.URL+"/pid"); code != 200 {
		t.Fatalf("runner unusable after an app error: %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, want := range []string{"hello from wsgi.errors", "boom from the app"} {
		for !strings.Contains(s.Log(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("log lacks %q:\n%s", want, s.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestNoOrphansWhenGatewayKilled: runners exit on their own when gw is
// SIGKILLed (they watch the control socket, gw's owner channel).
func TestNoOrphansWhenGatewayKilled(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "2", "--threads", "2", app("suite.py"))
	kids := s.Children()
	if len(kids) != 2 {
		t.Fatalf("children %v, want 2 runners", kids)
	}
	syscall.Kill(s.PID(), syscall.SIGKILL)
	<-s.Done()
	gwtest.WaitGone(t, kids, 5*time.Second)
}

func TestGracefulStopLeavesNoRunner(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "2", app("hello.py"))
	if code, body := gwtest.Get(t, s.URL+"/"); code != 200 || body != "Hello, World!" {
		t.Fatalf("%d %q", code, body)
	}
	kids := s.Children()
	syscall.Kill(s.PID(), syscall.SIGTERM)
	<-s.Done()
	if s.ExitCode() != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", s.ExitCode())
	}
	gwtest.WaitGone(t, kids, 5*time.Second)
}

// TestVenv: --venv runs the app on the virtualenv's interpreter.
func TestVenv(t *testing.T) {
	py := gwtest.RequirePython(t)
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(py, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("make venv: %v\n%s", err, out)
	}
	s := gwtest.Start(t, "--venv", venv, "--workers", "1", app("prefix.py"))
	if code, body := gwtest.Get(t, s.URL+"/"); code != 200 || body != venv {
		t.Fatalf("sys.prefix = %q (%d), want %q", body, code, venv)
	}
}

// TestMissingInterpreterExits1 names what failed.
func TestMissingInterpreterExits1(t *testing.T) {
	code, out := gwtest.Run(t, 30*time.Second, "run", "--interpreter", "/nonexistent/python3", "--http", "127.0.0.1:0", app("hello.py"))
	if code != 1 || !strings.Contains(out, "/nonexistent/python3") {
		t.Fatalf("exit %d, want 1 naming the interpreter:\n%s", code, out)
	}
}

// TestSlowClientHeadTimesOut: a client that never finishes its request head
// is cut off after --read-header-timeout; runners never see it.
func TestSlowClientHeadTimesOut(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "1", "--read-header-timeout", "500ms", app("hello.py"))
	rc := dialRaw(t, s)
	rc.send("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	start := time.Now()
	b, err := io.ReadAll(rc.br) // returns when gw closes the connection
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("connection still open after %v (%q, %v)", d, b, err)
	}
	if code, body := gwtest.Get(t, s.URL+"/"); code != 200 || body != "Hello, World!" {
		t.Fatalf("after slow client: %d %q", code, body)
	}
}
