package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAppsDir: every *.yaml of the directory is one app beside apps:;
// a broken or clashing file is refused alone, with its path and line.
func TestAppsDir(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(f.dir, "apps.d")
	old := time.Now().Add(-time.Hour)
	write := func(name, body string, mtime time.Time) string {
		p := f.write("apps.d/"+name, body)
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("blog.yaml", "path: ../wsgi.py\nmount: /blog\nworkers: 2\n", old)
	write("shop.yaml", "name: store\npath: ../config.ru\nhost: Shop.Example\n", old)
	broken := write("broken.yaml", "path: ../wsgi.py\nmount: /b\nworkers: [\n", old)
	badKey := write("typo.yaml", "path: ../wsgi.py\nmount: /t\nworkrs: 2\n", old)
	clash := write("clash.yaml", "path: ../wsgi.py\nmount: /blog/\n", old.Add(time.Minute))
	mainClash := write("main.yaml", "path: ../wsgi.py\nmount: /main\n", old)
	write(".hidden.yaml", "nonsense: [", old)
	write("blog.yaml~", "nonsense: [", old)
	write("notes.txt", "nonsense: [", old)
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}

	cfg := f.mustLoad("apps_dir: apps.d\napps:\n  - path: wsgi.py\n    name: main\n    mount: /main\n", nil)
	if cfg.AppsDir != dir {
		t.Errorf("AppsDir = %q, want %q", cfg.AppsDir, dir)
	}
	got := map[string]App{}
	for _, a := range cfg.Apps {
		got[a.Name] = a
	}
	if len(got) != 3 || got["main"].Mount != "/main" || got["blog"].Mount != "/blog" || got["blog"].Workers != 2 ||
		got["store"].Host != "shop.example" || got["store"].Lang != LangRuby {
		t.Errorf("apps = %+v", cfg.Apps)
	}
	files := map[string]AppFile{}
	for _, af := range cfg.AppFiles {
		files[af.Path] = af
	}
	if len(files) != 6 {
		t.Fatalf("AppFiles = %d files, want 6 (hidden, backup, .txt and directories ignored): %+v", len(files), cfg.AppFiles)
	}
	want := map[string]string{ // refused file -> problem it must carry
		broken:    broken + ":3:1: ",
		badKey:    badKey + ":3:1: typo.workrs: unknown key; did you mean \"workers\"?",
		clash:     clash + ":2:8: clash.mount: any host at mount /blog is already served by " + filepath.Join(dir, "blog.yaml"),
		mainClash: mainClash + ":1:1: main: app name \"main\" is already used by " + f.dir + "/gw.yaml apps[0] (line 4)",
	}
	for p, w := range want {
		af := files[p]
		if af.Name != "" || len(af.Problems) == 0 || !strings.HasPrefix(af.Problems[0].String(), w) {
			t.Errorf("%s: name %q, problems %q, want one starting %q", p, af.Name, af.Problems, w)
		}
	}
	if af := files[filepath.Join(dir, "blog.yaml")]; af.Name != "blog" || af.ModTime.IsZero() || af.Problems != nil {
		t.Errorf("blog.yaml = %+v", af)
	}

	// The serving file wins a clash whatever the times.
	cfg, err := Load(Sources{File: filepath.Join(f.dir, "gw.yaml"), Serving: []string{clash}})
	if err != nil {
		t.Fatal(err)
	}
	for _, af := range cfg.AppFiles {
		if af.Path == clash && af.Name != "clash" || af.Path == filepath.Join(dir, "blog.yaml") && af.Name != "" {
			t.Errorf("with clash.yaml serving: %s holds %q (%v)", af.Path, af.Name, af.Problems)
		}
	}
}

// TestAppsDirAlone: --apps-dir without a config file, the directory empty.
func TestAppsDirAlone(t *testing.T) {
	f := newFixture(t)
	if err := os.Mkdir(filepath.Join(f.dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := f.mustLoad("", nil, "--apps-dir", filepath.Join(f.dir, "empty"))
	if len(cfg.Apps) != 0 || len(cfg.AppFiles) != 0 {
		t.Errorf("apps %v files %v, want none", cfg.Apps, cfg.AppFiles)
	}
	_, err := f.load("", nil, "--apps-dir", filepath.Join(f.dir, "wsgi.py"))
	if err == nil || !strings.Contains(err.Error(), "--apps-dir: "+filepath.Join(f.dir, "wsgi.py")+" is not a directory") {
		t.Errorf("apps-dir a file: %v", err)
	}
}

// TestAppsDirBudget: a file whose floor does not fit in max_runners beside
// the apps already there is refused alone, with its path and the line of
// its floor; the serving file keeps its place over a newer one.
func TestAppsDirBudget(t *testing.T) {
	f := newFixture(t)
	old := time.Now().Add(-time.Hour)
	write := func(name, body string, mtime time.Time) string {
		p := f.write("apps.d/"+name, body)
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.yaml", "path: ../wsgi.py\nmount: /a\nworkers: 2\n", old)
	b := write("b.yaml", "path: ../wsgi.py\nmount: /b\nworkers: 4\nmin_workers: 3\n", old.Add(time.Minute))
	c := write("c.yaml", "path: ../wsgi.py\nmount: /c\nworkers: 3\nmin_workers: 0\n", old.Add(2*time.Minute))
	d := write("d.yaml", "path: ../wsgi.py\nmount: /d\n", old.Add(3*time.Minute))
	cfg := f.mustLoad("apps_dir: apps.d\nmax_runners: 5\napps:\n  - path: wsgi.py\n    mount: /main\n    workers: 2\n", nil)
	files := map[string]AppFile{}
	for _, af := range cfg.AppFiles {
		files[af.Path] = af
	}
	for _, tc := range []struct {
		path, name, problem string
	}{
		{a, "a", ""},
		{b, "", b + ":4:14: b.min_workers: its floor of 3 runners (min_workers, by default workers) does not fit in max_runners 5, of which the apps already loaded hold 4"},
		{c, "c", ""}, // on demand: no floor
		{d, "", d + ":1:1: d: its floor of 2 runners"}, // workers' default
	} {
		af := files[tc.path]
		got := ""
		if len(af.Problems) > 0 {
			got = af.Problems[0].String()
		}
		if af.Name != tc.name || (tc.problem == "") != (got == "") || !strings.HasPrefix(got, tc.problem) {
			t.Errorf("%s: name %q, problem %q; want %q, %q", tc.path, af.Name, got, tc.name, tc.problem)
		}
	}
	if len(cfg.Apps) != 3 {
		t.Errorf("apps %d, want main, a and c", len(cfg.Apps))
	}
	// With b serving, b keeps its place and the older a no longer fits.
	cfg, err := Load(Sources{File: filepath.Join(f.dir, "gw.yaml"), Serving: []string{b}})
	if err != nil {
		t.Fatal(err)
	}
	for _, af := range cfg.AppFiles {
		if af.Path == b && af.Name != "b" || af.Path == a && af.Name != "" {
			t.Errorf("with b.yaml serving: %s holds %q (%v)", af.Path, af.Name, af.Problems)
		}
	}
}
