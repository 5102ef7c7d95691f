package gwtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ShimSelftest runs `interp shim --selftest` against the Go codec's golden
// frames (bridge/testdata/golden): the shim's codec and the Go one must
// agree byte for byte. Run it from the shim's package directory.
func ShimSelftest(t *testing.T, interp, shim string) {
	t.Helper()
	golden := filepath.Join(RepoRoot(), "bridge", "testdata", "golden")
	out, err := exec.Command(interp, shim, "--selftest", golden).CombinedOutput()
	last := strings.TrimSpace(string(out))
	last = last[strings.LastIndexByte(last, '\n')+1:]
	if err != nil || !strings.HasSuffix(last, " 0 failed") || strings.HasPrefix(last, "0 passed") {
		t.Fatalf("selftest: %v\n%s", err, out)
	}
}

// ShimHarness runs the shim's conformance harness (testdata/harness.py,
// which plays the gateway over socketpairs) with Debian's python3.
func ShimHarness(t *testing.T, env ...string) {
	t.Helper()
	cmd := exec.Command(RequirePython(t), "harness.py")
	cmd.Dir = "testdata"
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "\n0 failed") {
		t.Fatalf("harness: %v\n%s", err, out)
	}
}
