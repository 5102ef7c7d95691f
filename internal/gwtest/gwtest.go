// Package gwtest is the integration harness: it builds the gw binary once,
// starts it on loopback with flags or a YAML config, waits until it serves,
// and on cleanup stops it and checks that no runner process outlived it.
package gwtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds ./cmd/gw once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gwtest-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gw")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/gw")
		cmd.Dir = RepoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// RepoRoot is the module root (where go.mod is).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// RequireInterpreter returns the path of an interpreter, or skips the test
// when it is missing, unless GW_REQUIRE_RUNTIMES=1, where it fails.
func RequireInterpreter(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("interpreter %v not installed", names)
	if os.Getenv("GW_REQUIRE_RUNTIMES") == "1" {
		t.Fatalf("%s (GW_REQUIRE_RUNTIMES=1)", msg)
	}
	t.Skip(msg + "; set GW_REQUIRE_RUNTIMES=1 to make this a failure")
	return ""
}

// RequirePython returns Debian's /usr/bin/python3 (which has Flask and
// Django from python3-flask / python3-django) or skips.
func RequirePython(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return RequireInterpreter(t, "python3")
}

// Server is one running gw.
type Server struct {
	t     testing.TB
	cmd   *exec.Cmd
	URL   string // http://127.0.0.1:PORT
	HTTPS string // https://127.0.0.1:PORT when gw serves HTTPS, else ""
	log   *syncBuffer
	// logFile is the --log-file gw was started with, "" for stderr.
	logFile string
	done    chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	addrRE  = regexp.MustCompile(`\bhttp=(\S+)`)
	httpsRE = regexp.MustCompile(`\bhttps=(\S+)`)
)

// Start runs `gw run ARGS...` with --http 127.0.0.1:0 added unless args name
// a listener or config, and waits until it logs the address it serves on.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	s, err := start(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func start(t testing.TB, args ...string) (*Server, error) {
	full := append([]string{"run"}, rootArgs(args)...)
	if !hasFlag(args, "--http") && !hasFlag(args, "-c") {
		full = append(full, "--http", "127.0.0.1:0")
	}
	cmd := exec.Command(Binary(t), full...)
	log := &syncBuffer{}
	pr, pw := io.Pipe()
	cmd.Stdout = log
	cmd.Stderr = io.MultiWriter(log, pw)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{t: t, cmd: cmd, log: log, logFile: flagValue(args, "--log-file"), done: make(chan struct{})}
	addr := make(chan [2]string, 1) // http, https
	serving := func(line string) bool {
		if !strings.Contains(line, "gw serving") {
			return false
		}
		var a [2]string
		for i, re := range []*regexp.Regexp{addrRE, httpsRE} {
			if m := re.FindStringSubmatch(line); m != nil {
				a[i] = strings.Trim(m[1], `"[]`)
			}
		}
		select {
		case addr <- a:
		default:
		}
		return true
	}
	if s.logFile != "" {
		// gw logs to the file: the "gw serving" line is there.
		go func() {
			for {
				b, _ := os.ReadFile(s.logFile)
				for _, l := range strings.Split(string(b), "\n") {
					if serving(l) {
						return
					}
				}
				select {
				case <-s.done:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			serving(sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	go func() { cmd.Wait(); pw.Close(); close(s.done) }()
	t.Cleanup(s.Stop)
	select {
	case a := <-addr:
		if a[0] != "" {
			s.URL = "http://" + a[0]
		}
		if a[1] != "" {
			s.HTTPS = "https://" + a[1]
		}
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("gw exited before serving (%v):\n%s", cmd.ProcessState, log.String())
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("gw did not start within 30s:\n%s", log.String())
	}
}

// flagValue is the value of flag f in args ("--f v" or "--f=v"), or "".
func flagValue(args []string, f string) string {
	for i, a := range args {
		if a == f && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, f+"="); ok {
			return v
		}
	}
	return ""
}

func hasFlag(args []string, f string) bool {
	for _, a := range args {
		if a == f || strings.HasPrefix(a, f+"=") {
			return true
		}
	}
	return false
}

// Log is everything gw wrote so far: its output, then its --log-file's
// content when it logs to one.
func (s *Server) Log() string {
	if s.logFile == "" {
		return s.log.String()
	}
	b, _ := os.ReadFile(s.logFile)
	return s.log.String() + string(b)
}

// PID is gw's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Done is closed when gw has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// ExitCode is gw's exit status once Done.
func (s *Server) ExitCode() int { return s.cmd.ProcessState.ExitCode() }

// Children lists the pids of gw's children (its runners).
func (s *Server) Children() []int { return AllChildren(s.cmd.Process.Pid) }

// Stop sends SIGTERM, waits, and fails the test if any runner survived.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	kids := s.Children()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		s.t.Errorf("gw did not stop within 20s of SIGTERM")
	}
	WaitGone(s.t, kids, 5*time.Second)
}

// WaitGone fails the test if any of pids is still alive after d.
func WaitGone(t testing.TB, pids []int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for _, pid := range pids {
		for Alive(pid) {
			if time.Now().After(deadline) {
				t.Errorf("process %d outlived gw", pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// AllChildren lists the children of every thread of pid (Go starts runners
// from any thread).
func AllChildren(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// rootArgs adds --allow-root when the tests run as root (CI does) and the
// test did not choose a user: gw refuses root runners unless told.
func rootArgs(args []string) []string {
	if os.Geteuid() != 0 || hasFlag(args, "--uid") || hasFlag(args, "--allow-root") {
		return args
	}
	return append([]string{"--allow-root"}, args...)
}

// Run runs gw with args to completion and returns its exit code and output.
func Run(t testing.TB, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	if len(args) > 0 && args[0] == "run" {
		args = append([]string{"run"}, rootArgs(args[1:])...)
	}
	cmd := exec.Command(Binary(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("gw %v did not exit within %v:\n%s", args, timeout, out.String())
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// Get fetches url and returns status and body.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
