package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

// jsonGW is a gw started with --log-format json. gwtest.Start reads the
// port from the text "gw serving" line, so this starts gw itself and reads
// the JSON one.
type jsonGW struct {
	t    *testing.T
	cmd  *exec.Cmd
	URL  string
	log  lockedBuf
	done chan struct{}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startJSONLogged(t *testing.T, args ...string) *jsonGW {
	t.Helper()
	full := append([]string{"run", "--log-format", "json"}, args...)
	if os.Geteuid() == 0 {
		full = append(full, "--allow-root") // as gwtest does: CI runs as root
	}
	g := &jsonGW{t: t, cmd: exec.Command(gwtest.Binary(t), full...), done: make(chan struct{})}
	pr, pw := io.Pipe()
	g.cmd.Stdout = &g.log
	g.cmd.Stderr = io.MultiWriter(&g.log, pw)
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	// Ends when gw's stderr closes.
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var line struct{ Msg, HTTP string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "gw serving" {
				addr <- line.HTTP
			}
		}
	}()
	// Ends when gw exits.
	go func() { g.cmd.Wait(); pw.Close(); close(g.done) }()
	t.Cleanup(g.stop)
	select {
	case a := <-addr:
		g.URL = "http://" + a
	case <-g.done:
		t.Fatalf("gw exited before serving:\n%s", g.log.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("gw did not start within 30s:\n%s", g.log.String())
	}
	return g
}

// stop sends SIGTERM and checks that no runner outlived gw.
func (g *jsonGW) stop() {
	kids := gwtest.AllChildren(g.cmd.Process.Pid)
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(20 * time.Second):
		g.cmd.Process.Kill()
		<-g.done
		g.t.Errorf("gw did not stop within 20s of SIGTERM")
	}
	gwtest.WaitGone(g.t, kids, 5*time.Second)
}

