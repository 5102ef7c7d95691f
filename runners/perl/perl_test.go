package perl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/gwtest"
)

// TestSelftestGolden: the shim's codec agrees byte for byte with the Go
// codec's golden frames.
func TestSelftestGolden(t *testing.T) {
	gwtest.ShimSelftest(t, gwtest.RequireInterpreter(t, "perl"), "gw_psgi.pl")
}

// TestShimHarness runs the shim's own conformance harness, which plays
// the gateway over socketpairs.
func TestShimHarness(t *testing.T) {
	gwtest.RequireInterpreter(t, "perl")
	gwtest.ShimHarness(t)
}

func TestSpec(t *testing.T) {
	spec, err := Spec(config.App{Name: "p", Path: "/srv/app.psgi", Dir: "/srv", Env: map[string]string{"PLACK_ENV": "staging"}},
		"/rt/gw_psgi.pl", []string{"PATH=/usr/bin:/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(spec.Args, " "); got != "/rt/gw_psgi.pl --app /srv/app.psgi --name p --dir /srv" {
		t.Errorf("args %q", got)
	}
	if !strings.Contains(strings.Join(spec.Env, "\n"), "PLACK_ENV=staging") {
		t.Errorf("env %q", spec.Env)
	}
	if _, err := Spec(config.App{Interpreter: filepath.Join(t.TempDir(), "nope")}, "x", os.Environ()); err == nil {
		t.Error("missing interpreter accepted")
	}
}
