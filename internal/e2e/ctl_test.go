package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/gateway/control"
	"github.com/gwhq/gw/internal/gwtest"
)

// ctlGW is a running gw with two python apps, a (2 runners) and b (1), and
// a control socket.
type ctlGW struct {
	*gwtest.Server
	t    *testing.T
	sock string
}

func startCtlGW(t *testing.T) *ctlGW {
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "control.sock")
	cfg := filepath.Join(dir, "gw.yaml")
	yaml := "listen:\n  http: 127.0.0.1:0\n  stats: 127.0.0.1:0\n  control: unix:" + sock + "\n" +
		"limits:\n  shutdown_timeout: 5s\n" +
		"apps:\n" +
		"  - name: a\n    path: " + app("suite.py") + "\n    mount: /a\n    workers: 2\n" +
		"  - name: b\n    path: " + app("suite.py") + "\n    mount: /b\n    workers: 1\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return &ctlGW{Server: gwtest.Start(t, "-c", cfg, "--interpreter", py), t: t, sock: sock}
}

// ctl runs gw ctl against g's socket and returns its exit code and output.
func (g *ctlGW) ctl(args ...string) (int, string) {
	g.t.Helper()
	return gwtest.Run(g.t, 60*time.Second, append([]string{"ctl", "--socket", g.sock}, args...)...)
}

// mustCtl runs gw ctl and fails the test unless it exits 0.
func (g *ctlGW) mustCtl(args ...string) string {
	g.t.Helper()
	code, out := g.ctl(args...)
	if code != 0 {
		g.t.Fatalf("gw ctl %v: exit %d: %s", args, code, out)
	}
	return out
}

func (g *ctlGW) status() control.Status {
	g.t.Helper()
	var s control.Status
	if err := json.Unmarshal([]byte(g.mustCtl("status", "--json")), &s); err != nil {
		g.t.Fatal(err)
	}
	return s
}

// pids lists app's runners that take requests.
func (g *ctlGW) pids(app string) []int {
	g.t.Helper()
	for _, a := range g.status().Apps {
		if a.Name != app {
			continue
		}
		var out []int
		for _, r := range a.Runners {
			if r.State != "draining" {
				out = append(out, r.PID)
			}
		}
		slices.Sort(out)
		return out
	}
	g.t.Fatalf("no app %q in status", app)
	return nil
}

