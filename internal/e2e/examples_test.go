package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// examplePath is a file under the repository's examples/.
func examplePath(rel string) string {
	return filepath.Join(gwtest.RepoRoot(), "examples", rel)
}

// TestExampleConfigChecks: `gw check -c examples/gw.yaml`, as the README
// shows it, passes. It used to fail: the file named its app as
// examples/python/hello.py, relative to the repository, while gw resolves
// paths against the YAML file's own directory.
func TestExampleConfigChecks(t *testing.T) {
	code, out := gwtest.Run(t, 30*time.Second, "check", "-c", examplePath("gw.yaml"))
	if code != 0 || !strings.Contains(out, ": ok (2 apps)") {
		t.Fatalf("gw check examples/gw.yaml: exit %d\n%s", code, out)
	}
	// Every example file passes gw check on its own, the apps directory's
	// one-app files too.
	for _, f := range []string{"sites/gw.yaml", "sites/apps.d/hello.yaml", "sites/apps.d/shop.yaml"} {
		if code, out := gwtest.Run(t, 30*time.Second, "check", "-c", examplePath(f)); code != 0 || !strings.Contains(out, ": ok (") {
			t.Errorf("gw check examples/%s: exit %d\n%s", f, code, out)
		}
	}
}

// TestExampleConfigServes serves examples/gw.yaml (on a free port instead
// of :8080; a flag beats the file) and fetches both of its apps.
func TestExampleConfigServes(t *testing.T) {
	py := gwtest.RequirePython(t)
	s := gwtest.Start(t, "-c", examplePath("gw.yaml"), "--http", "127.0.0.1:0", "--interpreter", py)
	for _, mount := range []string{"/hello", "/admin"} {
		code, body := gwtest.Get(t, s.URL+mount+"/x")
		if want := "Hello from gw! You asked for /x\n"; code != 200 || body != want {
			t.Errorf("GET %s/x: %d %q, want 200 %q", mount, code, body, want)
		}
	}
}

// TestREADMEConfig: the README's config sample passes `gw check` but for
// its /srv paths, which do not exist here: every key in it is one gw
// knows, every value one it accepts.
func TestREADMEConfig(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(gwtest.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\n")
	sample, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatal("README.md has no ```yaml block")
	}
	code, out := gwtest.Run(t, 30*time.Second, "check", "-c", writeFile(t, "gw.yaml", sample))
	if code != 1 {
		t.Fatalf("gw check: exit %d, want 1 for the missing /srv paths:\n%s", code, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(line, ": /srv/") || !strings.HasSuffix(line, "no such file or directory") {
			t.Errorf("README config problem other than a missing /srv path: %s", line)
		}
	}
}

// TestExampleSites: `gw check -c examples/sites/gw.yaml` passes and the
// apps of its directory serve, by mount and by host, as the README says.
func TestExampleSites(t *testing.T) {
	code, out := gwtest.Run(t, 30*time.Second, "check", "-c", examplePath("sites/gw.yaml"))
	if code != 0 || !strings.Contains(out, ": ok (2 apps)") {
		t.Fatalf("gw check examples/sites/gw.yaml: exit %d\n%s", code, out)
	}
	code, out = gwtest.Run(t, 30*time.Second, "check", "--apps-dir", examplePath("sites/apps.d"))
	if code != 0 || !strings.Contains(out, ": ok (2 apps)") {
		t.Fatalf("gw check --apps-dir examples/sites/apps.d: exit %d\n%s", code, out)
	}
	py := gwtest.RequirePython(t)
	s := gwtest.Start(t, "-c", examplePath("sites/gw.yaml"), "--http", "127.0.0.1:0", "--interpreter", py)
	if code, body := gwtest.Get(t, s.URL+"/hello/x"); code != 200 || body != "Hello from gw! You asked for /x\n" {
		t.Errorf("GET /hello/x: %d %q", code, body)
	}
	req, _ := http.NewRequest("GET", s.URL+"/y", nil)
	req.Host = "shop.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "Hello from gw! You asked for /y\n" {
		t.Errorf("GET shop.example/y: %d %q", resp.StatusCode, b)
	}
}
