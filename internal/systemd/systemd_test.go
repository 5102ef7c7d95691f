package systemd

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNotify(t *testing.T) {
	for _, tc := range []struct{ name, addr string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", fmt.Sprintf("@gw-test-notify-%d", os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: tc.addr, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			t.Setenv("NOTIFY_SOCKET", tc.addr)
			n := NewNotifier()
			if _, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
				t.Error("NOTIFY_SOCKET still set: runners would inherit it")
			}
			if err := n.Notify(Reloading()...); err != nil {
				t.Fatal(err)
			}
			if err := n.Notify(Ready); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4096)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(buf[:k]); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || !strings.HasSuffix(got, "\n") {
				t.Errorf("first message %q", got)
			}
			k, err = conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(buf[:k]); got != "READY=1\n" {
				t.Errorf("second message %q, want READY=1", got)
			}
			// Handed to the gw of an upgrade, it still reaches the same socket.
			f, err := n.File()
			if err != nil {
				t.Fatal(err)
			}
			passed, err := NotifierFromFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := passed.Notify(MainPID(4711), Ready); err != nil {
				t.Fatal(err)
			}
			k, err = conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(buf[:k]); got != "MAINPID=4711\nREADY=1\n" {
				t.Errorf("message through the passed socket %q", got)
			}
		})
	}
}

func TestNotifyUnset(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := NewNotifier()
	if n != nil {
		t.Fatalf("notifier %+v without NOTIFY_SOCKET", n)
	}
	if err := n.Notify(Ready); err != nil {
		t.Errorf("nil notifier: %v", err)
	}
}

// TestMonotonicUsec: the reading must be CLOCK_MONOTONIC (what systemd
// compares), which on Linux is the uptime in /proc/uptime give or take.
func TestMonotonicUsec(t *testing.T) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Skip(err)
	}
	var up float64
	fmt.Sscan(string(b), &up)
	got := float64(monotonicUsec()) / 1e6
	// CLOCK_MONOTONIC stops while suspended; uptime (BOOTTIME) does not.
	if got <= 0 || got > up+1 {
		t.Errorf("monotonic %.1fs, uptime %.1fs", got, up)
	}
}

func TestMatch(t *testing.T) {
	l := func(name string) Listener { return Listener{Listener: fakeListener(name), Name: name} }
	tests := []struct {
		name       string
		ls         []Listener
		configured []string
		want       map[string]string // listener name -> the fake's tag
		err        string
	}{
		{name: "by order", ls: []Listener{l(""), l("")}, configured: []string{"http", "uwsgi"},
			want: map[string]string{"http": "", "uwsgi": ""}},
		{name: "fewer than configured", ls: []Listener{l("")}, configured: []string{"http", "uwsgi"},
			want: map[string]string{"http": ""}},
		{name: "by name", ls: []Listener{l("uwsgi"), l("http")}, configured: []string{"http", "uwsgi"},
			want: map[string]string{"http": "http", "uwsgi": "uwsgi"}},
		{name: "named first, then order", ls: []Listener{l("gw.socket"), l("http")}, configured: []string{"http", "https"},
			want: map[string]string{"http": "http", "https": "gw.socket"}},
		{name: "stats by name", ls: []Listener{l("stats")}, configured: []string{"http", "stats"},
			want: map[string]string{"stats": "stats"}},
		{name: "more of a kind by name", ls: []Listener{l("uwsgi.1"), l("uwsgi")}, configured: []string{"http", "uwsgi", "uwsgi.1"},
			want: map[string]string{"uwsgi": "uwsgi", "uwsgi.1": "uwsgi.1"}},
		{name: "more of a kind by order", ls: []Listener{l(""), l(""), l("")}, configured: []string{"uwsgi", "uwsgi.1", "uwsgi.2"},
			want: map[string]string{"uwsgi": "", "uwsgi.1": "", "uwsgi.2": ""}},
		{name: "not a number after the dot is no name", ls: []Listener{l("uwsgi.x"), l("uwsgi.01")}, configured: []string{"uwsgi", "uwsgi.1"},
			want: map[string]string{"uwsgi": "uwsgi.x", "uwsgi.1": "uwsgi.01"}},
		{name: "more not configured", ls: []Listener{l("uwsgi.2")}, configured: []string{"uwsgi", "uwsgi.1"}, err: `named "uwsgi.2"`},
		{name: "too many", ls: []Listener{l(""), l("")}, configured: []string{"http"}, err: "more than the listeners"},
		{name: "not configured", ls: []Listener{l("fastcgi")}, configured: []string{"http"}, err: `named "fastcgi"`},
		{name: "twice", ls: []Listener{l("http"), l("http")}, configured: []string{"http"}, err: "two sockets"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Match(tc.ls, tc.configured)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, tag := range tc.want {
				if f, ok := got[k].(fakeListener); !ok || string(f) != tag {
					t.Errorf("%s got %v, want the socket %q", k, got[k], tag)
				}
			}
		})
	}
}

