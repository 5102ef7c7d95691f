package gateway

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/config"
)

// TestListenTakesActivated: a listener passed in (socket activation) is
// used as is, and only the others are bound.
func TestListenTakesActivated(t *testing.T) {
	passed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "uwsgi.sock")
	cfg := &config.Config{Listen: config.Listen{
		// Already bound by passed: binding it again would fail.
		HTTP:  config.Addr{Network: "tcp", Address: passed.Addr().String()},
		UWSGI: config.Addr{Network: "unix", Address: sock},
	}}
	g := &Gateway{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := g.Listen(map[string]net.Listener{"http": passed}); err != nil {
		t.Fatal(err)
	}
	defer g.CloseListeners()
	got := g.Listeners()
	if len(got) != 2 || got[0].Proto != "http" || got[0].Addr.String() != passed.Addr().String() ||
		got[1].Proto != "uwsgi" || got[1].Addr.String() != sock {
		t.Errorf("listeners %v", got)
	}
	if err := g.listen(); err != nil || len(g.lns) != 2 {
		t.Errorf("Start's listen after Listen: %v, %d listeners; want a no-op", err, len(g.lns))
	}
	if p := Protocols(cfg.Listen); len(p) != 2 || p[0] != "http" || p[1] != "uwsgi" {
		t.Errorf("Protocols = %v", p)
	}
}

// TestListenMore: the more listeners of a kind (listen.uwsgi as a list)
// are bound after the first of their kind, named uwsgi.1, uwsgi.2 in config
// order; a passed socket is taken by that name.
func TestListenMore(t *testing.T) {
	passed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := &config.Config{Listen: config.Listen{
		HTTP:  config.Addr{Network: "tcp", Address: "127.0.0.1:0"},
		UWSGI: config.Addr{Network: "unix", Address: filepath.Join(dir, "a.sock")},
		More: []config.MoreAddr{
			{Proto: "uwsgi", Addr: config.Addr{Network: "unix", Address: filepath.Join(dir, "b.sock")}},
			{Proto: "http", Addr: config.Addr{Network: "tcp", Address: "127.0.0.1:0"}},
			{Proto: "uwsgi", Addr: config.Addr{Network: "tcp", Address: passed.Addr().String()}},
		},
	}}
	want := []string{"http", "http.1", "uwsgi", "uwsgi.1", "uwsgi.2"}
	if p := Protocols(cfg.Listen); strings.Join(p, " ") != strings.Join(want, " ") {
		t.Errorf("Protocols = %v, want %v", p, want)
	}
	g := &Gateway{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := g.Listen(map[string]net.Listener{"uwsgi.2": passed}); err != nil {
		t.Fatal(err)
	}
	defer g.CloseListeners()
	got := g.Listeners()
	if len(got) != len(want) {
		t.Fatalf("listeners %v, want %v", got, want)
	}
	protos := []string{"http", "http", "uwsgi", "uwsgi", "uwsgi"}
	for i, b := range got {
		if b.Name != want[i] || b.Proto != protos[i] {
			t.Errorf("listener %d: %s (%s), want %s (%s)", i, b.Name, b.Proto, want[i], protos[i])
		}
	}
	if got[3].Addr.String() != filepath.Join(dir, "b.sock") || got[4].Addr.String() != passed.Addr().String() {
		t.Errorf("addresses %v", got)
	}
	socks := g.Sockets()
	for _, n := range want {
		if socks[n] == nil {
			t.Errorf("Sockets lacks %s: %v", n, socks)
		}
	}
	if socks["uwsgi.2"] != passed {
		t.Error("Sockets' uwsgi.2 is not the passed socket")
	}
}

// TestListenHTTPSNeedsLoadableCert: a bad certificate fails Listen, and
// nothing stays bound.
func TestListenHTTPSNeedsLoadableCert(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{Listen: config.Listen{
		HTTP:  config.Addr{Network: "tcp", Address: "127.0.0.1:0"},
		HTTPS: config.Addr{Network: "tcp", Address: "127.0.0.1:0"},
		TLS:   config.TLS{Cert: filepath.Join(dir, "none.pem"), Key: filepath.Join(dir, "none.key")},
	}}
	g := &Gateway{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := g.Listen(nil); err == nil {
		t.Fatal("Listen with a missing certificate succeeded")
	}
	if len(g.lns) != 0 {
		t.Errorf("%d listeners left open", len(g.lns))
	}
}

// TestListenUnixPath: what gw does with whatever already sits at a unix
// socket's path. Only a socket nobody answers on is replaced; a regular
// file used to be deleted (connecting to it fails with ECONNREFUSED, just
// as for a stale socket).
func TestListenUnixPath(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		err   string // "" = bound
	}{
		{name: "nothing there", setup: func(*testing.T, string) {}},
		{name: "stale socket", setup: func(t *testing.T, path string) {
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			ln.Close()
		}},
		{name: "live socket", err: "another process is serving on it", setup: func(t *testing.T, path string) {
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
		}},
		{name: "regular file", err: "exists and is not a socket", setup: func(t *testing.T, path string) {
			writeTestFile(t, path, "precious")
		}},
		{name: "directory", err: "exists and is not a socket", setup: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "symlink to a file", err: "exists and is not a socket", setup: func(t *testing.T, path string) {
			target := path + ".target"
			writeTestFile(t, target, "precious")
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gw.sock")
			tc.setup(t, path)
			before, _ := os.Lstat(path)
			ln, err := listen(config.Addr{Network: "unix", Address: path}, 0, config.Owner{})
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				ln.Close()
				return
			}
			if err == nil {
				ln.Close()
				t.Fatalf("bound over a %s", tc.name)
			}
			if !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v, want %q naming %s", err, tc.err, path)
			}
			if after, aerr := os.Lstat(path); aerr != nil || !os.SameFile(before, after) {
				t.Errorf("%s at the socket path was replaced or removed (%v)", tc.name, aerr)
			}
		})
	}
}

