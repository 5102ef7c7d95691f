package ruby

import (
	"strings"
	"testing"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/gwtest"
)

// TestSelftestGolden: the shim's codec agrees byte for byte with the Go
// codec's golden frames.
func TestSelftestGolden(t *testing.T) {
	gwtest.ShimSelftest(t, gwtest.RequireInterpreter(t, "ruby"), "gw_rack.rb")
}

// TestShimHarness runs the shim's own conformance harness, which plays
// the gateway over socketpairs.
func TestShimHarness(t *testing.T) {
	gwtest.RequireInterpreter(t, "ruby")
	gwtest.ShimHarness(t)
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
