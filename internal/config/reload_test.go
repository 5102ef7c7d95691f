package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReloadOptions covers reload (flag, env, YAML; -c with the flag turns
// it on for every app that leaves it out) and touch_reload (YAML only,
// paths from the file's directory, missing files allowed).
func TestReloadOptions(t *testing.T) {
	f := newFixture(t)
	app := filepath.Join(f.dir, "wsgi.py")
	tests := []struct {
		name    string
		yaml    string
		env     []string
		args    []string
		reload  bool
		touch   []string
		problem string
	}{
		{name: "off by default", args: []string{app}},
		{name: "flag", args: []string{"--reload", app}, reload: true},
		{name: "env", env: []string{"GW_RELOAD=1"}, args: []string{app}, reload: true},
		{name: "yaml", yaml: "apps:\n  - {path: wsgi.py, reload: true}\n", reload: true},
		{name: "flag fills the file's apps", yaml: "apps:\n  - {path: wsgi.py}\n", args: []string{"--reload"}, reload: true},
		{name: "the entry wins", yaml: "apps:\n  - {path: wsgi.py, reload: false}\n", args: []string{"--reload"}},
		{name: "touch_reload", yaml: "apps:\n  - path: wsgi.py\n    touch_reload: [reload.txt, /srv/x/deploy.stamp]\n",
			touch: []string{filepath.Join(f.dir, "reload.txt"), "/srv/x/deploy.stamp"}},
		{name: "touch_reload not a list", yaml: "apps:\n  - {path: wsgi.py, touch_reload: reload.txt}\n",
			problem: "apps[0].touch_reload: want a list"},
		{name: "touch_reload of mappings", yaml: "apps:\n  - {path: wsgi.py, touch_reload: [{a: b}]}\n",
			problem: "apps[0].touch_reload[0]: want a single value"},
		{name: "bad bool", env: []string{"GW_RELOAD=maybe"}, args: []string{app}, problem: "GW_RELOAD: must be true or false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(f.dir)
			cfg, err := f.load(tc.yaml, tc.env, tc.args...)
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("err = %v, want a problem saying %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := cfg.Apps[0]
			if a.Reload != tc.reload || !slices.Equal(a.TouchReload, tc.touch) {
				t.Errorf("reload %v, touch_reload %q; want %v, %q", a.Reload, a.TouchReload, tc.reload, tc.touch)
			}
		})
	}
}