type fakeListener string

func (fakeListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (fakeListener) Close() error              { return nil }
func (fakeListener) Addr() net.Addr            { return nil }

// TestListeners passes two bound sockets the way systemd does (fds 3 and 4,
// LISTEN_PID naming the process that execs) to this test binary run again as
// TestHelperListeners, which reports what Listeners found.
func TestListeners(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	sock := filepath.Join(t.TempDir(), "s.sock")
	unix, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close()
	f1, _ := tcp.(*net.TCPListener).File()
	f2, _ := unix.(*net.UnixListener).File()
	defer f1.Close()
	defer f2.Close()
	// sh learns its own pid ($$) and exec keeps it: LISTEN_PID is the pid
	// of the process that reads it, as systemd sets it.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" -test.run='^TestHelperListeners$'`, os.Args[0])
	cmd.Env = append(os.Environ(), "GW_SYSTEMD_HELPER=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=http:uwsgi")
	cmd.ExtraFiles = []*os.File{f1, f2}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	want := fmt.Sprintf("http tcp %s\nuwsgi unix %s\nenv clean\n", tcp.Addr(), sock)
	if !strings.Contains(string(out), want) || strings.Contains(string(out), "inheritable") {
		t.Errorf("helper saw:\n%s\nwant:\n%s", out, want)
	}
}

func TestHelperListeners(t *testing.T) {
	if os.Getenv("GW_SYSTEMD_HELPER") != "1" {
		t.Skip("helper process for TestListeners")
	}
	ls, err := Listeners()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		fmt.Printf("%s %s %s\n", l.Name, l.Addr().Network(), l.Addr())
	}
	if os.Getenv("LISTEN_FDS")+os.Getenv("LISTEN_PID")+os.Getenv("LISTEN_FDNAMES") == "" {
		fmt.Println("env clean")
	}
	// The passed descriptors are closed once duplicated, and the copies are
	// close-on-exec: no runner can inherit a listening socket.
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		target, _ := os.Readlink("/proc/self/fd/" + fd.Name())
		info, _ := os.ReadFile("/proc/self/fdinfo/" + fd.Name())
		var flags int
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "flags:"); ok {
				fmt.Sscanf(strings.TrimSpace(v), "%o", &flags)
			}
		}
		if strings.HasPrefix(target, "socket:") && flags&syscall.O_CLOEXEC == 0 {
			fmt.Printf("inheritable socket fd %s\n", fd.Name())
		}
	}
}

// TestListenersNotOurs: variables set for another process (a parent that
// was activated) are ignored, and still removed.
func TestListenersNotOurs(t *testing.T) {
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("LISTEN_FDS", "1")
	ls, err := Listeners()
	if err != nil || ls != nil {
		t.Fatalf("got %v, %v; want nothing", ls, err)
	}
	if os.Getenv("LISTEN_FDS") != "" {
		t.Error("LISTEN_FDS still set")
	}
}
