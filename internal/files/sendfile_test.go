package files

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLocate(t *testing.T) {
	outside := tree(t, map[string]string{"secret.txt": "s"}, nil)
	dir := tree(t, map[string]string{"a.pdf": "pdf", "sub/b.txt": "b", ".env": "S=1", "x.php": "<?php"},
		map[string]string{"leak.txt": filepath.Join(outside, "secret.txt"), "in.txt": "sub/b.txt"})
	link := filepath.Join(t.TempDir(), "via")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	rs, err := NewRoots([]string{link})
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	tests := []struct {
		path, rel string
		err       error
	}{
		{link + "/a.pdf", "a.pdf", nil},
		{real + "/a.pdf", "a.pdf", nil}, // the real path names it too
		{link + "/sub/b.txt", "sub/b.txt", nil},
		{link + "/in.txt", "sub/b.txt", nil},
		{link + "/leak.txt", "", ErrForbidden}, // symlink out of the root
		{link + "/.env", "", ErrForbidden},
		{link + "/../" + filepath.Base(outside) + "/secret.txt", "", ErrBadPath},
		{outside + "/secret.txt", "", ErrForbidden}, // under no root
		{link + "/missing", "", ErrNotFound},
		{link + "/sub", "", ErrForbidden}, // a directory
		{link, "", ErrForbidden},
		{"a.pdf", "", ErrBadPath},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			_, f, err := rs.Locate(tc.path)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Locate(%q) = %+v, %v; want %v", tc.path, f, err, tc.err)
				}
				return
			}
			if err != nil || f.Rel != tc.rel {
				t.Fatalf("Locate(%q) = %+v, %v; want rel %q", tc.path, f, err, tc.rel)
			}
		})
	}
}

func TestSend(t *testing.T) {
	dir := tree(t, map[string]string{"report.pdf": "0123456789", "x.php": "<?php"}, nil)
	rs, err := NewRoots([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	send := func(method string, app, req map[string]string) *httptest.ResponseRecorder {
		t.Helper()
		r, f, err := rs.Locate(dir + "/report.pdf")
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		for k, v := range app {
			w.Header().Set(k, v)
		}
		q := httptest.NewRequest(method, "/dl", nil)
		for k, v := range req {
			q.Header.Set(k, v)
		}
		if err := r.Send(w, q, f); err != nil {
			t.Fatal(err)
		}
		return w
	}
	// The app's framing goes, its type and disposition stay.
	w := send("POST", map[string]string{"Content-Length": "0", "Content-Type": "application/x-report", "Content-Disposition": "attachment"}, nil)
	if w.Code != 200 || w.Body.String() != "0123456789" || w.Header().Get("Content-Length") != "10" ||
		w.Header().Get("Content-Type") != "application/x-report" || w.Header().Get("Content-Disposition") != "attachment" {
		t.Fatalf("plain: %d %q %v", w.Code, w.Body, w.Header())
	}
	etag := w.Header().Get("ETag")
	// Without a type from the app: by the name.
	if w := send("GET", nil, nil); w.Header().Get("Content-Type") != "application/pdf" {
		t.Errorf("Content-Type %q, want application/pdf", w.Header().Get("Content-Type"))
	}
	// Range, whatever the app said about it.
	if w := send("GET", map[string]string{"Content-Range": "bytes 0-0/1"}, map[string]string{"Range": "bytes=2-4"}); w.Code != 206 || w.Body.String() != "234" {
		t.Errorf("range: %d %q", w.Code, w.Body)
	}
	// Conditionals against the file's ETag, or the app's own.
	if w := send("GET", nil, map[string]string{"If-None-Match": etag}); w.Code != 304 {
		t.Errorf("If-None-Match: %d, want 304", w.Code)
	}
	if w := send("GET", map[string]string{"ETag": `"app"`}, map[string]string{"If-None-Match": `"app"`}); w.Code != 304 {
		t.Errorf("app ETag: %d, want 304", w.Code)
	}
	if w := send("HEAD", nil, nil); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d %q", w.Code, w.Body)
	}
	r, f, err := rs.Locate(dir + "/x.php")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Send(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), f); !errors.Is(err, ErrForbidden) {
		t.Errorf("PHP source: %v, want ErrForbidden", err)
	}
}

// TestSiblings: x.css.zst/.br/.gz go to clients that take them, by their
// preference; a stale one (older than x.css) never.
func TestSiblings(t *testing.T) {
	dir := tree(t, map[string]string{
		"a.css": "body{}", "a.css.gz": "GZ", "a.css.zst": "ZST", "a.css.br": "BR",
		"b.js": "js", "b.js.gz": "OLDGZ",
	}, nil)
	// Written in map order: set the times, so which is older is sure.
	now, old := time.Now(), time.Now().Add(-time.Hour)
	for name, at := range map[string]time.Time{"a.css": old, "a.css.gz": old, "a.css.zst": now, "a.css.br": now, "b.js": now, "b.js.gz": old} {
		if err := os.Chtimes(filepath.Join(dir, name), at, at); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := r.Handler("")
	tests := []struct {
		path, ae, body, enc string
	}{
		{"/a.css", "", "body{}", ""},
		{"/a.css", "gzip", "GZ", "gzip"},
		{"/a.css", "gzip, br", "BR", "br"},
		{"/a.css", "gzip, deflate, br, zstd", "ZST", "zstd"},
		{"/a.css", "zstd;q=0.1, gzip", "GZ", "gzip"},
		{"/a.css", "identity", "body{}", ""},
		{"/b.js", "gzip", "js", ""},     // stale sibling
		{"/a.css.gz", "gzip", "GZ", ""}, // asked for by name: a gzip file
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.ae, func(t *testing.T) {
			req := httptest.NewRequest("GET", tc.path, nil)
			if tc.ae != "" {
				req.Header.Set("Accept-Encoding", tc.ae)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 || w.Body.String() != tc.body || w.Header().Get("Content-Encoding") != tc.enc {
				t.Fatalf("%d %q Content-Encoding %q; want %q %q", w.Code, w.Body, w.Header().Get("Content-Encoding"), tc.body, tc.enc)
			}
			if tc.enc != "" {
				if w.Header().Get("Vary") != "Accept-Encoding" || w.Header().Get("Content-Type") != "text/css; charset=utf-8" {
					t.Errorf("Vary %q Content-Type %q", w.Header().Get("Vary"), w.Header().Get("Content-Type"))
				}
			}
		})
	}
	// A range of the encoded copy.
	req := httptest.NewRequest("GET", "/a.css", nil)
	req.Header.Set("Accept-Encoding", "zstd")
	req.Header.Set("Range", "bytes=1-2")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusPartialContent || w.Body.String() != "ST" {
		t.Errorf("range of sibling: %d %q", w.Code, w.Body)
	}
}