// TestListenUnixOwner: --chown-socket gives the socket its owner (root
// only: chown to another user needs CAP_CHOWN), and an unknown user or
// group is an error naming it, with no socket left behind.
func TestListenUnixOwner(t *testing.T) {
	dir := t.TempDir()
	t.Run("unknown", func(t *testing.T) {
		for _, o := range []config.Owner{{User: "no-such-user-gw"}, {Group: "no-such-group-gw"}} {
			path := filepath.Join(dir, "unknown.sock")
			ln, err := listen(config.Addr{Network: "unix", Address: path}, 0, o)
			if err == nil {
				ln.Close()
				t.Fatalf("owner %+v accepted", o)
			}
			if !strings.Contains(err.Error(), "no-such-") || !strings.Contains(err.Error(), "socket owner") {
				t.Errorf("err = %v, want it to name the unknown owner", err)
			}
			if _, err := os.Lstat(path); err == nil {
				t.Errorf("socket left behind after %+v", o)
			}
		}
	})
	t.Run("applied", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("chown to another user needs root")
		}
		for _, tc := range []struct {
			owner    config.Owner
			uid, gid uint32
		}{
			{config.Owner{User: "nobody", Group: "nogroup"}, 65534, 65534},
			{config.Owner{Group: "daemon"}, 0, 1},
			{config.Owner{User: "1234"}, 1234, 0}, // a bare number needs no passwd entry
		} {
			path := filepath.Join(dir, "owned.sock")
			ln, err := listen(config.Addr{Network: "unix", Address: path}, 0o660, tc.owner)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(path)
			ln.Close()
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != tc.uid || st.Gid != tc.gid || fi.Mode().Perm() != 0o660 {
				t.Errorf("owner %+v: socket %d:%d %v, want %d:%d -rw-rw----", tc.owner, st.Uid, st.Gid, fi.Mode().Perm(), tc.uid, tc.gid)
			}
		}
	})
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestListenControl: the control socket is bound with the listeners, mode
// 0600 whatever the umask, reported by Listeners; a live socket at its path
// (another gw) and a file that is not a socket are refused and left as
// they are, a stale one is replaced.
func TestListenControl(t *testing.T) {
	old := syscall.Umask(0) // the widest umask: the mode must not come from it
	defer syscall.Umask(old)
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		err   string // "" = bound
	}{
		{name: "nothing there", setup: func(*testing.T, string) {}},
		{name: "stale socket", setup: func(t *testing.T, path string) {
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			ln.Close()
		}},
		{name: "another gw", err: "control socket: listen unix:%s: another process is serving on it", setup: func(t *testing.T, path string) {
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
		}},
		{name: "regular file", err: "exists and is not a socket", setup: func(t *testing.T, path string) {
			writeTestFile(t, path, "precious")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "control.sock")
			tc.setup(t, path)
			before, _ := os.Lstat(path)
			cfg := &config.Config{Listen: config.Listen{
				HTTP:    config.Addr{Network: "tcp", Address: "127.0.0.1:0"},
				Control: config.Addr{Network: "unix", Address: path},
			}}
			g := &Gateway{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := g.Listen(nil)
			if tc.err != "" {
				if err == nil {
					g.CloseListeners()
					t.Fatalf("bound over %s", tc.name)
				}
				if want := strings.ReplaceAll(tc.err, "%s", path); !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want %q", err, want)
				}
				if after, aerr := os.Lstat(path); aerr != nil || !os.SameFile(before, after) {
					t.Errorf("%s at the path was replaced or removed (%v)", tc.name, aerr)
				}
				if len(g.lns) != 0 || g.ControlListener() != nil {
					t.Error("listeners left open after the refusal")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer g.CloseListeners()
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
				t.Errorf("control socket mode %v, want a socket of mode 0600", fi.Mode())
			}
			if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Geteuid() {
				t.Errorf("owned by uid %d, want gw's %d", st.Uid, os.Geteuid())
			}
			got := g.Listeners()
			if last := got[len(got)-1]; last.Proto != "control" || last.Addr.String() != path {
				t.Errorf("listeners %v, want control at %s last", got, path)
			}
			if g.ControlListener() == nil {
				t.Error("ControlListener is nil")
			}
		})
	}
}

