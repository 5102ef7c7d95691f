package php

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/files"
)

func TestResolve(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("index.php", "<?php echo 'front';")
	write("info.php", "<?php phpinfo();")
	write("style.css", "body{}")
	write("admin/index.php", "<?php echo 'admin';")
	write("docs/readme.txt", "hi")
	write(".env", "SECRET=1")
	write("up.jpg", "not php")
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(outside, "evil.php"), []byte("<?php"), 0o644)
	os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "leak.txt"))
	os.Symlink(filepath.Join(outside, "evil.php"), filepath.Join(root, "evil.php"))
	os.Symlink(filepath.Join(root, "info.php"), filepath.Join(root, "source.txt"))
	os.Symlink(outside, filepath.Join(root, "outdir"))
	write("x.PHP", "<?php echo 'upper';")
	write("index.php~", "<?php // backup")
	os.Symlink("up.jpg", filepath.Join(root, "runs-upload.php"))

	r, err := NewRoot(root, "index.php")
	if err != nil {
		t.Fatal(err)
	}
	real := func(rel string) string { p, _ := filepath.EvalSymlinks(filepath.Join(root, rel)); return p }
	// static is a file target: served by files.Root.ServeFile, which also
	// refuses PHP source (x.PHP, a .txt link to a .php file) with 403.
	static := func(rel, name string) Target {
		return Target{Static: files.File{Real: real(rel), Rel: rel, Name: name}}
	}
	tests := []struct {
		path string
		want Target
		err  error
	}{
		{"/", Target{Script: real("index.php"), ScriptName: "/index.php"}, nil},
		{"/info.php", Target{Script: real("info.php"), ScriptName: "/info.php"}, nil},
		{"/info.php/extra/path", Target{Script: real("info.php"), ScriptName: "/info.php", PathInfo: "/extra/path"}, nil},
		{"/style.css", static("style.css", "style.css"), nil},
		{"/docs/readme.txt", static("docs/readme.txt", "readme.txt"), nil},
		{"/admin/", Target{Script: real("admin/index.php"), ScriptName: "/admin/index.php"}, nil},
		{"/admin", Target{Script: real("admin/index.php"), ScriptName: "/admin/index.php"}, nil},
		{"/users/42/edit", Target{Script: real("index.php"), ScriptName: "/index.php", PathInfo: "/users/42/edit"}, nil},
		{"/missing.php", Target{Script: real("index.php"), ScriptName: "/index.php", PathInfo: "/missing.php"}, nil},
		// Trap 8: an upload must never run as PHP through a fake path.
		{"/up.jpg/x.php", Target{Script: real("index.php"), ScriptName: "/index.php", PathInfo: "/up.jpg/x.php"}, nil},
		{"/../etc/passwd", Target{}, ErrBadPath},
		{"/docs/../../etc/passwd", Target{}, ErrBadPath},
		{"/a\x00.php", Target{}, ErrBadPath},
		{"/.env", Target{}, ErrForbidden},
		{"/.git/config", Target{}, ErrForbidden},
		{"/index.php~", Target{}, ErrForbidden},
		{"/leak.txt", Target{}, ErrForbidden},
		{"/evil.php", Target{}, ErrForbidden},
		{"/runs-upload.php", Target{}, ErrForbidden},
		{"/source.txt", static("info.php", "source.txt"), nil},
		{"/outdir/secret.txt", Target{}, ErrForbidden},
		// Only the exact .php runs (php-fpm's security.limit_extensions).
		{"/x.PHP", static("x.PHP", "x.PHP"), nil},
		{"/missing.PHP", Target{Script: real("index.php"), ScriptName: "/index.php", PathInfo: "/missing.PHP"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got, err := r.Resolve(tc.path)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("Resolve(%q) = %+v, %v; want %+v, %v", tc.path, got, err, tc.want, tc.err)
			}
		})
	}
}

// TestResolveCacheExpires: answers are reused within the TTL and looked up
// afresh after it, so a removed script stops resolving.
func TestResolveCacheExpires(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "a.php")
	if err := os.WriteFile(script, []byte("<?php"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := NewRoot(dir, "index.php")
	if err != nil {
		t.Fatal(err)
	}
	if tg, err := r.Resolve("/a.php"); err != nil || tg.ScriptName != "/a.php" {
		t.Fatalf("first resolve: %+v %v", tg, err)
	}
	os.Remove(script)
	if tg, err := r.Resolve("/a.php"); err != nil || tg.ScriptName != "/a.php" {
		t.Fatalf("within the TTL: %+v %v, want the cached answer", tg, err)
	}
	r.cache.mu.Lock()
	e := r.cache.m["/a.php"]
	e.at = e.at.Add(-cacheTTL - time.Millisecond)
	r.cache.m["/a.php"] = e
	r.cache.mu.Unlock()
	if _, err := r.Resolve("/a.php"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the TTL: %v, want ErrNotFound", err)
	}
}
