package privsep

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// helperCommand makes the test binary play the helper, as gw's hidden
// command does (go-plugin's helper-process idiom): Start runs
// `test-binary helperCommand ARGS...`.
const helperCommand = "privsep-test-helper"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == helperCommand {
		var p Paths
		a := os.Args[2:]
		for i := 0; i+1 < len(a); i += 2 {
			switch a[i] {
			case "--cert":
				p.Cert = a[i+1]
			case "--key":
				p.Key = a[i+1]
			case "--runtime-dir":
				p.RuntimeDir = a[i+1]
			}
		}
		if err := Serve(os.NewFile(3, "privsep"), p); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestHelper: the helper reads the key pair afresh at each request (a
// renewal is seen), reports a missing file by name, and removes the runtime
// directory once its gw closes the connection.
func TestHelper(t *testing.T) {
	base := t.TempDir()
	rt := filepath.Join(base, "gw-123")
	if err := os.MkdirAll(filepath.Join(rt, "sock"), 0o711); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(base, "cert.pem"), filepath.Join(base, "key.pem")
	write(t, cert, "cert 1")
	write(t, key, "key 1")
	h, err := Start(os.Args[0], helperCommand, Paths{Cert: cert, Key: key, RuntimeDir: rt})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"1", "2"} {
		write(t, cert, "cert "+n)
		write(t, key, "key "+n)
		c, k, err := h.KeyPair()
		if err != nil || string(c) != "cert "+n || string(k) != "key "+n {
			t.Errorf("KeyPair = %q, %q, %v; want cert %s, key %s", c, k, err, n, n)
		}
	}
	os.Remove(key)
	if _, _, err := h.KeyPair(); err == nil || !strings.Contains(err.Error(), key) {
		t.Errorf("KeyPair with the key gone: %v, want an error naming %s", err, key)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(rt); !os.IsNotExist(err) {
		t.Errorf("runtime dir after Close: %v, want it removed", err)
	}
}

// TestHelperRefusesOtherDirs: the helper removes what it is given as root,
// so it refuses to start on anything but a gw-* directory of its own user.
func TestHelperRefusesOtherDirs(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "gw-file")
	write(t, file, "")
	for _, dir := range []string{base, "gw-relative", file, filepath.Join(base, "gw-missing")} {
		if err := checkRuntimeDir(dir); err == nil {
			t.Errorf("checkRuntimeDir(%q) accepted it", dir)
		}
	}
	ok := filepath.Join(base, "gw-1")
	if err := os.Mkdir(ok, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := checkRuntimeDir(ok); err != nil {
		t.Errorf("checkRuntimeDir(%q): %v", ok, err)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
