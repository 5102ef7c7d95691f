package files

import (
	"errors"
	"testing"
)

func TestCheckPath(t *testing.T) {
	tests := []struct {
		path string
		want error
	}{
		{"", nil},
		{"/", nil},
		{"/css/site.css", nil},
		{"/a/b/", nil},
		{"/.well-known/acme-challenge/tok", nil},
		{"/~user/page.html", nil}, // a leading ~ is a name, not a backup
		{"/a#b", nil},
		{"/.env", ErrForbidden},
		{"/.git/config", ErrForbidden},
		{"/sub/.htpasswd", ErrForbidden},
		{"/sub/.well-known/x", ErrForbidden}, // RFC 8615: only at the root
		{"/.well-known/.secret", ErrForbidden},
		{"/index.php~", ErrForbidden},
		{"/config.php.bak", ErrForbidden},
		{"/config.php.BAK", ErrForbidden},
		{"/patch.orig", ErrForbidden},
		{"/db.inc", ErrForbidden},
		{"/site.old/index.html", ErrForbidden},
		{"/x.php.save", ErrForbidden},
		{"/x.php.swp", ErrForbidden},
		{"/x.rej", ErrForbidden},
		{"/#index.php#", ErrForbidden},
		{"/..", ErrBadPath},
		{"/a/../b", ErrBadPath},
		{"/a/./b", ErrBadPath},
		{"/a\x00.txt", ErrBadPath},
		{`/a\..\b`, ErrBadPath},
		{"relative", ErrBadPath},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			err := CheckPath(tc.path)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("CheckPath(%q) = %v, want %v", tc.path, err, tc.want)
			}
		})
	}
}

func TestIsSource(t *testing.T) {
	for name, want := range map[string]bool{
		"index.php": true, "x.PHP": true, "x.pHp": true, "x.phtml": true, "x.php5": true, "x.phar": true,
		"x.txt": false, "php": false, "x.php.txt": false, "x.phpx": false,
	} {
		if got := IsSource(name); got != want {
			t.Errorf("IsSource(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestTypeByName(t *testing.T) {
	for name, want := range map[string]string{
		"a.css":       "text/css; charset=utf-8",
		"A.CSS":       "text/css; charset=utf-8",
		"app.mjs":     "text/javascript; charset=utf-8",
		"logo.svg":    "image/svg+xml",
		"x.tar.gz":    "application/gzip",
		"upload":      DefaultType, // no extension: never sniffed into text/html
		"avatar.xyz1": DefaultType,
		"README":      DefaultType,
		"x.":          DefaultType,
	} {
		if got := TypeByName(name); got != want {
			t.Errorf("TypeByName(%q) = %q, want %q", name, got, want)
		}
	}
}
