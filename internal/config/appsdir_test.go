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
