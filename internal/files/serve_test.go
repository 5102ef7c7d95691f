package files

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	dir := tree(t, map[string]string{
		"upload":               "<script>alert(1)</script>",
		"a.css":                "body{}",
		"withindex/index.html": "<p>home</p>",
		"noindex/x.txt":        "x",
		"x.PHP":                "<?php echo 'src';",
		"index.php":            "<?php echo 'src';",
		"big.txt":              "0123456789",
	}, map[string]string{"source.txt": "index.php"})
	r, err := NewRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := r.Handler("/s")
	tests := []struct {
		method, target string
		header         map[string]string
		status         int
		ctype, body    string
		location       string
	}{
		{"GET", "/s/upload", nil, 200, DefaultType, "<script>alert(1)</script>", ""},
		{"GET", "/s/a.css", nil, 200, "text/css; charset=utf-8", "body{}", ""},
		{"HEAD", "/s/a.css", nil, 200, "text/css; charset=utf-8", "", ""},
		{"GET", "/s/big.txt", map[string]string{"Range": "bytes=2-4"}, 206, "text/plain; charset=utf-8", "234", ""},
		{"GET", "/s/withindex/", nil, 200, "text/html; charset=utf-8", "<p>home</p>", ""},
		{"GET", "/s/withindex?a=1", nil, 301, "", "", "withindex/?a=1"},
		{"GET", "/s", nil, 301, "", "", "s/"},
		{"GET", "/s/noindex/", nil, 403, "", "", ""},
		{"GET", "/s/x.PHP", nil, 403, "", "", ""},
		{"GET", "/s/index.php", nil, 403, "", "", ""},
		{"GET", "/s/source.txt", nil, 403, "", "", ""},
		{"GET", "/s/missing", nil, 404, "", "", ""},
		{"GET", "/s/../etc/passwd", nil, 400, "", "", ""},
		{"POST", "/s/a.css", nil, 405, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "http://x"+tc.target, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			res := w.Result()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%q)", res.StatusCode, tc.status, w.Body.String())
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" && tc.status != 301 {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			if tc.ctype != "" && res.Header.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type = %q, want %q", res.Header.Get("Content-Type"), tc.ctype)
			}
			if tc.status < 300 && w.Body.String() != tc.body {
				t.Errorf("body %q, want %q", w.Body.String(), tc.body)
			}
			if tc.status >= 400 && strings.Contains(w.Body.String(), "<?php") {
				t.Errorf("refusal carries the source: %q", w.Body.String())
			}
			if res.Header.Get("Location") != tc.location {
				t.Errorf("Location = %q, want %q", res.Header.Get("Location"), tc.location)
			}
		})
	}
}

// TestServeFileConditional: the ETag and Last-Modified a file goes out with
// bring a 304 when sent back.
func TestServeFileConditional(t *testing.T) {
	r, err := NewRoot(tree(t, map[string]string{"a.txt": "hello"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Handler("")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/a.txt", nil))
	etag, lm := w.Header().Get("ETag"), w.Header().Get("Last-Modified")
	if w.Code != 200 || etag == "" || lm == "" {
		t.Fatalf("first GET: %d ETag %q Last-Modified %q", w.Code, etag, lm)
	}
	for k, v := range map[string]string{"If-None-Match": etag, "If-Modified-Since": lm} {
		req := httptest.NewRequest("GET", "/a.txt", nil)
		req.Header.Set(k, v)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusNotModified {
			t.Errorf("%s: %d, want 304", k, w.Code)
		}
	}
}
