package e2e

import (
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
