package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// Root is a directory whose files gw serves, resolved once (symlinks
// included) so every containment check compares real paths.
type Root struct {
	dir string // real, absolute
}

// NewRoot resolves dir.
func NewRoot(dir string) (*Root, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	return &Root{dir: real}, nil
}

// Dir is the root's real path.
func (r *Root) Dir() string { return r.dir }

// File is an entry of a Root that passed the policy.
type File struct {
	Real string // absolute real path, symlinks resolved, inside the root
	Rel  string // Real relative to the root, for opening through os.Root
	Name string // the name asked for: its extension gives the Content-Type
	Dir  bool
}

// Find resolves a decoded URL path below the root ("/css/a.css") to a
// regular file or a directory, under the name rules (CheckPath) applied to
// both the path asked for and the real path behind any symlinks, which must
// stay inside the root. Errors wrap ErrBadPath, ErrForbidden or
// ErrNotFound.
func (r *Root) Find(urlPath string) (File, error) {
	if err := CheckPath(urlPath); err != nil {
		return File{}, err
	}
	real, err := filepath.EvalSymlinks(filepath.Join(r.dir, filepath.FromSlash(urlPath)))
	if err != nil {
		return File{}, osError(err)
	}
	rel, ok := r.rel(real)
	if !ok {
		return File{}, fmt.Errorf("%w: %q leads outside the root", ErrForbidden, urlPath)
	}
	if rel != "." {
		if err := CheckPath("/" + filepath.ToSlash(rel)); err != nil {
			return File{}, fmt.Errorf("%q is a link to a refused name: %w", urlPath, err)
		}
	}
	fi, err := os.Stat(real)
	if err != nil {
		return File{}, osError(err)
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		// A FIFO, socket or device: nginx answers 404 "is not a regular file".
		return File{}, fmt.Errorf("%w: %q is not a regular file", ErrNotFound, urlPath)
	}
	return File{Real: real, Rel: rel, Name: path.Base(urlPath), Dir: fi.IsDir()}, nil
}

// rel returns real relative to the root ("." for the root itself), or
// false when real is outside it.
func (r *Root) rel(real string) (string, bool) {
	if real == r.dir {
		return ".", true
	}
	rest, ok := strings.CutPrefix(real, r.dir+string(filepath.Separator))
	return rest, ok
}

// open opens f's regular file through an os.Root: the kernel walks the path
// beneath the root, so a symlink swapped in after Find still cannot lead
// out of it.
func (r *Root) open(f File) (*os.File, fs.FileInfo, error) {
	root, err := os.OpenRoot(r.dir)
	if err != nil {
		return nil, nil, osError(err)
	}
	defer root.Close()
	// O_NONBLOCK: a FIFO put in place after Find must not hang the open
	// waiting for a writer; regular files ignore the flag.
	fd, err := root.OpenFile(f.Rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, osError(err)
	}
	fi, err := fd.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%w: %q is not a regular file", ErrNotFound, f.Rel)
	}
	if err != nil {
		fd.Close()
		return nil, nil, err
	}
	return fd, fi, nil
}

// osError classifies a lookup or open failure: missing (or a path through a
// non-directory) is ErrNotFound; permission, a symlink loop and os.Root's
// "path escapes" are ErrForbidden, as nginx answers 403 for EACCES.
func osError(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENAMETOOLONG) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return fmt.Errorf("%w: %w", ErrForbidden, err)
}
