package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// notifySocket is the unixgram socket a test listens on in place of
// systemd's NOTIFY_SOCKET.
type notifySocket struct {
	t    *testing.T
	path string
	conn *net.UnixConn
}

func newNotifySocket(t *testing.T) *notifySocket {
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{t: t, path: path, conn: conn}
}

// expect reads the next message and fails unless it starts with want.
func (n *notifySocket) expect(want string, log func() string) string {
	n.t.Helper()
	buf := make([]byte, 4096)
	n.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	k, err := n.conn.Read(buf)
	if err != nil {
		n.t.Fatalf("waiting for %q: %v; gw log:\n%s", want, err, log())
	}
	if got := string(buf[:k]); !strings.HasPrefix(got, want) {
		n.t.Fatalf("sd_notify message %q, want %q", got, want)
	}
	return string(buf[:k])
}

// TestSystemdSocketActivationAndNotify runs gw the way systemd does with
// gw.socket and Type=notify: a bound socket as fd 3 with LISTEN_FDS=1 and
// LISTEN_PID of gw itself, and NOTIFY_SOCKET for READY=1, RELOADING=1 and
// STOPPING=1.
func TestSystemdSocketActivationAndNotify(t *testing.T) {
	py := gwtest.RequirePython(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	notify := newNotifySocket(t)
	// sh learns its pid ($$) and exec keeps it, so LISTEN_PID names gw.
	// --http is the address already bound: had gw bound it instead of
	// taking fd 3, it would fail with "address in use".
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, gwtest.Binary(t),
		"run", "--allow-root", "--http", addr, "--workers", "2", "--interpreter", py, suitePath("python/suite.py"))
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=http", "NOTIFY_SOCKET="+notify.path)
	cmd.ExtraFiles = []*os.File{f}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A file, not a buffer: gw writes it while the test reads it.
	logPath := filepath.Join(t.TempDir(), "gw.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Only gw holds the socket from here.
	f.Close()
	ln.Close()
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	defer func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	}()
	logText := func() string { b, _ := os.ReadFile(logPath); return string(b) }

	notify.expect("READY=1", logText)
	code, body := gwtest.Get(t, "http://"+addr+"/env")
	if code != 200 || !strings.Contains(body, `"SERVER_PROTOCOL"`) {
		t.Fatalf("GET /env through the passed socket: %d %.200s", code, body)
	}
	runners := gwtest.AllChildren(cmd.Process.Pid)
	if len(runners) == 0 {
		t.Fatal("no runner started")
	}
	for _, pid := range runners {
		environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		for _, v := range []string{"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=", "NOTIFY_SOCKET="} {
			if bytes.Contains(environ, []byte("\x00"+v)) || bytes.HasPrefix(environ, []byte(v)) {
				t.Errorf("runner %d inherited %s…: it could speak for gw", pid, v)
			}
		}
	}

	cmd.Process.Signal(syscall.SIGHUP)
	if msg := notify.expect("RELOADING=1", logText); !strings.Contains(msg, "\nMONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", msg)
	}
	notify.expect("READY=1", logText)
	if code, _ := gwtest.Get(t, "http://"+addr+"/env"); code != 200 {
		t.Errorf("after reload: %d", code)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	notify.expect("STOPPING=1", logText)
	select {
	case <-done:
		if waitErr != nil {
			t.Errorf("gw exit: %v\n%s", waitErr, logText())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("gw did not stop after SIGTERM:\n%s", logText())
	}
	gwtest.WaitGone(t, runners, 5*time.Second)
}

// TestSystemdActivationSocketNotConfigured: a socket named for a listener
// gw was not given is refused, not served as something else.
func TestSystemdActivationSocketNotConfigured(t *testing.T) {
	py := gwtest.RequirePython(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, _ := ln.(*net.TCPListener).File()
	defer f.Close()
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, gwtest.Binary(t),
		"run", "--allow-root", "--http", "127.0.0.1:0", "--workers", "1", "--interpreter", py, suitePath("python/suite.py"))
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=uwsgi")
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), `named "uwsgi"`) {
		t.Errorf("exit %v, output:\n%s\nwant exit 1 naming the socket", err, out)
	}
}
