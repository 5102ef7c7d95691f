package cli

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/watch"
)

func TestSourceTargets(t *testing.T) {
	dir := t.TempDir()
	py := filepath.Join(dir, "app.py")
	if err := os.WriteFile(py, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cwd, _ := os.Getwd()
	trigger := filepath.Join(dir, "reload.txt")
	for _, tc := range []struct {
		name string
		app  config.App
		want []watch.Target
	}{
		{"nothing asked", config.App{Name: "a", Lang: config.LangPython, Path: py}, nil},
		{"python file", config.App{Name: "a", Lang: config.LangPython, Path: py, Reload: true},
			[]watch.Target{{Key: "a", Trees: []string{dir}, Exts: []string{".py"}}}},
		{"python file with an import root", config.App{Name: "a", Lang: config.LangPython, Path: py, Dir: "/srv/lib", Reload: true},
			[]watch.Target{{Key: "a", Trees: []string{dir, "/srv/lib"}, Exts: []string{".py"}}}},
		{"module:callable with dir", config.App{Name: "a", Lang: config.LangPython, Path: "main:app", Dir: dir, Reload: true},
			[]watch.Target{{Key: "a", Trees: []string{dir}, Exts: []string{".py"}}}},
		{"module:callable from the working dir", config.App{Name: "a", Lang: config.LangPython, Path: "main:app", Reload: true},
			[]watch.Target{{Key: "a", Trees: []string{cwd}, Exts: []string{".py"}}}},
		{"ruby", config.App{Name: "r", Lang: config.LangRuby, Path: py, Reload: true},
			[]watch.Target{{Key: "r", Trees: []string{dir}, Exts: []string{".rb", ".ru", ".erb"}}}},
		{"go plugin: its binary", config.App{Name: "g", Lang: config.LangGo, Path: py, Reload: true},
			[]watch.Target{{Key: "g", Files: []string{py}}}},
		{"php: nothing", config.App{Name: "p", Lang: config.LangPHP, Path: dir, Reload: true}, nil},
		{"touch_reload alone", config.App{Name: "p", Lang: config.LangPHP, Path: dir, TouchReload: []string{trigger}},
			[]watch.Target{{Key: "p", Files: []string{trigger}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sourceTargets(&config.Config{Apps: []config.App{tc.app}}, slog.New(slog.DiscardHandler))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("targets %+v, want %+v", got, tc.want)
			}
		})
	}
}
