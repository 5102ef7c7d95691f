package files

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
)

// Roots are the directories an app's X-Sendfile or X-Accel-Redirect
// answers may name files under (an app's `sendfile:`).
type Roots []sendRoot

type sendRoot struct {
	*Root
	given string // the directory as configured, absolute and clean
}

// NewRoots resolves dirs (absolute paths).
func NewRoots(dirs []string) (Roots, error) {
	var rs Roots
	for _, d := range dirs {
		r, err := NewRoot(d)
		if err != nil {
			return nil, err
		}
		rs = append(rs, sendRoot{Root: r, given: filepath.Clean(d)})
	}
	return rs, nil
}

// Locate finds the regular file at the absolute path p under one of the
// roots, named either by the directory as configured or by its real path.
// The name rules (CheckPath) apply to the part below the root, and Find
// checks that symlinks, once resolved, stay inside it. Errors wrap
// ErrBadPath, ErrForbidden or ErrNotFound and name p.
func (rs Roots) Locate(p string) (*Root, File, error) {
	if !filepath.IsAbs(p) {
		return nil, File{}, fmt.Errorf("%w: %q is not an absolute path", ErrBadPath, p)
	}
	for _, r := range rs {
		for _, dir := range []string{r.given, r.dir} {
			rest, ok := strings.CutPrefix(p, strings.TrimSuffix(dir, "/")+"/")
			if !ok {
				continue
			}
			f, err := r.Find("/" + rest)
			if err == nil && f.Dir {
				err = fmt.Errorf("%w: %q is a directory", ErrForbidden, p)
			}
			if err != nil {
				return nil, File{}, err
			}
			return r.Root, f, nil
		}
	}
	return nil, File{}, fmt.Errorf("%w: %q is under none of the sendfile roots", ErrForbidden, p)
}

// Send answers req with f in place of an app's body (X-Sendfile): the
// app's head stays, but for what described its own body (Content-Length,
// Content-Range, Transfer-Encoding), with Range and the conditionals done
// here against the file. The app's Content-Type and ETag win; without them
// the type comes from the name and the ETag from the file, as for static
// files. Any method is answered as GET (HEAD stays HEAD), as nginx does
// for X-Accel-Redirect. An error (the file cannot be opened or is PHP
// source) comes before anything is written.
func (r *Root) Send(w http.ResponseWriter, req *http.Request, f File) error {
	if IsSource(f.Name) || IsSource(f.Real) {
		return fmt.Errorf("%w: %q is PHP source", ErrForbidden, f.Real)
	}
	fd, fi, err := r.open(f)
	if err != nil {
		return fmt.Errorf("%q: %w", f.Real, err)
	}
	defer fd.Close()
	h := w.Header()
	delete(h, "Content-Length")
	delete(h, "Content-Range")
	delete(h, "Transfer-Encoding")
	if len(h["Content-Type"]) == 0 {
		h.Set("Content-Type", TypeByName(f.Name))
	}
	if len(h["Etag"]) == 0 {
		h.Set("ETag", etag(fi.ModTime().Unix(), fi.Size()))
	}
	h.Set("X-Content-Type-Options", "nosniff")
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		g := *req
		g.Method = http.MethodGet
		req = &g
	}
	http.ServeContent(w, req, f.Name, fi.ModTime(), fd)
	return nil
}

// etag is nginx's: hex mtime and size.
func etag(mtime, size int64) string { return fmt.Sprintf(`"%x-%x"`, mtime, size) }
