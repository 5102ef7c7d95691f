package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// A language suite app implements one contract, so every runner is held to
// the same checks:
//
//	GET  .../env       JSON of the request environment's string values
//	POST /hash         "<bytes read> <sha256 hex>" of the body
//	GET  /download?N   N bytes of the 0..255 pattern
//	GET  /stream       "chunk 0\n" "chunk 1\n" "chunk 2\n", 0.3 s apart
//	GET  /sleep?S      sleeps S seconds
//	GET  /pid          the runner's pid
//	POST /unread       answers without reading the body
//	GET  /error        the app raises
type langSuite struct {
	lang   string
	interp func(t *testing.T) string
	app    string // under testdata/
}

var suites = []langSuite{
	{"python", func(t *testing.T) string { return gwtest.RequirePython(t) }, "python/suite.py"},
	{"perl", func(t *testing.T) string { return gwtest.RequireInterpreter(t, "perl") }, "perl/suite.psgi"},
	{"ruby", func(t *testing.T) string { return gwtest.RequireInterpreter(t, "ruby") }, "ruby/suite.ru"},
}

func suitePath(rel string) string {
	p, _ := filepath.Abs(filepath.Join("testdata", rel))
	return p
}

func TestConformance(t *testing.T) {
	for _, ls := range suites {
		t.Run(ls.lang, func(t *testing.T) {
			s := gwtest.Start(t, "--interpreter", ls.interp(t), "--workers", "2", "--mount", "/m", suitePath(ls.app))
			t.Run("environ", func(t *testing.T) { checkEnviron(t, s) })
			t.Run("bodies by hash", func(t *testing.T) { checkBodies(t, s, "/m") })
			t.Run("chunked upload", func(t *testing.T) { checkChunked(t, s, "/m") })
			t.Run("unread body", func(t *testing.T) { checkUnread(t, s, "/m") })
			t.Run("streaming", func(t *testing.T) { checkStreaming(t, s.URL+"/m/stream") })
			t.Run("app error", func(t *testing.T) {
				if code, _ := gwtest.Get(t, s.URL+"/m/error"); code != 500 {
					t.Fatalf("status %d, want 500", code)
				}
			})
			t.Run("runner killed", func(t *testing.T) { checkKilled(t, s, "/m") })
		})
	}
}

func checkEnviron(t *testing.T, s *gwtest.Server) {
	req := mustReq("GET", s.URL+"/m/x/env?a=1&b=%20", nil)
	req.Header.Set("X-Custom", "v1")
	resp, body := do(t, req)
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %q: %v", resp.StatusCode, body, err)
	}
	want := map[string]string{
		"REQUEST_METHOD": "GET", "SCRIPT_NAME": "/m", "PATH_INFO": "/x/env",
		"QUERY_STRING": "a=1&b=%20", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_X_CUSTOM": "v1",
		"REQUEST_URI": "/m/x/env?a=1&b=%20", "REMOTE_ADDR": "127.0.0.1",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %#v, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"SERVER_NAME", "SERVER_PORT"} {
		if v, _ := env[k].(string); v == "" {
			t.Errorf("%s missing or empty", k)
		}
	}
	for _, k := range []string{"CONTENT_LENGTH", "CONTENT_TYPE", "HTTP_CONTENT_LENGTH"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s = %v on a GET, want absent", k, v)
		}
	}
}

func checkBodies(t *testing.T, s *gwtest.Server, mount string) {
	const size = 10 << 20
	data := make([]byte, size)
	rand.Read(data)
	resp, got := post(t, s.URL+mount+"/hash", bytes.NewReader(data))
	if want := fmt.Sprintf("%d %s", size, sha(string(data))); resp.StatusCode != 200 || got != want {
		t.Fatalf("upload: %d %q, want %q", resp.StatusCode, got, want)
	}
	_, body := gwtest.Get(t, fmt.Sprintf("%s%s/download?%d", s.URL, mount, size))
	if len(body) != size || sha(body) != sha(string(pattern(size))) {
		t.Fatalf("download: %d bytes, sha %s", len(body), sha(body))
	}
}

