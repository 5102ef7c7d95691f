package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDetect(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	php := filepath.Join(dir, "site")
	write("site/index.php", "<?php", 0o644)
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	binary := write("server", "\x7fELF....", 0o755)
	script := write("run", "#!/bin/sh\n", 0o755)
	plain := write("README", "hello", 0o644)

	tests := []struct {
		name string
		path string
		want Lang
		err  string
	}{
		{name: "python file", path: "app.py", want: LangPython},
		{name: "python file with dir", path: "/srv/blog/wsgi.py", want: LangPython},
		{name: "module callable", path: "blog.wsgi:application", want: LangPython},
		{name: "module callable call", path: "pkg.mod:create_app()", want: LangPython},
		{name: "rack", path: "config.ru", want: LangRuby},
		{name: "psgi", path: "app.psgi", want: LangPerl},
		{name: "perl", path: "app.pl", want: LangPerl},
		{name: "php file", path: "index.php", want: LangPHP},
		{name: "php dir", path: php, want: LangPHP},
		{name: "go binary", path: binary, want: LangGo},
		{name: "dir without index.php", path: empty, err: "--lang"},
		{name: "script without extension", path: script, err: "--lang"},
		{name: "plain file", path: plain, err: "--lang"},
		{name: "missing", path: filepath.Join(dir, "nope"), err: "--lang"},
		{name: "path with colon", path: "./a:b", err: "--lang"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Detect(tc.path)
			checkErr(t, err, tc.err)
			if got != tc.want {
				t.Errorf("Detect(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
}

func TestDefaultName(t *testing.T) {
	tests := []struct{ path, want string }{
		{"app.py", "app"},
		{"/srv/blog/wsgi.py", "wsgi"},
		{"config.ru", "config"},
		{"blog.wsgi:application", "blog.wsgi"},
		{"/srv/legacy", "legacy"},
		{"/srv/legacy/", "legacy"},
		{".env", ".env"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			if got := defaultName(tc.path); got != tc.want {
				t.Errorf("defaultName(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
}
