package files

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"

	"github.com/gwhq/gw/internal/acceptenc"
)

// ServeFile answers req with f (from Find; not a directory): GET and HEAD
// only, never PHP source, with the type from the built-in table and
// nosniff. http.ServeContent does Range, If-Modified-Since and the ETag
// conditionals, and copies an *os.File with sendfile(2) through the
// writer's ReadFrom.
func (r *Root) ServeFile(w http.ResponseWriter, req *http.Request, f File) {
	if !allowed(w, req) {
		return
	}
	if f.Dir {
		Error(w, fmt.Errorf("%w: %q is a directory", ErrForbidden, f.Name))
		return
	}
	if IsSource(f.Name) || IsSource(f.Real) {
		// php-fpm's security.limit_extensions answers 403 too.
		Error(w, fmt.Errorf("%w: %q is PHP source", ErrForbidden, f.Name))
		return
	}
	fd, fi, err := r.open(f)
	if err != nil {
		Error(w, err)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	// Set before ServeContent, which would otherwise sniff the bytes.
	h.Set("Content-Type", TypeByName(f.Name))
	if ae := req.Header["Accept-Encoding"]; len(ae) > 0 {
		if sfd, sfi, c := r.sibling(f, fi, ae); sfd != nil {
			fd.Close()
			fd, fi = sfd, sfi
			h.Set("Content-Encoding", c.Token())
			h.Add("Vary", "Accept-Encoding")
		}
	}
	defer fd.Close()
	// nginx's ETag: hex mtime and size (a sibling's differs from its
	// original's by its size). ServeContent answers If-None-Match and
	// If-Range from it.
	h.Set("ETag", etag(fi.ModTime().Unix(), fi.Size()))
	http.ServeContent(w, req, f.Name, fi.ModTime(), fd)
}

// sibling opens the precompressed copy of f that the client's
// Accept-Encoding prefers among those present (x.css.zst, .br, .gz beside
// x.css; nginx's gzip_static, brotli_static), or returns nil. A copy older
// than f is stale (f changed since it was compressed) and not used. It is
// opened through the os.Root like f, so it cannot lead outside either.
func (r *Root) sibling(f File, fi fs.FileInfo, ae []string) (*os.File, fs.FileInfo, acceptenc.Coding) {
	offer := acceptenc.Zstd | acceptenc.Brotli | acceptenc.Gzip
	for {
		c := acceptenc.Best(ae, offer)
		if c == 0 {
			return nil, nil, 0
		}
		offer &^= c
		sfd, sfi, err := r.open(File{Rel: f.Rel + c.Suffix()})
		if err != nil {
			continue
		}
		if sfi.ModTime().Before(fi.ModTime()) {
			sfd.Close()
			continue
		}
		return sfd, sfi, c
	}
}

// Handler serves the root's files under the URL prefix ("/static"; "" for
// "/"): the `static:` directories. A directory answers its index.html;
// without one it is 403, never a listing.
func (r *Root) Handler(prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !allowed(w, req) {
			return
		}
		p := strings.TrimPrefix(req.URL.Path, prefix)
		f, err := r.Find(p)
		if err == nil && f.Dir {
			if !strings.HasSuffix(req.URL.Path, "/") {
				redirectSlash(w, req)
				return
			}
			f, err = r.Find(path.Join("/", p, "index.html"))
			if errors.Is(err, ErrNotFound) {
				err = fmt.Errorf("%w: directory %q has no index.html and is not listed", ErrForbidden, p)
			}
		}
		if err != nil {
			Error(w, err)
			return
		}
		r.ServeFile(w, req, f)
	})
}

// redirectSlash sends a directory asked for without its slash to the
// slashed URL, as nginx does (301). The Location is relative ("dir/"), so
// a path such as "//evil.example" cannot turn it into an open redirect.
func redirectSlash(w http.ResponseWriter, req *http.Request) {
	loc := path.Base(req.URL.Path) + "/"
	if req.URL.RawQuery != "" {
		loc += "?" + req.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusMovedPermanently)
}

// allowed answers 405 for anything but GET and HEAD, as nginx's static
// module does, and reports whether req may go on.
func allowed(w http.ResponseWriter, req *http.Request) bool {
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
	return false
}

// Error answers a Find or ServeFile error: ErrBadPath 400, ErrForbidden
// 403, anything else 404. http.Error adds nosniff. The body never repeats
// the reason: what the policy refused is for the operator, not the client.
func Error(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrBadPath):
		http.Error(w, "400 bad request: invalid URL path", http.StatusBadRequest)
	case errors.Is(err, ErrForbidden):
		http.Error(w, "403 forbidden", http.StatusForbidden)
	default:
		http.Error(w, "404 page not found", http.StatusNotFound)
	}
}
