package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gwhq/gw/internal/gwtest"
)

// whoApp answers "RUNNER_PID GW_PID": the runner's parent is the gw that
// serves the request, so a client sees which gw answered.
const whoApp = `import os
def application(environ, start_response):
    body = ("%d %d" % (os.getpid(), os.getppid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

// upgradeSetup writes the app and a config with an HTTP listener, a uwsgi
// listener on a unix socket, a stats listener and a pid file.
type upgradeSetup struct {
	dir, app, cfg, sock, pidFile string
}

func newUpgradeSetup(t *testing.T) *upgradeSetup {
	gwtest.RequirePython(t)
	dir := t.TempDir()
	s := &upgradeSetup{dir: dir, app: filepath.Join(dir, "who.py"), cfg: filepath.Join(dir, "gw.yaml"),
		sock: filepath.Join(dir, "uwsgi.sock"), pidFile: filepath.Join(dir, "gw.pid")}
	s.writeApp(t, whoApp)
	s.writeConfig(t, "")
	return s
}

func (s *upgradeSetup) writeApp(t *testing.T, src string) {
	t.Helper()
	if err := os.WriteFile(s.app, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeConfig writes the config, with extra appended (a broken line to
// test a failing upgrade).
func (s *upgradeSetup) writeConfig(t *testing.T, extra string) {
	t.Helper()
	cfg := fmt.Sprintf(`listen:
  http: "127.0.0.1:0"
  uwsgi: "unix:%s"
  stats: "127.0.0.1:0"
limits:
  shutdown_timeout: 10s
pid_file: %s
apps:
  - name: who
    lang: python
    path: %s
    interpreter: %s
    workers: 2
%s`, s.sock, s.pidFile, s.app, gwtest.RequirePython(t), extra)
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// gwProc is a gw whose log is an *os.File pipe read here, not one
// exec.Cmd copies: a gw started by an upgrade inherits that pipe, and
// exec's Wait would wait for it too, so the old gw's exit would not show.
type gwProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    *logLines
}

// logLines is the log of every gw of a test (the upgraded ones write to
// the same pipe), with a way to await a line.
type logLines struct {
	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced at each new line
}

func (l *logLines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	close(l.more)
	l.more = make(chan struct{})
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// await returns the first line from index from on that contains every
// substring of want, and the index after it; it fails the test after d.
func (l *logLines) await(t *testing.T, from int, d time.Duration, want ...string) (string, int) {
	t.Helper()
	deadline := time.After(d)
	for {
		l.mu.Lock()
		more := l.more
		for i := from; i < len(l.lines); i++ {
			if line := l.lines[i]; containsAll(line, want) {
				l.mu.Unlock()
				return line, i + 1
			}
		}
		from = len(l.lines)
		l.mu.Unlock()
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("no log line with %q within %v:\n%s", want, d, l)
		}
	}
}

func (l *logLines) count(want ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if containsAll(line, want) {
			n++
		}
	}
	return n
}

func containsAll(s string, subs []string) bool {
	for _, w := range subs {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

func startGW(t *testing.T, args ...string) *gwProc {
	t.Helper()
	if os.Geteuid() == 0 {
		args = append([]string{"--allow-root"}, args...)
	}
	cmd := exec.Command(gwtest.Binary(t), append([]string{"run"}, args...)...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	p := &gwProc{cmd: cmd, exited: make(chan struct{}), log: &logLines{more: make(chan struct{})}}
	// Ends at EOF: when every gw of the test has exited.
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.log.add(sc.Text())
		}
		pr.Close()
	}()
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	})
	return p
}

var (
	servingPIDRE  = regexp.MustCompile(`\bpid=(\d+)`)
	servingHTTPRE = regexp.MustCompile(`\bhttp=(\S+)`)
)

// serving awaits the "gw serving" line of pid (0: any) from index from on
// and returns its HTTP address and pid.
func (p *gwProc) serving(t *testing.T, from, pid int) (addr string, gotPID, next int) {
	t.Helper()
	want := []string{"gw serving"}
	if pid != 0 {
		want = append(want, fmt.Sprintf("pid=%d", pid))
	}
	line, next := p.log.await(t, from, 90*time.Second, want...)
	m, h := servingPIDRE.FindStringSubmatch(line), servingHTTPRE.FindStringSubmatch(line)
	if m == nil || h == nil {
		t.Fatalf("serving line without pid= or http=: %s", line)
	}
	gotPID, _ = strconv.Atoi(m[1])
	return "http://" + strings.Trim(h[1], `"`), gotPID, next
}

