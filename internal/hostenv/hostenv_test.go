package hostenv

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestEnvironDropsOwn: gw's own variables stay out of what children get;
// the rest of gw's environment, values with '=' included, goes as it is.
func TestEnvironDropsOwn(t *testing.T) {
	t.Setenv(QUICNoBufferWarning, "true")
	t.Setenv("GW_HOSTENV_TEST", "a=b")
	env := Environ()
	for _, kv := range env {
		if strings.HasPrefix(kv, QUICNoBufferWarning+"=") {
			t.Errorf("Environ has %s", kv)
		}
	}
	if !slices.Contains(env, "GW_HOSTENV_TEST=a=b") {
		t.Error("Environ lost GW_HOSTENV_TEST=a=b")
	}
	if len(env) != len(os.Environ())-1 {
		t.Errorf("Environ has %d variables, want os.Environ's %d less one", len(env), len(os.Environ()))
	}
	if os.Getenv(QUICNoBufferWarning) != "true" {
		t.Error("Environ changed gw's own environment")
	}
}