// TestCloseListenersStopsACME: Listen makes the ACME manager, whose
// certificate cache runs a maintenance goroutine from the start; a gateway
// that never starts (or fails to) must stop it with its listeners. It
// used to run on: only Shutdown stopped it.
func TestCloseListenersStopsACME(t *testing.T) {
	maintaining := func() int {
		buf := make([]byte, 1<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "certmagic.(*Cache).maintainAssets")
	}
	before := maintaining()
	cfg := &config.Config{Listen: config.Listen{
		HTTPS: config.Addr{Network: "tcp", Address: "127.0.0.1:0"},
		TLS: config.TLS{ACME: &config.ACME{
			Domains: []string{"example.test"}, CA: "https://127.0.0.1:1/dir",
			Storage: t.TempDir(), RenewInterval: time.Hour,
		}},
	}}
	g := &Gateway{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := g.Listen(nil); err != nil {
		t.Fatal(err)
	}
	// Goroutines start and end asynchronously (under -race, slowly), and
	// another test's manager may still be ending: wait for each count.
	waitFor := func(ok func(int) bool) int {
		n := maintaining()
		for deadline := time.Now().Add(5 * time.Second); !ok(n) && time.Now().Before(deadline); n = maintaining() {
			time.Sleep(10 * time.Millisecond)
		}
		return n
	}
	if n := waitFor(func(n int) bool { return n > before }); n <= before {
		t.Fatalf("no certmagic maintenance goroutine after Listen: the test sees nothing")
	}
	g.CloseListeners()
	if n := waitFor(func(n int) bool { return n <= before }); n > before {
		t.Errorf("%d certmagic maintenance goroutines after CloseListeners, want %d", n, before)
	}
}
