// Package runners turns an app's config into a pool.Launcher: the one switch
// from language to the way its runners are started and spoken to.
package runners

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gwhq/gw/internal/cgi"
	"github.com/gwhq/gw/internal/cgroup"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/hostenv"
	"github.com/gwhq/gw/runners/goplugin"
	"github.com/gwhq/gw/runners/perl"
	"github.com/gwhq/gw/runners/php"
	"github.com/gwhq/gw/runners/pool"
	"github.com/gwhq/gw/runners/proc"
	"github.com/gwhq/gw/runners/python"
	"github.com/gwhq/gw/runners/ruby"
)

// Runtime is gw's runtime directory: the embedded shims, which runners run
// from there, PHP's sockets in its private sock/ subdirectory, and the
// socket directories of Go plugins in plugin/.
//
// The directory and the shims belong to the user that makes it (root,
// when gw starts as root) and are read-only: 0711 (enter, not list) and
// 0444, since runners may run as other users and must read the shims. They
// are the public source embedded in the gw binary, so nothing is
// disclosed. Every shim is written when the directory is made, so a gw that
// then drops to the runners' user (--uid) never writes one again, and that
// user, the app's, can neither rewrite a shim nor swap the directory's
// entries for code that later runners would execute (the directory, in
// $TMPDIR, has a fresh random name, os.MkdirTemp). Such a directory is then
// removed by root: internal/privsep's helper.
//
// sock/ (0700), plugin/ (0711), body/ and spool/ (0700) belong to the user
// gw serves as, which creates sockets and temp files there after any
// drop: php-cgi receives its socket as an open descriptor, so nobody but
// gw needs sock/; go-plugin makes a directory per plugin in plugin/, owned
// by the plugin's user; body/ and spool/ hold uploads and answers in
// flight.
type Runtime struct {
	Dir string
	// Reload, when set, reloads an app gracefully with its current config:
	// what a Python runner's uwsgi.reload() asks for (RELOAD_APP). The
	// gateway sets it; it must not block on the runner that asked.
	Reload func(app string)

	// CgroupRoot is the cgroup v2 mount for the apps' cgroups ("": the
	// machine's, see cgroup.New). Set before the first app starts.
	CgroupRoot string

	shared appShared // each Python app's uwsgi cache and lock file, kept across its reloads

	cgOnce sync.Once
	// cg is the apps' cgroups (limits.go), made on first use by a start
	// and read by the stats endpoint meanwhile.
	cg atomic.Pointer[cgroup.Manager]
}

// NewRuntime creates the runtime directory and writes every shim into it.
// owner, when set, is the user gw will run as once it drops root: sock/
// and plugin/ become that user's.
func NewRuntime(owner *syscall.Credential) (*Runtime, error) {
	dir, err := os.MkdirTemp("", "gw-")
	if err != nil {
		return nil, fmt.Errorf("runtime dir: %w", err)
	}
	rt := &Runtime{Dir: dir}
	if err := rt.fill(owner); err != nil {
		rt.Remove()
		return nil, fmt.Errorf("runtime dir: %w", err)
	}
	return rt, nil
}

