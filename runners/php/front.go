package php

import (
	"net/http"
	"strings"

	"github.com/gwhq/gw/internal/files"
)

// Front resolves each request in the document root before it reaches a
// php-cgi: static files are served here (no PHP process is tied up for a
// stylesheet), scripts go on to next with the target attached.
type Front struct {
	Root  *Root
	Mount string // "" for "/"
}

// Serve answers static files and refusals itself, through the files
// policy that --static directories use too, and hands scripts to next.
func (f *Front) Serve(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request) error) error {
	t, err := f.Root.Resolve(strings.TrimPrefix(r.URL.Path, f.Mount))
	switch {
	case err != nil:
		files.Error(w, err)
		return nil
	case t.Script == "":
		f.Root.Files().ServeFile(w, r, t.Static)
		return nil
	}
	return next(w, r.WithContext(WithTarget(r.Context(), t)))
}
