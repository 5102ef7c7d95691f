// Package php runs PHP sites through php-cgi in FastCGI mode: gw spawns and
// supervises every php-cgi process itself (PHP's own FastCGI children are
// off), resolves each request to a script or a static file in the document
// root, and speaks FastCGI to php-cgi over a unix socket.
package php

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/proc"
)

// HardMaxRequests is the count after which php-cgi exits by itself: the
// PHP_FCGI_MAX_REQUESTS the app's env sets (0 = none).
func HardMaxRequests(app config.App) int {
	n, _ := strconv.Atoi(app.Env["PHP_FCGI_MAX_REQUESTS"])
	return max(n, 0)
}

// Site is where a PHP app's files are: path is a document root directory, or
// a .php file whose directory is the root and which is the front controller.
func Site(path string) (root *Root, err error) {
	dir, front := path, "index.php"
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		dir, front = filepath.Dir(path), filepath.Base(path)
	}
	root, err = NewRoot(dir, front)
	if err != nil {
		return nil, fmt.Errorf("document root: %w", err)
	}
	return root, nil
}

// Spec builds the php-cgi command. The process gets its listening socket as
// stdin (FCGI_LISTENSOCK_FILENO, as spawn-fcgi and mod_fcgid do), so there is
// no bind race and no port to pick.
//
// Its environment is cleared, as php-fpm's clear_env (on by default) does:
// PHP shows the process environment in $_SERVER and getenv(), and gw's own
// may hold secrets (cloud credentials, GW_* settings). php-cgi gets only
// the app's env:, the PHP_FCGI_* settings gw runs it with, and from environ
// the variables that say where php.ini is (PHPRC, PHP_INI_SCAN_DIR), read
// once at start as php-fpm's master reads them. No PATH, as with php-fpm:
// exec() and shell_exec() go through /bin/sh, which has its own default,
// and env: { PATH: ... } sets one.
func Spec(app config.App, environ []string) (proc.Spec, error) {
	interp := app.Interpreter
	if interp == "" {
		interp = "php-cgi"
	}
	path, err := exec.LookPath(interp)
	if err != nil {
		return proc.Spec{}, fmt.Errorf("php-cgi %q: %w (install php-cgi or set --interpreter)", interp, err)
	}
	if strings.Contains(filepath.Base(path), "fpm") {
		return proc.Spec{}, fmt.Errorf("php interpreter %q: gw runs php-cgi, not php-fpm", path)
	}
	env := proc.WithEnv(keep(environ, "PHPRC", "PHP_INI_SCAN_DIR"), app.Env)
	// One process per worker, supervised by gw: PHP must not fork its own
	// children (PHP_FCGI_CHILDREN > 0 makes php-cgi a master whose
	// children outlive a SIGKILL of it). gw recycles php-cgi itself
	// (max_requests, with the replacement ready first), so PHP's own limit
	// (default 500) is off unless the app's env sets it (HardMaxRequests
	// then tells the pool).
	env = proc.SetEnv(env, "PHP_FCGI_CHILDREN", "0")
	if _, ok := app.Env["PHP_FCGI_MAX_REQUESTS"]; !ok {
		env = proc.SetEnv(env, "PHP_FCGI_MAX_REQUESTS", "0")
	}
	// cgi.fix_pathinfo stays at PHP's default (1), as under php-fpm, so
	// PHP_SELF and PATH_TRANSLATED come out as PHP apps expect. With it,
	// PHP walks a SCRIPT_FILENAME that does not exist back to one that does
	// and runs that (/up.jpg/x.php runs the upload); gw only ever sends the
	// real path of an existing .php file inside the root (Root.Resolve).
	return proc.Spec{Path: path, Env: env}, nil
}

// keep returns the entries of environ named in names.
func keep(environ []string, names ...string) []string {
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains(names, k) {
			out = append(out, kv)
		}
	}
	return out
}