func (rt *Runtime) fill(owner *syscall.Credential) error {
	if err := os.Chmod(rt.Dir, 0o711); err != nil {
		return err
	}
	for _, l := range []config.Lang{config.LangPython, config.LangRuby, config.LangPerl} {
		lang, _ := bridgeLang(l)
		if err := writeShim(rt.shim(lang.file), lang.src); err != nil {
			return err
		}
	}
	if err := writeShim(rt.shim(python.ASGIFile), python.ASGIShim); err != nil {
		return err
	}
	for _, sub := range []struct {
		dir  string
		mode os.FileMode
	}{{rt.sockDir(), 0o700}, {rt.pluginDir(), 0o711}, {rt.BodyDir(), 0o700}, {rt.AnswerDir(), 0o700}, {rt.appsDir(), 0o711}} {
		if err := os.Mkdir(sub.dir, sub.mode); err != nil {
			return err
		}
		if owner != nil {
			if err := os.Chown(sub.dir, int(owner.Uid), int(owner.Gid)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Remove deletes the runtime directory.
func (rt *Runtime) Remove() error { return os.RemoveAll(rt.Dir) }

func (rt *Runtime) sockDir() string { return filepath.Join(rt.Dir, "sock") }

// BodyDir holds request bodies too large for memory, and AnswerDir answers
// a slow client cannot take yet: made here, before any drop, so they
// belong to the user gw serves as; 0700, so no app reads another's upload.
func (rt *Runtime) BodyDir() string   { return filepath.Join(rt.Dir, "body") }
func (rt *Runtime) AnswerDir() string { return filepath.Join(rt.Dir, "spool") }
func (rt *Runtime) pluginDir() string { return filepath.Join(rt.Dir, "plugin") }
func (rt *Runtime) shim(file string) string {
	return filepath.Join(rt.Dir, file)
}

// writeShim writes an embedded shim, read-only. O_EXCL and O_NOFOLLOW: the
// directory is new, so anything already there is an error, not a file to
// write through.
func writeShim(path string, src []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o444)
	if err != nil {
		return fmt.Errorf("write shim: %w", err)
	}
	if _, err := f.Write(src); err != nil {
		f.Close()
		return fmt.Errorf("write shim: %w", err)
	}
	return f.Close()
}

// ReadyTimeout is how long a runner may take to load its app and say
// READY; an upgrade waits for a new gw's runners on the same bound.
const ReadyTimeout = readyTimeout

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
	switch app.Lang {
	case config.LangPHP:
		return newPHP(app, rt, mount, log)
	case config.LangGo:
		return newGoPlugin(app, rt, log)
	}
	lang, ok := bridgeLang(app.Lang)
	if !ok {
		return nil, fmt.Errorf("app %q: language %q is not supported yet", app.Name, app.Lang)
	}
	spec, err := lang.spec(app, rt.shim(lang.file), hostenv.Environ())
	if err == nil {
		spec.Cred, err = proc.LookupCredential(app.User, app.Group)
	}
	if err == nil {
		spec.Limits, err = rt.limits(app, spec.Cred)
	}
	if err == nil {
		err = rt.privateTmp(&spec, app)
	}
	if err != nil {
		return nil, &proc.SpawnError{App: app.Name, Stage: proc.StageExec, Err: err}
	}
	threads := max(app.Threads, 1)
	if app.Lang == config.LangPython {
		threads = python.Slots(app) // ASGI: the requests in flight per runner
	}
	if !lang.threads && threads > 1 {
		log.Warn("this language serves one request per runner; --threads ignored, use --workers",
			"app", app.Name, "lang", app.Lang, "threads", threads)
		threads = 1
	}
	l := &bridgeLauncher{
		app: app.Name, spec: spec, threads: threads, mount: cgi.Mount{ScriptName: mount},
		readyTimeout: readyTimeout, pingEvery: pingEvery, pingTimeout: pingTimeout, log: log,
		// gw_asgi serves WebSockets; gw_rack and gw_psgi take raw connections
		sessions: app.Lang == config.LangPython || app.Lang == config.LangRuby || app.Lang == config.LangPerl,
	}
	if app.Lang == config.LangPython {
		// gw_wsgi's uwsgi module: worker_id(), lock(), reload(), cache_*.
		l.numbered = true
		if l.cache, l.lock, err = rt.shared.get(app.Name, int64(app.CacheSize)); err != nil {
			return nil, &proc.SpawnError{App: app.Name, Stage: proc.StageExec, Err: err}
		}
		if rt.Reload != nil {
			l.reload = func() { rt.Reload(app.Name) }
		}
	}
	return &App{Launcher: l}, nil
}

func newPHP(app config.App, rt *Runtime, mount string, log *slog.Logger) (*App, error) {
	root, err := php.Site(app.Path)
	if err != nil {
		return nil, fmt.Errorf("app %q: %w", app.Name, err)
	}
	spec, err := php.Spec(app, hostenv.Environ())
	if err == nil {
		spec.Cred, err = proc.LookupCredential(app.User, app.Group)
	}
	if err == nil {
		spec.Limits, err = rt.limits(app, spec.Cred)
	}
	if err == nil {
		err = rt.privateTmp(&spec, app)
	}
	if err != nil {
		return nil, &proc.SpawnError{App: app.Name, Stage: proc.StageExec, Err: err}
	}
	if app.Threads > 1 {
		log.Warn("php-cgi serves one request per process; --threads ignored, use --workers", "app", app.Name)
	}
	front := &php.Front{Root: root, Mount: mount}
	return &App{
		Launcher: &php.Launcher{
			App: app.Name, Spec: spec, SockDir: rt.sockDir(), Root: root, Mount: mount,
			ReadyTimeout: readyTimeout, PingEvery: pingEvery, PingTimeout: pingTimeout, Log: log,
		},
		Front:           front.Serve,
		HardMaxRequests: php.HardMaxRequests(app),
	}, nil
}

// newGoPlugin runs a Go handler binary built with runners/goplugin/sdk. A
// Go process serves many requests at once: 32 slots unless --threads asks
// for more.
func newGoPlugin(app config.App, rt *Runtime, log *slog.Logger) (*App, error) {
	if app.Limits != (config.AppLimits{}) {
		// go-plugin starts the process itself, past proc's pre-exec helper.
		return nil, &proc.SpawnError{App: app.Name, Stage: proc.StageExec,
			Err: fmt.Errorf("limits: are not supported for Go plugins yet; remove the app's limits:")}
	}
	cred, err := proc.LookupCredential(app.User, app.Group)
	if err != nil {
		return nil, &proc.SpawnError{App: app.Name, Stage: proc.StageExec, Err: err}
	}
	return &App{Launcher: &goplugin.Launcher{
		App: app.Name, Path: app.Path, Env: proc.WithEnv(hostenv.Environ(), app.Env), Slots: max(app.Threads, 32),
		Checksum:  app.Checksum,
		PingEvery: pingEvery, PingTimeout: pingTimeout, SockDir: rt.pluginDir(), Dir: app.Dir, Cred: cred, Log: log,
	}}, nil
}
