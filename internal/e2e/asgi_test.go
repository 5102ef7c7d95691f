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
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// asgiApp is a file of testdata/python/asgi.
func asgiApp(name string) string { return app("asgi/" + name) }

// requireModules returns Debian's python3 when it imports every module, and
// skips otherwise (fails under GW_REQUIRE_RUNTIMES=1: .ci/run installs them).
func requireModules(t *testing.T, mods ...string) string {
	t.Helper()
	py := gwtest.RequirePython(t)
	out, err := exec.Command(py, "-c", "import "+strings.Join(mods, ", ")).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("python modules %v not importable: %s", mods, bytes.TrimSpace(out))
		if os.Getenv("GW_REQUIRE_RUNTIMES") == "1" {
			t.Fatalf("%s (GW_REQUIRE_RUNTIMES=1)", msg)
		}
		t.Skip(msg + "; apt-get install python3-fastapi python3-starlette python3-quart python3-multipart python3-django")
	}
	return py
}

// startRaw serves raw.py's callable with LOG pointing at a fresh file.
func startRaw(t *testing.T, callable string, extra ...string) (*gwtest.Server, string) {
	py := gwtest.RequirePython(t)
	logPath := writeFile(t, "events.log", "")
	cfg := fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
apps:
  - name: raw
    path: %s
    callable: %s
    interpreter: %s
    workers: 1
    env: { LOG: %s }
%s`, asgiApp("raw.py"), callable, py, logPath, strings.Join(extra, "\n"))
	return gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg)), logPath
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

// TestFastAPI: JSON, a form, an upload checked by hash, and a streamed
// answer whose first chunk reaches the client before the app may send its
// last, through gw run main:app's detection (no interface given).
func TestFastAPI(t *testing.T) {
	py := requireModules(t, "fastapi", "multipart")
	s := gwtest.Start(t, "--interpreter", py, "--workers", "1", "--dir", testdataDir(t), "asgi.fastapi_app:app")
	if !strings.Contains(s.Log(), "slots=64") {
		t.Errorf("an ASGI app found by auto should get 64 slots:\n%s", s.Log())
	}
	t.Run("json", func(t *testing.T) {
		resp, body := post(t, s.URL+"/json", strings.NewReader(`{"b": [1, 2], "a": "x"}`))
		if resp.StatusCode != 200 || body != `{"got":{"b":[1,2],"a":"x"},"keys":["a","b"]}` {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("form", func(t *testing.T) {
		resp, err := http.PostForm(s.URL+"/form", url.Values{"name": {"café"}, "count": {"21"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != `{"name":"café","count":42}` {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("upload", func(t *testing.T) {
		data := make([]byte, 3<<20+17)
		rand.Read(data)
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("file", "blob.bin")
		fw.Write(data)
		mw.Close()
		req, _ := http.NewRequest("POST", s.URL+"/upload", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, body := do(t, req)
		sum := sha256.Sum256(data)
		want := fmt.Sprintf(`{"filename":"blob.bin","size":%d,"sha256":"%s"}`, len(data), hex.EncodeToString(sum[:]))
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("%d %s, want %s", resp.StatusCode, body, want)
		}
	})
	t.Run("streaming", func(t *testing.T) {
		resp, err := http.Get(s.URL + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rd := bufio.NewReader(resp.Body)
		first, err := rd.ReadString('\n')
		if err != nil || first != "first\n" {
			t.Fatalf("first chunk %q, %v", first, err)
		}
		// Only now may the app send its last chunk.
		if r, body := post(t, s.URL+"/release", nil); r.StatusCode != 200 {
			t.Fatalf("release: %d %s", r.StatusCode, body)
		}
		rest, err := io.ReadAll(rd)
		if err != nil || string(rest) != "last\n" {
			t.Fatalf("rest %q, %v", rest, err)
		}
	})
}

func testdataDir(t *testing.T) string {
	return strings.TrimSuffix(app(""), "/")
}

// TestASGIConcurrency: 50 requests that each sleep 0.3 s on one runner
// finish together, not one after another (15 s).
func TestASGIConcurrency(t *testing.T) {
	s, _ := startRaw(t, "app")
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan string, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(s.URL + "/sleep?0.3")
			if err != nil {
				errs <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "slept" {
				errs <- fmt.Sprintf("%d %q", resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("50 concurrent 0.3 s requests took %v on one runner, want < 3s", took)
	}
}

// TestASGIScopeAndLifespan: the scope carries the mount as root_path, the
// raw path and query, client and server, and a copy of the lifespan state;
// startup runs before the first request and shutdown when gw stops.
func TestASGIScopeAndLifespan(t *testing.T) {
	s, logPath := startRaw(t, "app", "    mount: /api")
	if got := readLines(t, logPath); len(got) != 1 || got[0] != "startup" {
		t.Fatalf("events before any request: %q, want [startup]", got)
	}
	req, _ := http.NewRequest("GET", s.URL+"/api/scope?x=%41&y", nil)
	req.Header.Set("X-Custom-Thing", "v1")
	resp, body := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var sc struct {
		HTTPVersion string     `json:"http_version"`
		Method      string     `json:"method"`
		Scheme      string     `json:"scheme"`
		Path        string     `json:"path"`
		RootPath    string     `json:"root_path"`
		RawPath     string     `json:"raw_path"`
		Query       string     `json:"query_string"`
		Client      []any      `json:"client"`
		Server      []any      `json:"server"`
		Headers     [][]string `json:"headers"`
		State       map[string]string
	}
	if err := json.Unmarshal([]byte(body), &sc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	if sc.HTTPVersion != "1.1" || sc.Method != "GET" || sc.Scheme != "http" || sc.Path != "/api/scope" ||
		sc.RootPath != "/api" || sc.RawPath != "/api/scope" || sc.Query != "x=%41&y" ||
		len(sc.Client) != 2 || sc.Client[0] != "127.0.0.1" || len(sc.Server) != 2 ||
		fmt.Sprint(sc.Server[1]) != port || sc.State["counter"] != "from-startup" {
		t.Errorf("scope %+v (gw at %s:%s)", sc, host, port)
	}
	found := false
	for _, h := range sc.Headers {
		found = found || h[0] == "x-custom-thing" && h[1] == "v1"
	}
	if !found {
		t.Errorf("headers %q lack x-custom-thing: v1", sc.Headers)
	}
	if code, body := gwtest.Get(t, s.URL+"/api/pathsend"); code != 200 || !strings.Contains(body, "Plain ASGI 3 apps") {
		t.Errorf("pathsend: %d %.60q", code, body)
	}
	s.Stop()
	if got := strings.Join(readLines(t, logPath), " "); got != "startup request shutdown" {
		t.Errorf("events %q, want startup, request, shutdown in that order", got)
	}
}

// TestASGIStartupFailure: lifespan.startup.failed is a load error: gw run
// exits 1 with the app's message.
func TestASGIStartupFailure(t *testing.T) {
	py := gwtest.RequirePython(t)
	code, out := gwtest.Run(t, 30*time.Second, "run", "--interpreter", py, "--http", "127.0.0.1:0",
		"--callable", "failing_startup", asgiApp("raw.py"))
	if code != 1 || !strings.Contains(out, "lifespan startup failed: database at db:5432 unreachable") {
		t.Fatalf("exit %d, want 1 with the app's message:\n%s", code, out)
	}
}

// TestASGIWithoutLifespan: an app that refuses the lifespan scope (as
// Django 3.2 does) still serves; so does an object with an async __call__.
func TestASGIWithoutLifespan(t *testing.T) {
	for _, tc := range []struct{ callable, want string }{
		{"no_lifespan", "served without lifespan"},
		{"obj", "object app"},
	} {
		t.Run(tc.callable, func(t *testing.T) {
			s, _ := startRaw(t, tc.callable)
			if code, body := gwtest.Get(t, s.URL+"/"); code != 200 || body != tc.want {
				t.Fatalf("%d %q, want 200 %q", code, body, tc.want)
			}
		})
	}
}

// TestASGIFrameworks: hello from each framework's own ASGI entry point.
func TestASGIFrameworks(t *testing.T) {
	for _, tc := range []struct {
		file, module, want string
	}{
		{"starlette_app.py", "starlette", "Hello from Starlette"},
		{"quart_app.py", "quart", "Hello from Quart"},
		{"django_app.py", "django", "Hello from Django async"},
	} {
		t.Run(tc.module, func(t *testing.T) {
			py := requireModules(t, tc.module)
			s := gwtest.Start(t, "--interpreter", py, "--workers", "1", asgiApp(tc.file))
			if code, body := gwtest.Get(t, s.URL+"/"); code != 200 || body != tc.want {
				t.Fatalf("%d %q, want 200 %q\n%s", code, body, tc.want, s.Log())
			}
		})
	}
}

// TestASGIDisconnectMidBody: a client that leaves halfway through a
// streamed body makes the app's receive() return http.disconnect, and the
// runner's only slot serves the next request.
func TestASGIDisconnectMidBody(t *testing.T) {
	s, logPath := startRaw(t, "app", "    threads: 1", "    request_buffering: false")
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /disconnect HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n%s", strings.Repeat("a", 5000))
	deadline := time.Now().Add(10 * time.Second)
	waitLine := func(i int, prefix string) {
		t.Helper()
		for {
			if got := readLines(t, logPath); len(got) > i && strings.HasPrefix(got[i], prefix) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q event: %q\n%s", prefix, readLines(t, logPath), s.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLine(1, "reading") // the app has the first part of the body
	c.Close()
	waitLine(2, "disconnect")
	if code, body := gwtest.Get(t, s.URL+"/sleep?0"); code != 200 || body != "slept" {
		t.Fatalf("after the disconnect: %d %q", code, body)
	}
}

// TestASGIDeadline: an ASGI request past timeout gets 504, its task stacks
// are logged first (slow_after), and the runner is replaced.
func TestASGIDeadline(t *testing.T) {
	s, _ := startRaw(t, "app", "    timeout: 1s", "    slow_after: 300ms")
	_, before := gwtest.Get(t, s.URL+"/pid")
	start := time.Now()
	code, body := gwtest.Get(t, s.URL+"/sleep?5")
	if code != 504 {
		t.Fatalf("status %d %q, want 504", code, body)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("504 after %v, want about 1s", took)
	}
	for _, want := range []string{"gw_asgi: slow request", "Task slot-", "in app", "asyncio.sleep"} {
		if !strings.Contains(s.Log(), want) {
			t.Errorf("log lacks %q:\n%s", want, s.Log())
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, after := gwtest.Get(t, s.URL+"/pid")
		if code == 200 && after != before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runner %s was not replaced (%d %s)", before, code, after)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
