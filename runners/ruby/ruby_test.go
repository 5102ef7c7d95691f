package ruby

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/gwtest"
)

// TestSelftestGolden: the shim's codec agrees byte for byte with the Go
// codec's golden frames.
func TestSelftestGolden(t *testing.T) {
	ruby := gwtest.RequireInterpreter(t, "ruby")
	golden := filepath.Join(gwtest.RepoRoot(), "bridge", "testdata", "golden")
	out, err := exec.Command(ruby, "gw_rack.rb", "--selftest", golden).CombinedOutput()
	if err != nil || !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatalf("selftest: %v\n%s", err, out)
	}
}

// TestShimHarness runs the shim's conformance harness (testdata/harness.py)
// against the installed rack, playing the gateway over socketpairs.
func TestShimHarness(t *testing.T) {
	gwtest.RequireInterpreter(t, "ruby")
	py := gwtest.RequirePython(t)
	cmd := exec.Command(py, "harness.py")
	cmd.Dir = "testdata"
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 failed") {
		t.Fatalf("harness: %v\n%s", err, out)
	}
}

func TestSpec(t *testing.T) {
	spec, err := Spec(config.App{Name: "shop", Path: "/srv/shop/config.ru", Env: map[string]string{"RACK_ENV": "staging"}},
		"/rt/gw_rack.rb", []string{"PATH=/usr/bin:/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(spec.Args, " "); got != "/rt/gw_rack.rb --app /srv/shop/config.ru --name shop" {
		t.Errorf("args %q", got)
	}
	if !strings.Contains(strings.Join(spec.Env, "\n"), "RACK_ENV=staging") {
		t.Errorf("env %q", spec.Env)
	}
}