func checkChunked(t *testing.T, s *gwtest.Server, mount string) {
	pr, pw := io.Pipe()
	var want strings.Builder
	for i := range 200 {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	go func() {
		for _, line := range strings.SplitAfter(want.String(), "\n") {
			io.WriteString(pw, line)
		}
		pw.Close()
	}()
	req := mustReq("POST", s.URL+mount+"/hash", pr)
	req.ContentLength = -1
	resp, got := do(t, req)
	if exp := fmt.Sprintf("%d %s", want.Len(), sha(want.String())); resp.StatusCode != 200 || got != exp {
		t.Fatalf("%d %q, want %q", resp.StatusCode, got, exp)
	}
}

func checkUnread(t *testing.T, s *gwtest.Server, mount string) {
	rc := dialRaw(t, s)
	body := strings.Repeat("u", 100000)
	rc.send("POST " + mount + "/unread HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	if resp, got := rc.response(); resp.StatusCode != 200 || got != "ignored your body" {
		t.Fatalf("first: %d %q", resp.StatusCode, got)
	}
	for i := range 4 { // enough to reach both runners
		rc.send("POST " + mount + "/hash HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
		if resp, got := rc.response(); resp.StatusCode != 200 || got != "3 "+sha("abc") {
			t.Fatalf("request %d after the unread body: %d %q", i, resp.StatusCode, got)
		}
	}
}

// checkStreaming: the suite's /stream at url arrives chunk by chunk (plain
// HTTP/1.1).
func checkStreaming(t *testing.T, url string) {
	t.Helper()
	checkStreamingWith(t, http.DefaultClient, url)
}

// checkStreamingWith is checkStreaming with a given client: the first chunk
// must arrive while the app still sleeps before the next (0.3 s apart).
func checkStreamingWith(t *testing.T, c *http.Client, url string) {
	t.Helper()
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, _ := br.ReadString('\n')
	firstAt := time.Since(start)
	rest, _ := io.ReadAll(br)
	total := time.Since(start)
	if first != "chunk 0\n" || string(rest) != "chunk 1\nchunk 2\n" {
		t.Fatalf("got %q %q", first, rest)
	}
	// The app sleeps 0.3 s after each chunk: the first chunk must not wait
	// for the last.
	if total-firstAt < 400*time.Millisecond {
		t.Errorf("%s: first chunk at %v, end at %v: the response was buffered", resp.Proto, firstAt, total)
	}
}

func checkKilled(t *testing.T, s *gwtest.Server, mount string) {
	code, pidStr := gwtest.Get(t, s.URL+mount+"/pid")
	pid, err := strconv.Atoi(pidStr)
	if code != 200 || err != nil {
		t.Fatalf("pid: %d %q", code, pidStr)
	}
	// Occupy the other runner too, so the sleeper lands on pid's... or not:
	// kill whichever runner serves the sleep, found by elimination.
	done := getAsync(s.URL + mount + "/sleep?10")
	time.Sleep(300 * time.Millisecond)
	victim := pid
	if _, other := gwtest.Get(t, s.URL+mount+"/pid"); other == pidStr {
		// pid is free, so the sleeper is on the other runner.
		victim = otherRunner(t, s, pid)
	}
	killAnswers502(t, victim, done)
	deadline := time.Now().Add(10 * time.Second)
	for len(s.Children()) != 2 || containsPID(s.Children(), victim) {
		if time.Now().After(deadline) {
			t.Fatalf("runner %d not replaced: children %v", victim, s.Children())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range 4 {
		if code, _ := gwtest.Get(t, s.URL+mount+"/pid"); code != 200 {
			t.Fatalf("after respawn: %d", code)
		}
	}
}

func otherRunner(t *testing.T, s *gwtest.Server, not int) int {
	for _, pid := range s.Children() {
		if pid != not {
			return pid
		}
	}
	t.Fatalf("no runner other than %d among %v", not, s.Children())
	return 0
}

// getAsync sends GET url in the background; its status arrives on the
// channel (-1 when no answer came).
func getAsync(url string) <-chan int {
	done := make(chan int, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	return done
}

// killMidRequest: SIGKILL of an app's only runner while it serves
// sleepURL (a 10 s sleep) answers that request 502, and a new runner
// (pidURL answers its pid) serves within respawn.
func killMidRequest(t *testing.T, pidURL, sleepURL string, respawn time.Duration) {
	t.Helper()
	code, pidStr := gwtest.Get(t, pidURL)
	pid, err := strconv.Atoi(strings.TrimSpace(pidStr))
	if code != 200 || err != nil {
		t.Fatalf("pid: %d %q", code, pidStr)
	}
	done := getAsync(sleepURL)
	time.Sleep(500 * time.Millisecond) // let the request reach the app
	killAnswers502(t, pid, done)
	waitNewPID(t, pidURL, pidStr, respawn)
}

// killAnswers502 kills pid, the runner serving the request done reports
// on, and wants that request answered 502 within 8 s.
func killAnswers502(t *testing.T, pid int, done <-chan int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != http.StatusBadGateway {
			t.Fatalf("killed mid-request: status %d, want 502", code)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("request on a killed runner did not finish")
	}
}

// waitNewPID polls url, which answers with the serving runner's pid, until
// a runner other than old answers 200.
func waitNewPID(t *testing.T, url, old string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := gwtest.Get(t, url)
		if code == 200 && strings.TrimSpace(body) != strings.TrimSpace(old) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("runner %s not replaced: %d %q", strings.TrimSpace(old), code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func containsPID(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}
