package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test runs gw as root and its runners as other users")
	}
}

// ids reads the real, effective, saved and filesystem uid (or gid) of pid.
func ids(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	t.Fatalf("no %s: line in /proc/%d/status", field, pid)
	return ""
}

// runnerPID asks the app at url for the pid of the runner that answers.
func runnerPID(t *testing.T, url string) int {
	t.Helper()
	code, body := gwtest.Get(t, url)
	pid, err := strconv.Atoi(body)
	if code != 200 || err != nil {
		t.Fatalf("GET %s: %d %q", url, code, body)
	}
	return pid
}

// TestPrivilegeDropSingleUser: with --uid nobody --gid nogroup every runner
// runs as nobody:nogroup with no root group, and so does gw itself once its
// listener is bound.
func TestPrivilegeDropSingleUser(t *testing.T) {
	requireRoot(t)
	s := gwtest.Start(t, "--uid", "nobody", "--gid", "nogroup", "--workers", "2",
		"--interpreter", gwtest.RequirePython(t), suitePath("python/suite.py"))
	const nobody = "65534 65534 65534 65534"
	for _, f := range []string{"Uid", "Gid"} {
		if got := ids(t, s.PID(), f); got != nobody {
			t.Errorf("gw %s: %s, want %s (dropped after binding)", f, got, nobody)
		}
	}
	if got := ids(t, s.PID(), "Groups"); got != "65534" {
		t.Errorf("gw Groups: %q, want only nogroup", got)
	}
	kids := runners(t, s)
	if len(kids) != 2 {
		t.Fatalf("runners %v, want 2", kids)
	}
	for _, pid := range kids {
		for _, f := range []string{"Uid", "Gid"} {
			if got := ids(t, pid, f); got != nobody {
				t.Errorf("runner %d %s: %s, want %s", pid, f, got, nobody)
			}
		}
	}
	resp, got := post(t, s.URL+"/hash", strings.NewReader("abc"))
	if resp.StatusCode != 200 || got != "3 "+sha("abc") {
		t.Errorf("POST /hash as nobody: %d %q", resp.StatusCode, got)
	}
	if !strings.Contains(s.Log(), "gw dropped root") {
		t.Errorf("no log line about dropping root:\n%s", s.Log())
	}
	// A gw that dropped root cannot start a new gw that would be root
	// again: SIGUSR2 is refused, with the reason, and this gw serves on.
	syscall.Kill(s.PID(), syscall.SIGUSR2)
	waitFor(t, "upgrade refused", func() bool { return strings.Contains(s.Log(), "SIGUSR2: upgrade refused") })
	if !strings.Contains(s.Log(), "gw dropped root (--uid)") {
		t.Errorf("refusal without its reason:\n%s", s.Log())
	}
	if code, _ := gwtest.Get(t, s.URL+"/pid"); code != 200 {
		t.Errorf("after a refused SIGUSR2: %d", code)
	}
}

