package goplugin

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/gwhq/gw/runners/proc"
)

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// sleepArg is an argument for sleep(1) unique to this test process, so a
// process it leaves behind can be told from another run's.
func sleepArg(secs int) string {
	return fmt.Sprintf("%d.%06d", secs, os.Getpid()%1000000)
}

// marker is how sleepArg's process shows in /proc/PID/cmdline.
func marker(secs int) string { return "sleep\x00" + sleepArg(secs) }

// helloProgram builds a Go program that prints "hello" and exits.
func helloProgram(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "hello.go")
	os.WriteFile(src, []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"), 0o644)
	out := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-o", out, src)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func TestNotAPluginFailsFast(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "plain")
	os.WriteFile(notExec, []byte("x"), 0o644)
	other := sha256.Sum256([]byte("another binary"))
	for _, tc := range []struct {
		name     string
		path     string
		checksum []byte
		stage    proc.Stage
		want     string // in the error
		detail   string // in SpawnError.Detail
		is       error
		marker   string // in the command line of a process that must be gone
	}{
		{name: "Go program printing hello", path: helloProgram(t, dir), stage: proc.StageHandshake,
			want: "built without github.com/hashicorp/go-plugin"},
		{name: "prints garbage", path: script(t, dir, "garbage", "echo hello; exec sleep "+sleepArg(61)), stage: proc.StageHandshake,
			want: `its first line on stdout is "hello"`, detail: "is not a Go executable", marker: marker(61)},
		{name: "prints nothing", path: script(t, dir, "silent", "exec sleep "+sleepArg(62)), stage: proc.StageReadyTimeout,
			want: "no go-plugin handshake", detail: "is not a Go executable", marker: marker(62)},
		{name: "exits at once", path: "/bin/sleep", stage: proc.StageLoad,
			want: "plugin exited during its start (exit status 1)", detail: "missing operand"},
		{name: "exits with a message", path: script(t, dir, "fails", "echo 'cannot read config' >&2; exit 3"), stage: proc.StageLoad,
			want: "exit status 3", detail: "cannot read config"},
		{name: "other protocol version", path: script(t, dir, "v99", "echo '1|99|unix|/nonexistent|grpc'; exec sleep "+sleepArg(63)),
			stage: proc.StageHandshake, want: "incompatible API version", marker: marker(63)},
		{name: "net/rpc plugin", path: script(t, dir, "netrpc", "echo '1|1|unix|/nonexistent|netrpc'; exec sleep "+sleepArg(64)),
			stage: proc.StageHandshake, want: "unsupported plugin protocol", marker: marker(64)},
		{name: "missing", path: filepath.Join(dir, "nope"), stage: proc.StageExec, want: "no such file", is: os.ErrNotExist},
		{name: "not executable", path: notExec, stage: proc.StageExec, want: "not an executable file"},
		{name: "checksum mismatch", path: examplePlugin, checksum: other[:], stage: proc.StageExec,
			want: "checksums did not match", is: plugin.ErrChecksumsDoNotMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := newLog()
			sockDir := t.TempDir()
			l := &Launcher{App: "bad", Path: tc.path, Checksum: tc.checksum, StartTimeout: time.Second, SockDir: sockDir, Log: log}
			begin := time.Now()
			w, err := l.Launch(context.Background(), 7)
			took := time.Since(begin)
			if err == nil {
				w.Kill()
				t.Fatal("launched")
			}
			var se *proc.SpawnError
			if !errors.As(err, &se) {
				t.Fatalf("%T %v is not a *proc.SpawnError", err, err)
			}
			t.Logf("%v\n%s", err, se.Detail)
			if se.App != "bad" || se.Worker != 7 || se.Stage != tc.stage {
				t.Errorf("app %q worker %d stage %q, want stage %q", se.App, se.Worker, se.Stage, tc.stage)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if !strings.Contains(se.Detail, tc.detail) {
				t.Errorf("detail %q lacks %q", se.Detail, tc.detail)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error does not wrap %v", tc.is)
			}
			if took > 3*time.Second {
				t.Errorf("took %v", took)
			}
			if tc.marker != "" {
				if left := running(tc.marker); len(left) > 0 {
					t.Errorf("left running: %v", left)
				}
			}
			if ents, _ := os.ReadDir(sockDir); len(ents) > 0 {
				t.Errorf("socket dirs left behind: %v", ents)
			}
		})
	}
}

func TestLaunchCanceled(t *testing.T) {
	log, _ := newLog()
	l := &Launcher{App: "slow", Path: script(t, t.TempDir(), "silent", "exec sleep "+sleepArg(65)), SockDir: t.TempDir(), Log: log}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := l.Launch(ctx, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the context's", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	if left := running(marker(65)); len(left) > 0 {
		t.Errorf("left running: %v", left)
	}
}

func TestChecksumAccepted(t *testing.T) {
	f, err := os.Open(examplePlugin)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	io.Copy(h, f)
	f.Close()
	log, _ := newLog()
	l := launcher(t, log)
	l.Checksum = h.Sum(nil)
	w, err := l.Launch(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.Stop(ctx)
}

// A bare name is the file in the working directory, not a search of PATH.
func TestRelativePath(t *testing.T) {
	t.Chdir(filepath.Dir(examplePlugin))
	log, _ := newLog()
	l := launcher(t, log)
	l.Path = filepath.Base(examplePlugin)
	w, err := l.Launch(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.Stop(ctx)
}

func TestRunsAsUserInDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	// Both the binary and the socket directory must be reachable by the
	// plugin's user.
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o711) // the test's own temp root
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "plugin")
	b, err := os.ReadFile(examplePlugin)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, b, 0o755)
	sockDir := t.TempDir()
	os.Chmod(sockDir, 0o711)
	log, _ := newLog()
	l := &Launcher{App: "nobody", Path: bin, Dir: "/", SockDir: sockDir, Log: log,
		Cred: &syscall.Credential{Uid: 65534, Gid: 65534}}
	w, err := l.Launch(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.Stop(ctx)
	}()
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.PID()))
	if !strings.Contains(string(status), "\nUid:\t65534\t") {
		t.Errorf("plugin not running as 65534:\n%s", status)
	}
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", w.PID())); cwd != "/" {
		t.Errorf("cwd %q", cwd)
	}
	tw := newTestWriter()
	if err := w.Serve(0, tw, httptest.NewRequest("GET", "/", nil)); err != nil || tw.code != 200 {
		t.Errorf("serve: %v %d", err, tw.code)
	}
}
