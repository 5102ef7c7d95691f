package files

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// tree writes files (name -> content; a trailing "/" makes a directory)
// and symlinks (name -> target) under a new directory.
func tree(t *testing.T, files map[string]string, links map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if name[len(name)-1] == '/' {
			continue
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFind(t *testing.T) {
	outside := tree(t, map[string]string{"secret.txt": "s"}, nil)
	dir := tree(t, map[string]string{
		"a.css": "x", "sub/b.txt": "x", "empty/": "", ".env": "S=1", "up.jpg": "x",
	}, map[string]string{
		"leak.txt":  filepath.Join(outside, "secret.txt"),
		"outdir":    outside,
		"env.txt":   ".env",      // inside, but to a refused name
		"alias.css": "sub/b.txt", // inside: fine
		"loop":      "loop",
	})
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := NewRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path  string
		rel   string
		isDir bool
		err   error
	}{
		{"/a.css", "a.css", false, nil},
		{"/sub/b.txt", "sub/b.txt", false, nil},
		{"/alias.css", "sub/b.txt", false, nil},
		{"/sub", "sub", true, nil},
		{"/", ".", true, nil},
		{"", ".", true, nil},
		{"/missing", "", false, ErrNotFound},
		{"/a.css/x", "", false, ErrNotFound},
		{"/fifo", "", false, ErrNotFound},
		{"/.env", "", false, ErrForbidden},
		{"/env.txt", "", false, ErrForbidden},
		{"/leak.txt", "", false, ErrForbidden},
		{"/outdir/secret.txt", "", false, ErrForbidden},
		{"/loop", "", false, ErrForbidden},
		{"/../x", "", false, ErrBadPath},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			f, err := r.Find(tc.path)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Find(%q) = %+v, %v; want %v", tc.path, f, err, tc.err)
				}
				return
			}
			if err != nil || f.Rel != tc.rel || f.Dir != tc.isDir || f.Real != filepath.Join(r.Dir(), tc.rel) {
				t.Fatalf("Find(%q) = %+v, %v; want rel %q dir %v", tc.path, f, err, tc.rel, tc.isDir)
			}
		})
	}
}

// TestOpenStaysInside: a symlink swapped in between Find and the open
// (the TOCTOU race) is resolved beneath the root by os.Root and refused.
func TestOpenStaysInside(t *testing.T) {
	outside := tree(t, map[string]string{"secret.txt": "s"}, nil)
	dir := tree(t, map[string]string{"d/f.txt": "ok"}, nil)
	r, err := NewRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Find("/d/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "d"))
	if err := os.Symlink(outside, filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(outside, "f.txt"), []byte("leaked"), 0o644)
	if fd, _, err := r.open(f); err == nil {
		fd.Close()
		t.Fatal("open followed a symlink out of the root")
	} else if !errors.Is(err, ErrForbidden) {
		t.Fatalf("open: %v, want ErrForbidden", err)
	}
}