// asSubreaper makes this test process the parent of the gws an upgrade
// starts once their parent (the old gw) exits, so the test can wait for
// them and see how they exit.
func asSubreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
}

// waitOrphan waits for pid, a gw adopted by this process (asSubreaper),
// and returns its exit status.
func waitOrphan(t *testing.T, pid int, d time.Duration) int {
	t.Helper()
	done := make(chan unix.WaitStatus, 1)
	// Ends when pid exits; after d the test kills it, which ends it too.
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		done <- ws
	}()
	select {
	case ws := <-done:
		if !ws.Exited() {
			t.Errorf("gw %d ended by %v", pid, ws.Signal())
			return -1
		}
		return ws.ExitStatus()
	case <-time.After(d):
		syscall.Kill(pid, syscall.SIGKILL)
		<-done
		t.Fatalf("gw %d did not exit within %v", pid, d)
		return -1
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %q: %v", b, err)
	}
	return pid
}

// loadResult counts the answers of a bounded load and which gw gave them.
type loadResult struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       map[string]int
	gws        map[int]int64 // gw pid -> answers
	runners    map[int]bool
	lastGW     atomic.Int64
}

func (r *loadResult) fail(err string) {
	r.failed.Add(1)
	r.mu.Lock()
	r.errs[err]++
	r.mu.Unlock()
}

// answer checks one body, "RUNNER_PID GW_PID".
func (r *loadResult) answer(body string) {
	var runner, gw int
	if _, err := fmt.Sscanf(body, "%d %d", &runner, &gw); err != nil {
		r.fail(fmt.Sprintf("body %q", body))
		return
	}
	r.ok.Add(1)
	r.lastGW.Store(int64(gw))
	r.mu.Lock()
	r.gws[gw]++
	r.runners[runner] = true
	r.mu.Unlock()
}

func (r *loadResult) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%d ok, %d failed (%v); answers by gw pid %v; %d runner pids", r.ok.Load(), r.failed.Load(),
		r.errs, r.gws, len(r.runners))
}

// runLoad sends requests until ctx ends: 8 clients on keep-alive
// connections and 2 on a new connection per request over HTTP, and 2
// uwsgi clients on the unix socket (one connection per request, as nginx's
// uwsgi_pass). It returns when every client has stopped.
func runLoad(ctx context.Context, base, sock string) *loadResult {
	r := &loadResult{errs: map[string]int{}, gws: map[int]int64{}, runners: map[int]bool{}}
	var wg sync.WaitGroup
	for i := range 10 {
		tr := &http.Transport{DisableKeepAlives: i >= 8, MaxIdleConnsPerHost: 1}
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		wg.Add(1)
		// Stops when ctx ends.
		go func() {
			defer wg.Done()
			defer tr.CloseIdleConnections()
			for ctx.Err() == nil {
				resp, err := c.Get(base + "/who")
				if err != nil {
					r.fail(err.Error())
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					r.fail(fmt.Sprintf("status %d, %v", resp.StatusCode, err))
					continue
				}
				r.answer(string(b))
			}
		}()
	}
	pkt := uwsgiPacket(0, "REQUEST_METHOD", "GET", "REQUEST_URI", "/who", "PATH_INFO", "/who", "QUERY_STRING", "",
		"SERVER_NAME", "localhost", "SERVER_PORT", "80", "SERVER_PROTOCOL", "HTTP/1.1")
	for range 2 {
		wg.Add(1)
		// Stops when ctx ends.
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				out, err := uwsgiRoundTrip(sock, pkt)
				if err != nil {
					r.fail("uwsgi: " + err.Error())
					continue
				}
				head, body, ok := strings.Cut(out, "\r\n\r\n")
				if !ok || !strings.HasPrefix(head, "HTTP/1.1 200") {
					r.fail(fmt.Sprintf("uwsgi answer %q", out))
					continue
				}
				r.answer(body)
			}
		}()
	}
	wg.Wait()
	return r
}

