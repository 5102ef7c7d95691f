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