// waitPIDs polls app's runners until ok accepts them (gw ctl has no
// event to wait on for a rolling restart; it returns once it is under way).
func (g *ctlGW) waitPIDs(app string, ok func([]int) bool) []int {
	g.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p := g.pids(app)
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("app %s: runners %v never got as wanted", app, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func disjoint(a, b []int) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// TestCtl runs every gw ctl command against a live gw with two apps.
func TestCtl(t *testing.T) {
	g := startCtlGW(t)
	if fi, err := os.Lstat(g.sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v, %v; want mode 0600", fi, err)
	}

	out := g.mustCtl("status")
	for _, want := range []string{"generation 1", "APP", "a ", "b ", "/a/", "/b/", "serving", "python"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
	aPIDs, bPIDs := g.pids("a"), g.pids("b")
	if len(aPIDs) != 2 || len(bPIDs) != 1 {
		t.Fatalf("runners a %v, b %v; want 2 and 1", aPIDs, bPIDs)
	}

	t.Run("reload APP", func(t *testing.T) {
		if out := g.mustCtl("reload", "a"); !strings.Contains(out, "reload a: done") {
			t.Errorf("reload a: %q", out)
		}
		newA := g.pids("a")
		if len(newA) != 2 || !disjoint(newA, aPIDs) {
			t.Errorf("a's runners %v after reload a, want 2 new ones (were %v)", newA, aPIDs)
		}
		if got := g.pids("b"); !slices.Equal(got, bPIDs) {
			t.Errorf("b's runners %v after reload a, want them untouched: %v", got, bPIDs)
		}
		if code, body := gwtest.Get(t, g.URL+"/a/pid"); code != 200 || !slices.Contains(newA, atoi(t, body)) {
			t.Errorf("/a/pid = %d %q, want one of the new runners %v", code, body, newA)
		}
		aPIDs = newA
	})

	t.Run("restart APP under load", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done := make(chan *gwtest.LoadResult)
		go func() { done <- gwtest.Load(ctx, g.URL+"/b/pid", 4) }()
		g.mustCtl("restart", "b")
		g.waitPIDs("b", func(p []int) bool { return len(p) == 1 && disjoint(p, bPIDs) })
		cancel()
		res := <-done
		t.Logf("restart b under load: %v", res)
		if res.Failed > 0 || res.OK == 0 {
			t.Errorf("restart b: %v; want every request answered", res)
		}
		bPIDs = g.pids("b")
		if got := g.pids("a"); !slices.Equal(got, aPIDs) {
			t.Errorf("a's runners %v after restart b, want them untouched: %v", got, aPIDs)
		}
	})

	t.Run("scale APP N", func(t *testing.T) {
		// scale answers once the target is set; the runners start behind it.
		g.mustCtl("scale", "a", "3")
		g.waitPIDs("a", func(p []int) bool { return len(p) == 3 })
		g.mustCtl("scale", "a", "1")
		g.waitPIDs("a", func(p []int) bool { return len(p) == 1 })
		if code, _ := gwtest.Get(t, g.URL+"/a/pid"); code != 200 {
			t.Errorf("/a/pid = %d after scale a 1", code)
		}
		g.mustCtl("scale", "a", "2")
		aPIDs = g.pids("a")
	})

	t.Run("drain APP, restart APP", func(t *testing.T) {
		if out := g.mustCtl("drain", "b"); !strings.Contains(out, "drain b: done") {
			t.Errorf("drain b: %q", out)
		}
		resp, err := http.Get(g.URL + "/b/pid")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("/b/pid after drain: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		gwtest.WaitGone(t, bPIDs, 5*time.Second)
		if code, _ := gwtest.Get(t, g.URL+"/a/pid"); code != 200 {
			t.Errorf("/a/pid = %d while b is drained", code)
		}
		if code, body := gwtest.Get(t, "http://"+g.Addr("stats")+"/readyz"); code != 200 {
			t.Errorf("/readyz = %d %q while one app is drained on purpose, want 200", code, body)
		}
		for _, a := range g.status().Apps {
			if a.Name == "b" && (a.State != "drained" || len(a.Runners) != 0) {
				t.Errorf("b after drain: state %q, runners %v", a.State, a.Runners)
			}
		}
		if code, out := g.ctl("scale", "b", "2"); code != 1 || !strings.Contains(out, "drained") {
			t.Errorf("scale of a drained app: exit %d %q, want 1 saying it is drained", code, out)
		}
		g.mustCtl("restart", "b")
		if code, _ := gwtest.Get(t, g.URL+"/b/pid"); code != 200 {
			t.Errorf("/b/pid = %d after restart b, want 200", code)
		}
		bPIDs = g.pids("b")
	})

	t.Run("reload", func(t *testing.T) {
		before := g.status().Generation
		if out := g.mustCtl("reload"); !strings.Contains(out, "reload: done") {
			t.Errorf("reload: %q", out)
		}
		s := g.status()
		if s.Generation <= before {
			t.Errorf("generation %d after reload, was %d", s.Generation, before)
		}
		if a, b := g.pids("a"), g.pids("b"); !disjoint(a, aPIDs) || !disjoint(b, bPIDs) || len(a) != 2 || len(b) != 1 {
			t.Errorf("after reload: a %v (was %v), b %v (was %v); want all new", a, aPIDs, b, bPIDs)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"reload", "nope"}, 1, `no such app: "nope"`},
			{[]string{"restart", "nope"}, 1, `no such app`},
			{[]string{"scale", "a", "many"}, 2, "N must be a whole number"},
			{[]string{"restart"}, 2, "accepts 1 arg"},
			{[]string{"explode"}, 2, "unknown command"},
		} {
			code, out := g.ctl(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("gw ctl %v: exit %d %q, want %d with %q", tc.args, code, out, tc.code, tc.want)
			}
		}
	})
}

// TestCtlReloadBadConfig: a reload whose config has a problem fails with
// exit 1 and the problem, and the running apps keep serving.
func TestCtlReloadBadConfig(t *testing.T) {
	g := startCtlGW(t)
	aPIDs := g.pids("a")
	path := filepath.Join(filepath.Dir(g.sock), "gw.yaml") // startCtlGW's config
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), "workers: 2", "workerz: 2", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"reload"}, {"reload", "a"}} {
		code, out := g.ctl(args...)
		if code != 1 || !strings.Contains(out, "workerz") || !strings.Contains(out, "keeps serving") {
			t.Errorf("gw ctl %v with a bad config: exit %d %q, want 1 naming the bad key", args, code, out)
		}
	}
	if got := g.pids("a"); !slices.Equal(got, aPIDs) {
		t.Errorf("a's runners %v after failed reloads, want %v", got, aPIDs)
	}
	if code, _ := gwtest.Get(t, g.URL+"/a/pid"); code != 200 {
		t.Errorf("/a/pid = %d after failed reloads", code)
	}
}

// TestCtlNotGW: gw ctl against whatever is not a live gw's control socket
// fails with one clear line and exit 1, quickly: never a hang.
func TestCtlNotGW(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		want  string
	}{
		{name: "no such path", setup: func(*testing.T, string) {}, want: "no control socket at"},
		{name: "regular file", setup: func(t *testing.T, path string) {
			os.WriteFile(path, []byte("x"), 0o600)
		}, want: "is not a socket"},
		{name: "stale socket", setup: func(t *testing.T, path string) {
			ln := listenUnix(t, path)
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			ln.Close()
		}, want: "nobody is listening"},
		{name: "another HTTP server", setup: func(t *testing.T, path string) {
			ln := listenUnix(t, path)
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("hello from something else"))
			})}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
		}, want: "is not gw's control socket"},
		{name: "closes at once", setup: func(t *testing.T, path string) {
			serveRaw(t, listenUnix(t, path), func(c net.Conn) { c.Close() })
		}, want: "does not speak gw's control protocol"},
		{name: "never answers", setup: func(t *testing.T, path string) {
			serveRaw(t, listenUnix(t, path), func(c net.Conn) { t.Cleanup(func() { c.Close() }) })
		}, want: "no answer within"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".sock")
			tc.setup(t, path)
			start := time.Now()
			code, out := gwtest.Run(t, 20*time.Second, "ctl", "--socket", path, "status")
			took := time.Since(start)
			if code != 1 || !strings.Contains(out, tc.want) || !strings.HasPrefix(out, "gw ctl: ") || strings.Count(out, "\n") != 1 {
				t.Errorf("exit %d, output %q; want 1 and one line with %q", code, out, tc.want)
			}
			if took > 10*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

func listenUnix(t *testing.T, path string) net.Listener {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serveRaw hands every connection to ln to handle until the test ends.
func serveRaw(t *testing.T, ln net.Listener, handle func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}
