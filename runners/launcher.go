// Package runners turns an app's config into a pool.Launcher: the one switch
// from language to the way its runners are started and spoken to.
package runners

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gwhq/gw/internal/cgi"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/perl"
	"github.com/gwhq/gw/runners/php"
	"github.com/gwhq/gw/runners/pool"
	"github.com/gwhq/gw/runners/proc"
	"github.com/gwhq/gw/runners/python"
	"github.com/gwhq/gw/runners/ruby"
)

// Runtime is gw's private runtime directory (mode 0700): embedded shims are
// written there, once per process.
type Runtime struct {
	Dir string
}

// NewRuntime creates the runtime directory.
func NewRuntime() (*Runtime, error) {
	dir, err := os.MkdirTemp("", "gw-")
	if err != nil {
		return nil, fmt.Errorf("runtime dir: %w", err)
	}
	return &Runtime{Dir: dir}, nil
}

// Remove deletes the runtime directory.
func (rt *Runtime) Remove() error { return os.RemoveAll(rt.Dir) }

// writeShim writes an embedded shim under its name, once.
func (rt *Runtime) writeShim(name string, src []byte) (string, error) {
	p := filepath.Join(rt.Dir, name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if err := os.WriteFile(p, src, 0o600); err != nil {
		return "", fmt.Errorf("write shim: %w", err)
	}
	return p, nil
}

// Tunables not (yet) exposed in config.
const (
	readyTimeout = 60 * time.Second // Django apps can take a while to import
	pingEvery    = 5 * time.Second
	pingTimeout  = 30 * time.Second
)

// shimLang is what differs between the bridge-speaking languages.
type shimLang struct {
	file    string // shim file name in the runtime dir
	src     []byte
	spec    func(app config.App, shim string, environ []string) (proc.Spec, error)
	threads bool // the shim runs one thread per slot
}

func bridgeLang(l config.Lang) (shimLang, bool) {
	switch l {
	case config.LangPython:
		return shimLang{"gw_wsgi.py", python.Shim, python.Spec, true}, true
	case config.LangRuby:
		return shimLang{"gw_rack.rb", ruby.Shim, ruby.Spec, true}, true
	case config.LangPerl:
		return shimLang{"gw_psgi.pl", perl.Shim, perl.Spec, false}, true
	}
	return shimLang{}, false
}

// ServeFunc serves one request through an app's pool.
type ServeFunc func(w http.ResponseWriter, r *http.Request) error

// App is what the gateway needs to run one configured app.
type App struct {
	Launcher pool.Launcher
	// Front, when set, sees each request before the pool: PHP resolves the
	// script, and serves static files and refusals itself.
	Front func(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request) error) error
	// HardMaxRequests is the count at which a runner exits by itself
	// (pool.Options.HardMaxRequests).
	HardMaxRequests int
}

// New returns how to run app.
func New(app config.App, rt *Runtime, log *slog.Logger) (*App, error) {
	mount := app.Mount
	if mount == "/" {
		mount = ""
	}
	if app.Lang == config.LangPHP {
		return newPHP(app, rt, mount, log)
	}
	lang, ok := bridgeLang(app.Lang)
	if !ok {
		return nil, fmt.Errorf("app %q: language %q is not supported yet", app.Name, app.Lang)
	}
	shim, err := rt.writeShim(lang.file, lang.src)
	if err != nil {
		return nil, err
	}
	spec, err := lang.spec(app, shim, os.Environ())
	if err != nil {
		return nil, &proc.SpawnError{App: app.Name, Stage: proc.StageExec, Err: err}
	}
	threads := max(app.Threads, 1)
	if !lang.threads && threads > 1 {
		log.Warn("this language serves one request per runner; --threads ignored, use --workers",
			"app", app.Name, "lang", app.Lang, "threads", threads)
		threads = 1
	}
	return &App{Launcher: &bridgeLauncher{
		app: app.Name, spec: spec, threads: threads, mount: cgi.Mount{ScriptName: mount},
		readyTimeout: readyTimeout, pingEvery: pingEvery, pingTimeout: pingTimeout, log: log,
	}}, nil
}

func newPHP(app config.App, rt *Runtime, mount string, log *slog.Logger) (*App, error) {
	root, err := php.Site(app.Path)
	if err != nil {
		return nil, fmt.Errorf("app %q: %w", app.Name, err)
	}
	spec, err := php.Spec(app, os.Environ())
	if err != nil {
		return nil, &proc.SpawnError{App: app.Name, Stage: proc.StageExec, Err: err}
	}
	if app.Threads > 1 {
		log.Warn("php-cgi serves one request per process; --threads ignored, use --workers", "app", app.Name)
	}
	front := &php.Front{Root: root, Mount: mount}
	return &App{
		Launcher: &php.Launcher{
			App: app.Name, Spec: spec, SockDir: rt.Dir, Root: root, Mount: mount,
			ReadyTimeout: readyTimeout, PingEvery: pingEvery, PingTimeout: pingTimeout, Log: log,
		},
		Front:           front.Serve,
		HardMaxRequests: php.HardMaxRequests(app),
	}, nil
}