func uwsgiRoundTrip(sock string, pkt []byte) (string, error) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(pkt); err != nil {
		return "", err
	}
	var out bytes.Buffer
	_, err = out.ReadFrom(c)
	return out.String(), err
}

// TestUpgradeUnderLoad: two SIGUSR2 upgrades in a row while 12 clients
// (keep-alive and new-connection HTTP, uwsgi on a unix socket) send
// requests. No request may fail; the gw answering changes each time; each
// old gw exits 0 once the new one serves; the last one serves on, on the
// same sockets and path, and stops cleanly.
func TestUpgradeUnderLoad(t *testing.T) {
	asSubreaper(t)
	st := newUpgradeSetup(t)
	first := startGW(t, "-c", st.cfg)
	base, pid0, next := first.serving(t, 0, 0)
	if pid0 != first.cmd.Process.Pid || readPID(t, st.pidFile) != pid0 {
		t.Fatalf("serving pid %d, process %d, pid file %d", pid0, first.cmd.Process.Pid, readPID(t, st.pidFile))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // bound; cancelled below
	defer cancel()
	loaded := make(chan *loadResult)
	go func() { loaded <- runLoad(ctx, base, st.sock) }()
	warm := time.NewTimer(500 * time.Millisecond)
	<-warm.C

	// First upgrade: the test started the old gw, so Wait sees its exit.
	oldKids := gwtest.AllChildren(pid0)
	syscall.Kill(pid0, syscall.SIGUSR2)
	_, pid1, next := first.serving(t, next, 0)
	select {
	case <-first.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("old gw %d still running 30s after the new one served:\n%s", pid0, first.log)
	}
	if code := first.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("old gw exited %d, want 0", code)
	}
	gwtest.WaitGone(t, oldKids, 5*time.Second)
	if got := readPID(t, st.pidFile); got != pid1 {
		t.Errorf("pid file %d after the upgrade, want the new gw's %d", got, pid1)
	}

	// Second upgrade, of the gw the first one started (now this test's).
	oldKids = gwtest.AllChildren(pid1)
	syscall.Kill(pid1, syscall.SIGUSR2)
	_, pid2, _ := first.serving(t, next, 0)
	if code := waitOrphan(t, pid1, 30*time.Second); code != 0 {
		t.Errorf("second old gw exited %d, want 0", code)
	}
	gwtest.WaitGone(t, oldKids, 5*time.Second)
	after := time.NewTimer(500 * time.Millisecond)
	<-after.C
	cancel()
	res := <-loaded
	t.Logf("SIGUSR2 twice under load (gw %d -> %d -> %d): %v", pid0, pid1, pid2, res)

	if res.failed.Load() != 0 || res.ok.Load() < 200 {
		t.Errorf("load: %v; want no failed request", res)
	}
	for _, pid := range []int{pid0, pid1, pid2} {
		if res.gws[pid] == 0 {
			t.Errorf("no answer from gw %d: %v", pid, res)
		}
	}
	if got := int(res.lastGW.Load()); got != pid2 {
		t.Errorf("last answer from gw %d, want the newest, %d", got, pid2)
	}
	if readPID(t, st.pidFile) != pid2 {
		t.Errorf("pid file %d, want %d", readPID(t, st.pidFile), pid2)
	}
	if fi, err := os.Lstat(st.sock); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("uwsgi socket after the upgrades: %v %v", fi, err)
	}

	kids := gwtest.AllChildren(pid2)
	syscall.Kill(pid2, syscall.SIGTERM)
	if code := waitOrphan(t, pid2, 30*time.Second); code != 0 {
		t.Errorf("last gw exited %d at SIGTERM, want 0:\n%s", code, first.log)
	}
	gwtest.WaitGone(t, kids, 5*time.Second)
	if _, err := os.Stat(st.pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after a clean stop: %v", err)
	}
	if n := first.log.count("upgrade failed"); n != 0 {
		t.Errorf("%d failed upgrades logged:\n%s", n, first.log)
	}
}

