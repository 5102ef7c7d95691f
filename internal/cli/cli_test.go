package cli

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gwhq/gw/bridge"
	"github.com/gwhq/gw/runners/proc"
)

// gw runs the command line with an empty environment, so GW_* variables
// of the shell running the tests cannot change the outcome.
func gw(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = execute(args, env{stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

// writeConfig writes a config and an app for it into a temp dir.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "wsgi.py"), []byte("application = None\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	code := Execute([]string{"version"}, &out, &errb)
	// The protocol is the one the codec speaks (bridge.Protocol), not a copy.
	want := fmt.Sprintf("gw dev\n%s %s/%s\nbridge protocol %d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, bridge.Protocol)
	if code != 0 || out.String() != want || errb.Len() != 0 {
		t.Errorf("version: code %d, stdout %q, stderr %q; want 0, %q", code, out.String(), errb.String(), want)
	}
}

func TestCheck(t *testing.T) {
	good := writeConfig(t, "apps:\n  - path: wsgi.py\n")
	two := writeConfig(t, "apps:\n  - path: wsgi.py\n  - path: wsgi.py\n    name: b\n    mount: /b\n")
	bad := writeConfig(t, "listen:\n  htp: \":8080\"\napps:\n  - path: wsgi.py\n    worker: 4\n    threads: 0\n")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string // substring
	}{
		{name: "good", args: []string{"check", "-c", good}, code: 0, stdout: good + ": ok (1 app)\n"},
		{name: "two apps", args: []string{"check", "--config", two}, code: 0, stdout: two + ": ok (2 apps)\n"},
		{name: "bad", args: []string{"check", "-c", bad}, code: 1, stdout: bad + `:2:3: listen.htp: unknown key; did you mean "http"?` + "\n" +
			bad + `:5:5: apps[0].worker: unknown key; did you mean "workers"?` + "\n" +
			bad + ":6:14: apps[0].threads: must be at least 1, got 0\n"},
		{name: "missing file", args: []string{"check", "-c", "/nonexistent.yaml"}, code: 1,
			stdout: "/nonexistent.yaml: read config: no such file or directory\n"},
		{name: "no -c", args: []string{"check"}, code: 2, stderr: "gw: check needs a config file"},
		{name: "extra arg", args: []string{"check", "-c", good, "x"}, code: 2, stderr: "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := gw(t, tc.args...)
			if code != tc.code || stdout != tc.stdout || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("gw %q:\ncode %d, stdout:\n%s\nstderr:\n%s\nwant code %d, stdout:\n%s\nstderr containing %q",
					tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{name: "no command", args: nil, stderr: "Usage:"},
		{name: "unknown command", args: []string{"serve"}, stderr: `unknown command "serve"`},
		{name: "unknown flag", args: []string{"run", "--wokers", "2", "app.py"}, stderr: "unknown flag: --wokers"},
		{name: "bad int flag", args: []string{"run", "--workers", "many", "app.py"}, stderr: `invalid argument "many"`},
		{name: "two apps", args: []string{"run", "a.py", "b.py"}, stderr: "accepts at most 1 arg(s), received 2"},
		{name: "version with args", args: []string{"version", "x"}, stderr: "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := gw(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("gw %q: code %d, stderr:\n%s\nwant 2 and %q", tc.args, code, stderr, tc.stderr)
			}
		})
	}
}

func TestRunBadConfig(t *testing.T) {
	bad := writeConfig(t, "apps:\n  - path: wsgi.py\n    workers: 0\n")
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{name: "bad file", args: []string{"run", "-c", bad}, stderr: bad + ":3:14: apps[0].workers: must be at least 1, got 0\n"},
		{name: "bad flag value", args: []string{"run", "--max-body", "huge", filepath.Join(filepath.Dir(bad), "wsgi.py")},
			stderr: `--max-body: size "huge": want a whole number of bytes with an optional unit, like 64KiB or 512MiB` + "\n"},
		{name: "nothing to serve", args: []string{"run"}, stderr: "nothing to serve: give APP (gw run app.py) or a config file with apps: (-c FILE)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := gw(t, tc.args...)
			if code != 1 || stdout != "" || stderr != tc.stderr {
				t.Errorf("gw %q: code %d, stdout %q, stderr:\n%s\nwant 1 and:\n%s", tc.args, code, stdout, stderr, tc.stderr)
			}
		})
	}
}

// TestStatsUnreachable: no gw listening is a clear error, exit 1.
func TestStatsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, stdout, stderr := gw(t, "stats", "--addr", addr, "--json")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "gw stats: "+addr) || !strings.Contains(stderr, "refused") {
		t.Errorf("stats: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestReportStart(t *testing.T) {
	traceback := "Traceback (most recent call last):\n  File \"/srv/app.py\", line 3\nSyntaxError: invalid syntax"
	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "spawn error with detail",
			err:  fmt.Errorf("start app blog: %w", &proc.SpawnError{App: "blog", Stage: proc.StageLoad, Err: errors.New("exit status 1"), Detail: traceback}),
			want: "gw: start app blog: app \"blog\" worker 0: import failed: exit status 1\n" + traceback + "\n",
		},
		{
			name: "spawn error without detail",
			err:  &proc.SpawnError{App: "blog", Stage: proc.StageExec, Err: errors.New("no python3")},
			want: "gw: app \"blog\" worker 0: exec failed: no python3\n",
		},
		{name: "other error", err: errors.New("listen tcp :80: permission denied"), want: "gw: listen tcp :80: permission denied\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			reportStart(env{stderr: &errb}, tc.err)
			if errb.String() != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", errb.String(), tc.want)
			}
		})
	}
}
