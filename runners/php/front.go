package php

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Front resolves each request in the document root before it reaches a
// php-cgi: static files are served here (no PHP process is tied up for a
// stylesheet), scripts go on to next with the target attached.
type Front struct {
	Root  *Root
	Mount string // "" for "/"
}

// Serve answers static files and refusals itself and hands scripts to next.
func (f *Front) Serve(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request) error) error {
	t, err := f.Root.Resolve(strings.TrimPrefix(r.URL.Path, f.Mount))
	switch {
	case errors.Is(err, ErrBadPath):
		http.Error(w, "403 forbidden: path outside the document root", http.StatusForbidden)
		return nil
	case err != nil:
		http.Error(w, "404 page not found", http.StatusNotFound)
		return nil
	case t.Static != "":
		serveStatic(w, r, t.Static)
		return nil
	}
	return next(w, r.WithContext(WithTarget(r.Context(), t)))
}

func serveStatic(w http.ResponseWriter, r *http.Request, path string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	// ServeContent: Content-Type by extension, ranges, conditional GETs.
	http.ServeContent(w, r, filepath.Base(path), fi.ModTime(), f)
}