// runners lists gw's children but its privileged helper (`gw privsep`, the
// one child that stays root once gw has dropped it).
func runners(t *testing.T, s *gwtest.Server) []int {
	t.Helper()
	var out []int
	for _, pid := range s.Children() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			t.Fatal(err)
		}
		if args := strings.Split(string(b), "\x00"); len(args) > 1 && args[1] == "privsep" {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// TestPrivilegePerAppUsers: apps with their own uid:/gid: run as those
// users; gw keeps root, since it must start runners as both, and says so.
func TestPrivilegePerAppUsers(t *testing.T) {
	requireRoot(t)
	py := gwtest.RequirePython(t)
	cfg := fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
uid: nobody
apps:
  - {name: a, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /a}
  - {name: b, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /b, uid: daemon, gid: daemon}
`, suitePath("python/suite.py"), py)
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	for _, tc := range []struct{ mount, uid, gid string }{
		{"/a", "65534", "65534"}, // --uid's user, with its own primary group
		{"/b", "1", "1"},
	} {
		pid := runnerPID(t, s.URL+tc.mount+"/pid")
		if got := ids(t, pid, "Uid"); got != strings.Repeat(tc.uid+" ", 3)+tc.uid {
			t.Errorf("app %s runner %d Uid: %s, want %s", tc.mount, pid, got, tc.uid)
		}
		if got := ids(t, pid, "Gid"); got != strings.Repeat(tc.gid+" ", 3)+tc.gid {
			t.Errorf("app %s runner %d Gid: %s, want %s", tc.mount, pid, got, tc.gid)
		}
	}
	if got := ids(t, s.PID(), "Uid"); got != "0 0 0 0" {
		t.Errorf("gw Uid: %s, want root kept", got)
	}
	if !strings.Contains(s.Log(), "gw keeps root") {
		t.Errorf("gw did not say why it keeps root:\n%s", s.Log())
	}
}

// TestRootRunnersRefused: gw started as root, with no --uid and no
// --allow-root, refuses to start runners as root; exit 1 and a message
// naming both ways out. The binary is run directly: gwtest adds
// --allow-root for tests that run as root.
func TestRootRunnersRefused(t *testing.T) {
	requireRoot(t)
	py := gwtest.RequirePython(t)
	mixed := writeFile(t, "gw.yaml", fmt.Sprintf(`
listen: {http: "127.0.0.1:0"}
apps:
  - {name: safe, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /a, uid: nobody}
  - {name: unsafe, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /b}
`, suitePath("python/suite.py"), py))
	for _, tc := range []struct {
		name string
		args []string
		app  string
	}{
		{"flags", []string{"--http", "127.0.0.1:0", "--interpreter", py, suitePath("python/suite.py")}, `app "suite"`},
		{"one app without uid", []string{"-c", mixed}, `app "unsafe"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(gwtest.Binary(t), append([]string{"run"}, tc.args...)...)
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "GW_") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			start := time.Now()
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, out)
			}
			for _, want := range []string{tc.app, "would run as root", "--uid USER", "--allow-root"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v: the refusal should come before any runner starts", d)
			}
		})
	}
}

// TestPrivilegePHP: php-cgi runs as its app's user too, both when gw drops
// to that user (its FastCGI sockets then belong to it) and when gw keeps
// root for per-app users beside a Python app.
func TestPrivilegePHP(t *testing.T) {
	requireRoot(t)
	phpCGI := gwtest.RequireInterpreter(t, "php-cgi")
	py := gwtest.RequirePython(t)
	t.Run("dropped", func(t *testing.T) {
		s := gwtest.Start(t, "--uid", "daemon", "--workers", "1", "--interpreter", phpCGI, suitePath("php/site"))
		if got := ids(t, runnerPID(t, s.URL+"/pid.php"), "Uid"); got != "1 1 1 1" {
			t.Errorf("php-cgi Uid: %s, want daemon's", got)
		}
		if got := ids(t, s.PID(), "Uid"); got != "1 1 1 1" {
			t.Errorf("gw Uid: %s, want daemon's", got)
		}
	})
	t.Run("per app", func(t *testing.T) {
		cfg := fmt.Sprintf(`
listen: {http: "127.0.0.1:0"}
apps:
  - {name: py, path: %s, interpreter: %s, workers: 1, mount: /py, uid: nobody}
  - {name: php, lang: php, path: %s, interpreter: %s, workers: 1, mount: /php, uid: daemon}
`, suitePath("python/suite.py"), py, suitePath("php/site"), phpCGI)
		s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
		if got := ids(t, runnerPID(t, s.URL+"/php/pid.php"), "Uid"); got != "1 1 1 1" {
			t.Errorf("php-cgi Uid: %s, want daemon's", got)
		}
		if got := ids(t, runnerPID(t, s.URL+"/py/pid"), "Uid"); got != "65534 65534 65534 65534" {
			t.Errorf("python runner Uid: %s, want nobody's", got)
		}
	})
}
