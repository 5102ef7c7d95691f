package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneAppFile: a file of the apps directory given as the config (gw
// check -c site.yaml) is a config holding that one app, its paths taken
// from its own folder, its typos reported with their lines.
func TestOneAppFile(t *testing.T) {
	for _, tc := range []struct {
		yaml    string
		name    string // the app's name, "" when a problem is wanted
		problem string
	}{
		{"name: shop\npath: app.py\nhost: shop.example\nworkers: 1\n", "shop", ""},
		{"path: app.py\nmount: /hello\n", "app", ""},
		{"path: app.py\nworkrs: 2\n", "", `site.yaml:2:1: apps[0].workrs: unknown key; did you mean "workers"?`},
		{"name: x\nhost: a\n", "", "name: unknown key"}, // no path: not an app file, read as a config
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "app.py"), []byte("def application(e, s): pass\n"), 0o644)
		file := filepath.Join(dir, "site.yaml")
		os.WriteFile(file, []byte(tc.yaml), 0o644)
		cfg, err := Load(Sources{File: file})
		switch {
		case tc.problem != "":
			if err == nil || !strings.Contains(err.Error(), tc.problem) {
				t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.problem)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case len(cfg.Apps) != 1 || cfg.Apps[0].Name != tc.name || cfg.Apps[0].Path != filepath.Join(dir, "app.py"):
			t.Errorf("%q: apps %+v, want %s at %s", tc.yaml, cfg.Apps, tc.name, filepath.Join(dir, "app.py"))
		}
	}
}
