package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// TestUnixSocketPathIsNotASocket: a listener path that names a regular file
// (a typo, or the config pointing at the app) makes gw exit 1 with a
// message naming the path, and the file survives. gw used to delete it:
// connecting to a regular file fails with ECONNREFUSED, which it took for
// a stale socket. gunicorn refuses the same way.
func TestUnixSocketPathIsNotASocket(t *testing.T) {
	py := gwtest.RequirePython(t)
	file := writeFile(t, "settings.py", "precious = True\n")
	code, out := gwtest.Run(t, 30*time.Second, "run", "--uwsgi", "unix:"+file, "--interpreter", py, suitePath("python/suite.py"))
	if code != 1 || !strings.Contains(out, file) || !strings.Contains(out, "is not a socket") {
		t.Errorf("exit %d, want 1 and a message naming %s:\n%s", code, file, out)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious = True\n" {
		t.Errorf("the file at the socket path: %q, %v; want it untouched", b, err)
	}
}

// TestChownSocket: --chown-socket hands a unix-socket listener to the web
// server's user, so mode 0660 is enough for it to connect; without it the
// socket stays root's and that user is refused. Run as root, since only
// root can give a file away.
func TestChownSocket(t *testing.T) {
	requireRoot(t)
	py := gwtest.RequirePython(t)
	// Traversable by nobody, unlike t.TempDir's 0700 directories.
	dir, err := os.MkdirTemp("", "gw-chown-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		connect bool
	}{
		{"root's", nil, false},
		{"nobody's", []string{"--chown-socket", "nobody:nogroup"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(dir, "uwsgi.sock")
			args := append([]string{"--http", "127.0.0.1:0", "--uwsgi", "unix:" + sock, "--chmod-socket", "0660",
				"--interpreter", py, suitePath("python/suite.py")}, tc.args...)
			s := gwtest.Start(t, args...)
			defer s.Stop()
			err := connectAs(py, 65534, 65534, sock)
			if tc.connect && err != nil {
				t.Errorf("nobody cannot connect to a socket given to it: %v", err)
			}
			if !tc.connect && err == nil {
				t.Errorf("nobody connected to root's 0660 socket")
			}
		})
	}
}

// connectAs connects to the unix socket at path as uid:gid, from a child
// process (a Go program cannot change the user of one goroutine).
func connectAs(py string, uid, gid uint32, path string) error {
	cmd := exec.Command(py, "-c", "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// TestShimsNotWritableByApp: under --uid, gw runs as the app's user too,
// and the app used to own gw's runtime directory and the shim in it (gw
// made them after dropping root), so it could rewrite the code every later
// runner runs. Now the directory and shims are root's and read-only: the
// app's user can neither write a shim nor add, rename or remove an entry.
// When gw stops, its root helper removes the directory.
func TestShimsNotWritableByApp(t *testing.T) {
	requireRoot(t)
	py := gwtest.RequirePython(t)
	s := gwtest.Start(t, "--uid", "nobody", "--gid", "nogroup", "--workers", "1",
		"--interpreter", py, suitePath("python/suite.py"))
	kids := runners(t, s)
	if len(kids) != 1 {
		t.Fatalf("runners %v, want 1", kids)
	}
	shim := shimPath(t, kids[0])
	dir := filepath.Dir(shim)
	for path, want := range map[string]os.FileMode{dir: os.ModeDir | 0o711, shim: 0o444} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode() != want {
			t.Errorf("%s: uid %d, %v; want root's, %v", path, st.Uid, fi.Mode(), want)
		}
	}
	// Each line the app's user must not manage; the script prints the ones
	// it did.
	script := `
import os, sys
shim = sys.argv[1]
d = os.path.dirname(shim)
tries = {
    "write the shim": lambda: open(shim, "ab").close(),
    "chmod the shim": lambda: os.chmod(shim, 0o666),
    "rename the shim": lambda: os.rename(shim, shim + ".old"),
    "remove the shim": lambda: os.unlink(shim),
    "create a file": lambda: open(os.path.join(d, "evil.py"), "x").close(),
}
for name, f in tries.items():
    try:
        f()
        print(name)
    except PermissionError:
        pass
`
	cmd := exec.Command(py, "-c", script, shim)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("as nobody (the app's user), managed to:\n%s(%v)", out, err)
	}
	s.Stop()
	if _, err := os.Lstat(dir); err == nil {
		t.Errorf("runtime dir %s left behind after gw stopped", dir)
	}
}

// shimPath is the shim a runner runs: the argument of its command line
// that names a gw_*.py/.rb/.pl file.
func shimPath(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Split(string(b), "\x00") {
		if strings.HasPrefix(filepath.Base(a), "gw_") {
			return a
		}
	}
	t.Fatalf("no shim in runner %d's command line %q", pid, b)
	return ""
}

// TestTLSKeyRotationUnderUID: with --uid, gw drops root after binding, yet
// SIGHUP still loads a renewed certificate whose key only root may read
// (0600 in a 0700 directory, as certbot keeps them): gw's root helper reads
// it. It used to fail with "permission denied" and keep the old
// certificate until a restart.
func TestTLSKeyRotationUnderUID(t *testing.T) {
	requireRoot(t)
	s, cert1, certFile, keyFile := startTLSSuite(t, "--uid", "nobody", "--gid", "nogroup", "--workers", "1")
	if got := ids(t, s.PID(), "Uid"); got != "65534 65534 65534 65534" {
		t.Fatalf("gw Uid %s, want nobody's: this test is about a gw that dropped root", got)
	}
	cert2 := writeCert(t, certFile, keyFile, 2)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key %v %v, want 0600", fi, err)
	}
	c := tlsClient(h2, true, cert1, cert2)
	if got := serial(t, c, s.HTTPS); got != 1 {
		t.Fatalf("serial %d before SIGHUP, want 1", got)
	}
	syscall.Kill(s.PID(), syscall.SIGHUP)
	defer func() {
		if t.Failed() {
			t.Logf("gw log:\n%s", s.Log())
		}
	}()
	waitSerial(t, c, s.HTTPS, 2)
	if strings.Contains(s.Log(), "certificate not reloaded") {
		t.Errorf("reload logged an error:\n%s", s.Log())
	}
}

// TestRuntimeDirRemovedAfterSIGKILL: a gw that dropped root cannot remove
// its root-owned runtime directory; its helper does, and does so even when
// gw is SIGKILLed (EOF on the helper's socket), then exits itself.
func TestRuntimeDirRemovedAfterSIGKILL(t *testing.T) {
	requireRoot(t)
	s := gwtest.Start(t, "--uid", "nobody", "--gid", "nogroup", "--workers", "1",
		"--interpreter", gwtest.RequirePython(t), suitePath("python/suite.py"))
	kids := s.Children()
	if len(kids) != 2 {
		t.Fatalf("children %v, want a runner and the helper", kids)
	}
	dir := filepath.Dir(shimPath(t, runners(t, s)[0]))
	syscall.Kill(s.PID(), syscall.SIGKILL)
	<-s.Done()
	gwtest.WaitGone(t, kids, 10*time.Second)
	if _, err := os.Lstat(dir); err == nil {
		t.Errorf("runtime dir %s left behind after gw was SIGKILLed", dir)
	}
}
