// Package goplugintest builds gw Go plugins for tests: runners/goplugin's
// own tests and the end-to-end suite, which mounts the example plugin beside
// apps in other languages.
package goplugintest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gwhq/gw/internal/gwtest"
)

// ExamplePkg is the example plugin's package, relative to the module root.
const ExamplePkg = "./examples/goplugin"

// BuildTo builds the Go package pkg (relative to the module root) into
// dir/name and returns the binary's path.
func BuildTo(dir, name, pkg string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = gwtest.RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// Example builds the example plugin into t.TempDir() and returns its path.
func Example(t testing.TB) string {
	t.Helper()
	p, err := BuildTo(t.TempDir(), "goplugin-example", ExamplePkg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