// TestUpgradeFails: a new gw that cannot start (the app no longer imports,
// then the config no longer parses) leaves the old one serving every
// request, with the reason in the log; once fixed, SIGUSR2 upgrades.
func TestUpgradeFails(t *testing.T) {
	asSubreaper(t)
	st := newUpgradeSetup(t)
	p := startGW(t, "-c", st.cfg)
	base, pid, next := p.serving(t, 0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // bound; cancelled below
	defer cancel()
	loaded := make(chan *loadResult)
	go func() { loaded <- runLoad(ctx, base, st.sock) }()

	st.writeApp(t, "import no_such_module_gw_upgrade\n"+whoApp)
	syscall.Kill(pid, syscall.SIGUSR2)
	_, next = p.log.await(t, next, 90*time.Second, "no_such_module_gw_upgrade")
	line, next := p.log.await(t, next, 90*time.Second, "upgrade failed; this gw keeps serving")
	if !strings.Contains(line, "exit status 1") {
		t.Errorf("failed upgrade logged without the new gw's exit status: %s", line)
	}

	st.writeApp(t, whoApp)
	st.writeConfig(t, "    no_such_key: 1\n")
	syscall.Kill(pid, syscall.SIGUSR2)
	_, next = p.log.await(t, next, 90*time.Second, "no_such_key")
	_, next = p.log.await(t, next, 90*time.Second, "upgrade failed; this gw keeps serving")
	select {
	case <-p.exited:
		t.Fatalf("old gw exited after a failed upgrade:\n%s", p.log)
	default:
	}
	if got := readPID(t, st.pidFile); got != pid {
		t.Errorf("pid file %d after failed upgrades, want the old gw's %d", got, pid)
	}

	st.writeConfig(t, "")
	syscall.Kill(pid, syscall.SIGUSR2)
	_, pid2, _ := p.serving(t, next, 0)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("old gw did not exit after the retried upgrade")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("old gw exited %d", code)
	}
	cancel()
	res := <-loaded
	t.Logf("2 failed upgrades, then one that worked (gw %d -> %d), under load: %v", pid, pid2, res)
	if res.failed.Load() != 0 || res.ok.Load() < 200 {
		t.Errorf("load: %v; want no failed request", res)
	}
	for _, want := range []string{"no_such_module_gw_upgrade", "no_such_key"} {
		line, _ := p.log.await(t, 0, time.Second, want)
		t.Logf("the failed new gw said: %s", line)
	}
	syscall.Kill(pid2, syscall.SIGTERM)
	if code := waitOrphan(t, pid2, 30*time.Second); code != 0 {
		t.Errorf("new gw exited %d at SIGTERM", code)
	}
}

// TestRollingReloadsUnderLoad: five SIGHUP reloads, each awaited, while
// the same 12 clients send requests. No request may fail, and the runners
// serving change with each generation.
func TestRollingReloadsUnderLoad(t *testing.T) {
	st := newUpgradeSetup(t)
	p := startGW(t, "-c", st.cfg)
	base, pid, next := p.serving(t, 0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // bound; cancelled below
	defer cancel()
	loaded := make(chan *loadResult)
	go func() { loaded <- runLoad(ctx, base, st.sock) }()
	const reloads = 5
	for range reloads {
		syscall.Kill(pid, syscall.SIGHUP)
		_, next = p.log.await(t, next, 60*time.Second, "reload: new generation serving")
	}
	// The last generation serves a while too.
	after := time.NewTimer(300 * time.Millisecond)
	<-after.C
	cancel()
	res := <-loaded
	t.Logf("%d SIGHUP reloads under load: %v", reloads, res)
	if res.failed.Load() != 0 || res.ok.Load() < 200 {
		t.Errorf("load: %v; want no failed request", res)
	}
	// 2 workers per generation, 6 generations.
	if len(res.runners) < 2*(reloads+1) {
		t.Errorf("%d distinct runner pids answered, want at least %d (a new generation per reload)", len(res.runners), 2*(reloads+1))
	}
	if n := p.log.count("reload failed"); n != 0 {
		t.Errorf("%d reloads failed:\n%s", n, p.log)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("gw did not stop")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d", code)
	}
}
