package php

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/gwhq/gw/internal/files"
)

// Target is what a request path resolves to inside a document root.
type Target struct {
	// Static is an existing non-PHP file the gateway serves itself, under
	// the files policy.
	Static files.File
	// Script is the PHP file to run (absolute, symlinks resolved) and
	// ScriptName its URL path ("/blog/index.php" without the mount);
	// PathInfo is the rest of the request path after the script.
	Script     string
	ScriptName string
	PathInfo   string
}

// Errors Resolve returns wrap one of these; files.Error answers them with
// 400, 403 and 404.
var (
	ErrBadPath   = files.ErrBadPath
	ErrForbidden = files.ErrForbidden
	ErrNotFound  = files.ErrNotFound
)

// Root is a PHP document root: a files.Root (the policy every file gw
// serves is under) plus the front controller.
type Root struct {
	files *files.Root
	front string // front controller relative to the root ("index.php")
	cache resolveCache
}

// NewRoot resolves dir; front is the front controller ("index.php").
func NewRoot(dir, front string) (*Root, error) {
	fr, err := files.NewRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Root{files: fr, front: front}, nil
}

// Dir is the document root's real path (DOCUMENT_ROOT).
func (r *Root) Dir() string { return r.files.Dir() }

// Files is the root as the file server sees it, for static targets.
func (r *Root) Files() *files.Root { return r.files }

// Resolve maps a decoded request path (below the mount) the way nginx's
//
//	try_files $uri $uri/ /index.php$is_args$args
//
// does for php-fpm sites: an existing .php file runs, with anything after it
// as PATH_INFO; an existing other file is static; a directory runs its
// index.php; anything else goes to the front controller with the whole path
// as PATH_INFO (Laravel, Symfony, WordPress). The files policy comes first:
// malformed paths, dotfiles (.env, .git) and backup names (index.php~) are
// refused before anything runs, and nothing whose real path leaves the root
// is ever read or run.
func (r *Root) Resolve(urlPath string) (Target, error) {
	if e, ok := r.cache.get(urlPath); ok {
		return e.t, e.err
	}
	t, err := r.resolve(urlPath)
	r.cache.put(urlPath, t, err)
	return t, err
}

func (r *Root) resolve(urlPath string) (Target, error) {
	if urlPath == "" {
		urlPath = "/"
	}
	if err := files.CheckPath(urlPath); err != nil {
		return Target{}, err
	}
	// The first segment that names an existing .php file is the script
	// (cgi.fix_pathinfo's job, done here with the checks it lacks).
	segs := strings.Split(urlPath[1:], "/")
	for i, s := range segs {
		if !isScript(s) {
			continue
		}
		t, err := r.script("/"+strings.Join(segs[:i+1], "/"), rest(segs[i+1:]))
		if !errors.Is(err, ErrNotFound) {
			return t, err
		}
		break
	}
	f, err := r.files.Find(urlPath)
	switch {
	case err == nil && !f.Dir:
		return Target{Static: f}, nil
	case err == nil:
		t, err := r.script(path.Join(urlPath, "index.php"), "")
		if !errors.Is(err, ErrNotFound) {
			return t, err
		}
	case !errors.Is(err, ErrNotFound):
		return Target{}, err
	}
	return r.script("/"+r.front, urlPath)
}

// isScript: only the exact, lower-case ".php" runs, as php-fpm's default
// security.limit_extensions allows; x.PHP or x.pHp never runs (and, being
// PHP source, is never served either: files.IsSource).
func isScript(name string) bool { return strings.HasSuffix(name, ".php") }

// script is the target running the PHP file at urlPath, if it is a regular
// file inside the root whose real name is a script too (a link a.php ->
// upload.jpg must not run the upload). ErrNotFound when there is none.
func (r *Root) script(urlPath, pathInfo string) (Target, error) {
	f, err := r.files.Find(urlPath)
	if err != nil {
		return Target{}, err
	}
	if f.Dir {
		return Target{}, fmt.Errorf("%w: %q is a directory", ErrNotFound, urlPath)
	}
	if !isScript(f.Real) {
		return Target{}, fmt.Errorf("%w: %q links to %q, not a .php file", ErrForbidden, urlPath, f.Real)
	}
	return Target{Script: f.Real, ScriptName: urlPath, PathInfo: pathInfo}, nil
}

func rest(segs []string) string {
	if len(segs) == 0 {
		return ""
	}
	return "/" + strings.Join(segs, "/")
}

// resolveCache remembers Resolve's answers for cacheTTL. Resolving costs a
// stat per candidate and an lstat per path component (EvalSymlinks): about
// ten syscalls, most of the gateway's own work for a PHP hello. The TTL is
// opcache.revalidate_freq's default, so a changed tree is seen about as
// soon as PHP itself sees changed code; PHP's own realpath cache keeps
// paths for 120 s.
type resolveCache struct {
	mu sync.RWMutex
	m  map[string]resolved
}

type resolved struct {
	t   Target
	err error
	at  time.Time
}

const (
	cacheTTL  = 2 * time.Second
	cacheSize = 4096 // entries; the map starts over when full (front controllers see endless distinct paths)
)

func (c *resolveCache) get(path string) (resolved, bool) {
	c.mu.RLock()
	e, ok := c.m[path]
	c.mu.RUnlock()
	return e, ok && time.Since(e.at) <= cacheTTL
}

func (c *resolveCache) put(path string, t Target, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= cacheSize {
		c.m = make(map[string]resolved)
	}
	c.m[path] = resolved{t, err, time.Now()}
}
