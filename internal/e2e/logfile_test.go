package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// logFileApp prints each request's marker to stderr, which gw logs as the
// runner's output.
const logFileApp = `import sys
def application(environ, start_response):
    print("app-says " + environ.get("QUERY_STRING", ""), file=sys.stderr, flush=True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
`

// TestLogFile: with --log-file, gw's own log, the runner's output and the
// access log (--access-log -) go to the file and not to stderr; the file
// is 0640; logrotate's rotation (rename, SIGUSR1) moves later lines, the
// reopen line first, to a new file at the path and leaves earlier ones in
// the renamed file.
func TestLogFile(t *testing.T) {
	py := gwtest.RequirePython(t)
	app := writeFile(t, "app.py", logFileApp)
	logPath := filepath.Join(t.TempDir(), "gw.log")
	s := gwtest.Start(t, "--interpreter", py, "--workers", "1", "--log-file", logPath, "--access-log", "-", app)

	get := func(marker string) {
		t.Helper()
		if code, body := gwtest.Get(t, s.URL+"/?"+marker); code != 200 || body != "ok" {
			t.Fatalf("GET ?%s: %d %q", marker, code, body)
		}
	}
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// waitIn waits for every want in the file at p (runner output and the
	// access line are written after the answer).
	waitIn := func(p string, want ...string) string {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			b, _ := os.ReadFile(p) // the new file may not be there yet
			got, all := string(b), true
			for _, w := range want {
				all = all && strings.Contains(got, w)
			}
			if all {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s lacks one of %q:\n%s", filepath.Base(p), want, got)
			}
		}
	}

	get("before-rotation")
	before := waitIn(logPath, "gw serving", "app-says before-rotation", `path=/`)
	if !strings.Contains(before, "msg=request") {
		t.Errorf("no access line in the log file:\n%s", before)
	}
	fi, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o027 != 0 || perm&0o600 != 0o600 {
		t.Errorf("log file mode %v, want 0640 or narrower (not group-writable, not for others)", perm)
	}
	out := s.Log()[:len(s.Log())-len(before)] // gw's own stderr and stdout
	if !strings.Contains(out, "gw: logging to "+logPath) || strings.Contains(out, "gw serving") || strings.Contains(out, "app-says") {
		t.Errorf("stderr should name the file and hold nothing else of the log:\n%s", out)
	}

	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(s.PID(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitIn(logPath, "SIGUSR1: log reopened")
	get("after-rotation")
	after := waitIn(logPath, "app-says after-rotation")
	old := read(logPath + ".1")
	for _, c := range []struct {
		file, text, want string
		in               bool
	}{
		{"old", old, "app-says before-rotation", true},
		{"old", old, "app-says after-rotation", false},
		{"old", old, "SIGUSR1: log reopened", false},
		{"new", after, "app-says before-rotation", false},
	} {
		if strings.Contains(c.text, c.want) != c.in {
			t.Errorf("%s file: has %q = %v, want %v:\n%s", c.file, c.want, !c.in, c.in, c.text)
		}
	}
	if i, j := strings.Index(after, "log reopened"), strings.Index(after, "after-rotation"); i > j {
		t.Errorf("the reopen line should come first in the new file:\n%s", after)
	}

	s.Stop()
	if got := read(logPath); !strings.Contains(got, "gw stopping") {
		t.Errorf("the stop is not in the new file:\n%s", got)
	}
}

// TestLogFileUnwritable: a log file gw cannot open stops it at once, exit
// 1, saying why on stderr.
func TestLogFileUnwritable(t *testing.T) {
	py := gwtest.RequirePython(t)
	app := writeFile(t, "app.py", logFileApp)
	bad := filepath.Join(t.TempDir(), "no-such-dir", "gw.log")
	code, out := gwtest.Run(t, 30*time.Second, "run", "--interpreter", py, "--http", "127.0.0.1:0", "--log-file", bad, app)
	if code != 1 || !strings.Contains(out, "log file") || !strings.Contains(out, bad) {
		t.Errorf("exit %d, output %q; want exit 1 naming the log file", code, out)
	}
}
