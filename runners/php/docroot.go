package php

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Target is what a request path resolves to inside a document root.
type Target struct {
	// Static is an existing non-PHP file the gateway serves itself.
	Static string
	// Script is the PHP file to run (absolute, symlinks resolved) and
	// ScriptName its URL path ("/blog/index.php" without the mount);
	// PathInfo is the rest of the request path after the script.
	Script     string
	ScriptName string
	PathInfo   string
}

// Errors Resolve returns; the caller maps them to 400 and 404.
var (
	ErrBadPath  = errors.New("path escapes the document root")
	ErrNotFound = errors.New("not found")
)

// Root is a PHP document root, resolved once (symlinks included), so every
// check compares real paths.
type Root struct {
	dir   string // real path
	front string // front controller relative to dir ("index.php")
	cache resolveCache
}

// NewRoot resolves dir; front is the front controller ("index.php").
func NewRoot(dir, front string) (*Root, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return nil, err
	}
	return &Root{dir: real, front: front}, nil
}

// Dir is the document root's real path (DOCUMENT_ROOT).
func (r *Root) Dir() string { return r.dir }

// Resolve maps a decoded request path (below the mount) the way nginx's
//
//	try_files $uri $uri/ /index.php$is_args$args
//
// does for php-fpm sites: an existing .php file runs, with anything after it
// as PATH_INFO; an existing other file is static; a directory runs its
// index.php; anything else goes to the front controller with the whole path
// as PATH_INFO (Laravel, Symfony, WordPress). Paths with ".." or NUL, dot
// files (.env, .git) and anything whose real path leaves the root are
// refused: a PHP file's source is never served, and nothing outside the
// root is ever read or run.
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
	if !strings.HasPrefix(urlPath, "/") || strings.IndexByte(urlPath, 0) >= 0 || strings.IndexByte(urlPath, '\\') >= 0 {
		return Target{}, ErrBadPath
	}
	segs := strings.Split(urlPath[1:], "/")
	for _, s := range segs {
		if s == ".." || s == "." {
			return Target{}, ErrBadPath
		}
		if strings.HasPrefix(s, ".") && s != ".well-known" {
			return Target{}, ErrNotFound
		}
	}
	// The first segment that names an existing .php file is the script
	// (cgi.fix_pathinfo's job, done here with the checks it lacks: trap 8).
	for i, s := range segs {
		if !strings.HasSuffix(strings.ToLower(s), ".php") {
			continue
		}
		name := "/" + strings.Join(segs[:i+1], "/")
		if real, ok := r.file(name); ok {
			return Target{Script: real, ScriptName: name, PathInfo: rest(segs[i+1:])}, nil
		}
		break
	}
	full := filepath.Join(r.dir, filepath.FromSlash(urlPath))
	if fi, err := os.Stat(full); err == nil {
		switch {
		case fi.Mode().IsRegular():
			real, ok := r.inside(full)
			if !ok {
				return Target{}, ErrBadPath
			}
			if strings.HasSuffix(strings.ToLower(real), ".php") {
				return Target{}, ErrNotFound // e.g. a symlink named x.txt to x.php
			}
			return Target{Static: real}, nil
		case fi.IsDir():
			name := strings.TrimSuffix(urlPath, "/") + "/index.php"
			if real, ok := r.file(name); ok {
				return Target{Script: real, ScriptName: name}, nil
			}
		}
	}
	name := "/" + r.front
	if real, ok := r.file(name); ok {
		return Target{Script: real, ScriptName: name, PathInfo: urlPath}, nil
	}
	return Target{}, ErrNotFound
}

// file returns the real path of urlPath if it is a regular file whose real
// path stays inside the root.
func (r *Root) file(urlPath string) (string, bool) {
	full := filepath.Join(r.dir, filepath.FromSlash(urlPath))
	fi, err := os.Stat(full)
	if err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	return r.inside(full)
}

// inside resolves symlinks and checks the result is under the root.
func (r *Root) inside(full string) (string, bool) {
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", false
	}
	if real != r.dir && !strings.HasPrefix(real, r.dir+string(filepath.Separator)) {
		return "", false
	}
	return real, true
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