// waitLog waits until gw's own log has a line containing s.
func (g *jsonGW) waitLog(s string) {
	g.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(g.log.String(), s); {
		if time.Now().After(deadline) {
			g.t.Fatalf("gw never logged %q:\n%s", s, g.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// accessLine is one access log line, JSON, durations in nanoseconds.
type accessLine struct {
	Msg       string `json:"msg"`
	App       string `json:"app"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Status    int    `json:"status"`
	Bytes     int64  `json:"bytes"`
	QueueWait int64  `json:"queue_wait"`
	AppTime   int64  `json:"app_time"`
	Total     int64  `json:"total"`
	PID       int    `json:"pid"`
	RequestID string `json:"request_id"`
}

// readAccess parses a JSON access log, by request id; an id seen twice
// fails the test.
func readAccess(t *testing.T, path string) map[string]accessLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]accessLine{}
	for _, raw := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if raw == "" {
			continue
		}
		var l accessLine
		if err := json.Unmarshal([]byte(raw), &l); err != nil || l.Msg != "request" {
			t.Fatalf("%s: line %q is not an access record (%v)", filepath.Base(path), raw, err)
		}
		if _, dup := out[l.RequestID]; dup {
			t.Errorf("%s: request %s logged twice", filepath.Base(path), l.RequestID)
		}
		out[l.RequestID] = l
	}
	return out
}

// waitAccess waits until the log at path holds a line for every id: a line
// is written as the handler returns, just after the client has its answer.
func waitAccess(t *testing.T, path string, ids ...string) map[string]accessLine {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := readAccess(t, path)
		missing := ""
		for _, id := range ids {
			if _, ok := got[id]; !ok {
				missing = id
			}
		}
		if missing == "" || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAccessLog(t *testing.T) {
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	cfg := writeFile(t, "gw.yaml", fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
limits:
  max_body: 1KiB
apps:
  - name: suite
    lang: python
    path: %s
    interpreter: %s
    workers: 2
    mount: /app
`, app("suite.py"), py))
	g := startJSONLogged(t, "-c", cfg, "--access-log", logPath)
	runners := gwtest.AllChildren(g.cmd.Process.Pid)

	const clientTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	type sent struct {
		method, path, body string
		header             map[string]string
		status             int
		app                string
		id                 string // the response's X-Request-Id
		resp               string
	}
	reqs := []*sent{
		{method: "GET", path: "/app/env", header: map[string]string{"X-Request-Id": "abc-123"}, status: 200, app: "suite"},
		{method: "GET", path: "/app/env", header: map[string]string{"Traceparent": clientTP}, status: 200, app: "suite"},
		{method: "GET", path: "/app/pid", status: 200, app: "suite"},
		{method: "GET", path: "/app/sleep?0.5", status: 200, app: "suite"},
		{method: "GET", path: "/elsewhere", status: 404},
		{method: "POST", path: "/app/hash", body: strings.Repeat("x", 2048), status: 413, app: "suite"},
	}
	for _, r := range reqs {
		req := mustReq(r.method, g.URL+r.path, strings.NewReader(r.body))
		for k, v := range r.header {
			req.Header.Set(k, v)
		}
		resp, body := do(t, req)
		if resp.StatusCode != r.status {
			t.Fatalf("%s %s: %d %s", r.method, r.path, resp.StatusCode, body)
		}
		if ids := resp.Header.Values("X-Request-Id"); len(ids) != 1 {
			t.Fatalf("%s %s: X-Request-Id %q, want one", r.method, r.path, ids)
		}
		r.id, r.resp = resp.Header.Get("X-Request-Id"), body
	}

	// What the app saw.
	for i, wantTP := range []string{"", clientTP} {
		var env map[string]any
		if err := json.Unmarshal([]byte(reqs[i].resp), &env); err != nil {
			t.Fatal(err)
		}
		id := reqs[i].id
		if i == 0 && id != "abc-123" {
			t.Errorf("the client's X-Request-Id came back as %q", id)
		}
		if env["HTTP_X_REQUEST_ID"] != id || env["gw.request_id"] != id {
			t.Errorf("request %d: the app saw HTTP_X_REQUEST_ID %v, gw.request_id %v; want %q",
				i, env["HTTP_X_REQUEST_ID"], env["gw.request_id"], id)
		}
		tp, _ := env["HTTP_TRACEPARENT"].(string)
		if wantTP != "" && tp != wantTP || len(tp) != 55 || !strings.HasPrefix(tp, "00-") {
			t.Errorf("request %d: the app saw HTTP_TRACEPARENT %q, want %q (or a generated one)", i, tp, wantTP)
		}
	}

	ids := make([]string, len(reqs))
	for i, r := range reqs {
		ids[i] = r.id
	}
	logged := waitAccess(t, logPath, ids...)
	for _, r := range reqs {
		l, ok := logged[r.id]
		path, _, _ := strings.Cut(r.path, "?")
		switch {
		case !ok:
			t.Errorf("%s %s (id %s) is not in the access log", r.method, r.path, r.id)
			continue
		case l.Method != r.method || l.Path != path || l.Status != r.status || l.App != r.app ||
			l.Bytes != int64(len(r.resp)):
			t.Errorf("%s %s: logged %+v; want status %d, app %q, %d bytes", r.method, r.path, l, r.status, r.app, len(r.resp))
		case l.Total < l.AppTime+l.QueueWait || l.AppTime < 0 || l.QueueWait < 0:
			t.Errorf("%s %s: times don't add up: %+v", r.method, r.path, l)
		}
		if r.app == "" || r.status == 413 {
			if l.PID != 0 || l.AppTime != 0 {
				t.Errorf("%s %s never reached a runner, logged pid %d app_time %d", r.method, r.path, l.PID, l.AppTime)
			}
		} else if !containsPID(runners, l.PID) {
			t.Errorf("%s %s: logged pid %d, not one of the runners %v", r.method, r.path, l.PID, runners)
		}
	}
	if pid := logged[reqs[2].id].PID; strconv.Itoa(pid) != reqs[2].resp {
		t.Errorf("/pid answered %s, logged pid %d", reqs[2].resp, pid)
	}
	if at := time.Duration(logged[reqs[3].id].AppTime); at < 500*time.Millisecond {
		t.Errorf("/sleep?0.5 logged app_time %v, want ≥ 0.5s", at)
	}
	if n := len(readAccess(t, logPath)); n != len(reqs) {
		t.Errorf("%d access log lines for %d requests", n, len(reqs))
	}

	checkRotation(t, g, logPath)
}

// checkRotation rotates as logrotate does (rename, then SIGUSR1) under
// load: every request lands in exactly one of the two files, and those sent
// after the reopen in the new one.
func checkRotation(t *testing.T, g *jsonGW, logPath string) {
	before := readAccess(t, logPath)
	var (
		mu   sync.Mutex
		sent []string
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	for c := range 4 {
		wg.Add(1)
		// Each client stops at close(stop).
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("load-%d-%d", c, n)
				req := mustReq("GET", g.URL+"/app/pid", nil)
				req.Header.Set("X-Request-Id", id)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("%s: %v", id, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				sent = append(sent, id)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	g.waitLog("access log reopened")
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	after := []string{"after-reopen"}
	req := mustReq("GET", g.URL+"/app/pid", nil)
	req.Header.Set("X-Request-Id", after[0])
	if resp, body := do(t, req); resp.StatusCode != 200 {
		t.Fatalf("after the reopen: %d %s", resp.StatusCode, body)
	}
	newFile := waitAccess(t, logPath, after...)
	if _, ok := newFile[after[0]]; !ok {
		t.Fatalf("the request sent after the reopen is not in the new file")
	}
	mu.Lock()
	defer mu.Unlock()
	var oldFile map[string]accessLine
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		oldFile, newFile = readAccess(t, logPath+".1"), readAccess(t, logPath)
		if len(oldFile)+len(newFile) >= len(before)+len(sent)+len(after) || time.Now().After(deadline) {
			break
		}
	}
	for id := range before {
		if _, ok := oldFile[id]; !ok {
			t.Errorf("%s left the renamed file", id)
		}
	}
	var inOld, inNew int
	for _, id := range sent {
		_, o := oldFile[id]
		_, n := newFile[id]
		switch {
		case o && n:
			t.Errorf("%s logged in both files", id)
		case !o && !n:
			t.Errorf("%s logged in neither file", id)
		case o:
			inOld++
		default:
			inNew++
		}
	}
	t.Logf("rotation under load: %d requests, %d logged to the old file, %d to the new", len(sent), inOld, inNew)
	if inOld == 0 || inNew == 0 {
		t.Errorf("of %d requests under rotation, %d went to the old file and %d to the new: want some in each",
			len(sent), inOld, inNew)
	}
	if len(oldFile)+len(newFile) != len(before)+len(sent)+len(after) {
		t.Errorf("%d + %d lines in the two files for %d requests", len(oldFile), len(newFile), len(before)+len(sent)+len(after))
	}
}

// TestAccessLogPHP: PHP sees the request id and traceparent in $_SERVER
// (they travel as request headers, through the FastCGI params), and the
// text access log names the php-cgi that served the request.
func TestAccessLogPHP(t *testing.T) {
	phpCGI := gwtest.RequireInterpreter(t, "php-cgi")
	logPath := filepath.Join(t.TempDir(), "access.log")
	root := filepath.Dir(writeFile(t, "index.php",
		"<?php echo $_SERVER['HTTP_X_REQUEST_ID'], ' ', $_SERVER['HTTP_TRACEPARENT'];\n"))
	s := gwtest.Start(t, "--interpreter", phpCGI, "--mount", "/php", "--workers", "1", "--access-log", logPath, root)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req := mustReq("GET", s.URL+"/php/", nil)
	req.Header.Set("X-Request-Id", "php-req-1")
	req.Header.Set("Traceparent", tp)
	resp, body := do(t, req)
	if resp.Header.Get("X-Request-Id") != "php-req-1" || body != "php-req-1 "+tp {
		t.Errorf("response id %q; PHP saw %q, want the request id and traceparent sent", resp.Header.Get("X-Request-Id"), body)
	}
	runners := s.Children()
	var line string
	for deadline := time.Now().Add(5 * time.Second); line == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(logPath)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "request_id=php-req-1") {
				line = l
			}
		}
	}
	if !strings.Contains(line, "msg=request ") || !strings.Contains(line, " path=/php/ status=200 bytes="+strconv.Itoa(len(body))+" ") {
		t.Fatalf("access log line %q, want a 200 for /php/ with %d bytes", line, len(body))
	}
	_, pidText, _ := strings.Cut(line, " pid=")
	pid, _ := strconv.Atoi(strings.Fields(pidText)[0])
	if !containsPID(runners, pid) {
		t.Errorf("logged pid %d, not a php-cgi of gw's %v", pid, runners)
	}
}
