package files

import (
	"errors"
	"fmt"
	"strings"
)

// Errors Find, ServeFile and CheckPath return, by the status Error gives
// them: 400, 403 and 404.
var (
	ErrBadPath   = errors.New("malformed path")
	ErrForbidden = errors.New("forbidden")
	ErrNotFound  = errors.New("not found")
)

// backupSuffixes are editor and deploy leftovers (and PHP include files)
// that hold source or secrets under a name no handler claims. Matched
// case-insensitively at the end of any path segment.
var backupSuffixes = []string{"~", ".bak", ".orig", ".old", ".save", ".swp", ".swo", ".rej", ".inc"}

// sourceSuffixes are PHP code: run by the PHP runner (exact ".php" only) or
// by nothing, and never served as text. Matched case-insensitively, since
// x.PHP is the same source as x.php.
var sourceSuffixes = []string{".php", ".php3", ".php4", ".php5", ".php7", ".php8", ".phtml", ".pht", ".phps", ".phar"}

// CheckPath applies the name rules to a decoded URL path below the root
// ("/a/b.css"): ErrBadPath for NUL, backslash, "." and ".." segments,
// ErrForbidden for dot segments (but a leading /.well-known/) and backup
// names. It touches nothing on disk.
func CheckPath(urlPath string) error {
	if urlPath == "" {
		return nil
	}
	if urlPath[0] != '/' || strings.ContainsAny(urlPath, "\x00\\") {
		return fmt.Errorf("%w: %q", ErrBadPath, urlPath)
	}
	for i, seg := range strings.Split(urlPath[1:], "/") {
		if err := checkSegment(seg, i == 0); err != nil {
			return fmt.Errorf("%w: %q", err, urlPath)
		}
	}
	return nil
}

func checkSegment(seg string, first bool) error {
	switch {
	case seg == "." || seg == "..":
		return ErrBadPath
	case strings.HasPrefix(seg, "."):
		if first && seg == ".well-known" {
			return nil
		}
		return fmt.Errorf("%w: dotfile", ErrForbidden)
	case len(seg) > 1 && seg[0] == '#' && seg[len(seg)-1] == '#': // Emacs auto-save
		return fmt.Errorf("%w: backup file", ErrForbidden)
	case hasSuffixFold(seg, backupSuffixes):
		return fmt.Errorf("%w: backup file", ErrForbidden)
	}
	return nil
}

// IsSource reports whether name is PHP source by its extension, in any
// case.
func IsSource(name string) bool { return hasSuffixFold(name, sourceSuffixes) }

func hasSuffixFold(s string, suffixes []string) bool {
	for _, suf := range suffixes {
		if len(s) >= len(suf) && strings.EqualFold(s[len(s)-len(suf):], suf) {
			return true
		}
	}
	return false
}
