// Package python launches WSGI and ASGI apps through the embedded shims:
// gw_wsgi.py is the entry point for both; it imports the app and, for an
// ASGI app, runs gw_asgi.py's asyncio loop on the same slots.
package python

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/proc"
)

// Shim is the runner source, written to gw's runtime dir at start.
//
//go:embed gw_wsgi.py
var Shim []byte

// ASGIShim is the ASGI loop, written beside Shim, which loads it by path.
//
//go:embed gw_asgi.py
var ASGIShim []byte

// ASGIFile is ASGIShim's file name in the runtime dir.
const ASGIFile = "gw_asgi.py"

// ASGISlots is an ASGI runner's concurrency when threads is not set: the
// requests one event loop has in flight; beyond them requests wait in gw's
// queue, where queue_wait and queue_size apply. An idle slot costs two
// pipes and one parked task, so the number is bounded by descriptors and
// pipe memory, not by the loop: 64 slots are 128 descriptors on each side
// and, at Linux's pipe sizes, 3072 pages charged to the user's
// pipe-user-pages-soft (16384 by default), so five such runners of an
// unprivileged user fit before new pipes shrink to one page. 64 covers
// the requests a runner's CPU can serve at once (a hello answer takes
// ~25 µs of the runner's CPU, so 64 in flight is under 2 ms of queue
// inside the loop) and still lets slow I/O-bound requests (upstream calls,
// long polls) overlap. Fewer slots are not cheaper for a hello: one loop
// wake-up serves every ready slot (docs/design/hop.md, issue 16).
const ASGISlots = 64

// Slots is how many slots gw gives each runner of app: threads when set;
// otherwise 1 for WSGI, and ASGISlots for ASGI and for auto, where a WSGI
// app then serves only one of them (Spec passes --wsgi-threads 1) and the
// runner's READY says so.
func Slots(app config.App) int {
	switch {
	case app.Threads > 0:
		return app.Threads
	case app.Interface == config.InterfaceWSGI:
		return 1
	}
	return ASGISlots
}

// Spec builds the command that runs app with the shim at shimPath. environ
// is gw's own environment; app.Env entries override it.
func Spec(app config.App, shimPath string, environ []string) (proc.Spec, error) {
	env := append([]string(nil), environ...)
	interp := app.Interpreter
	if app.Venv != "" {
		venv, err := filepath.Abs(app.Venv)
		if err != nil {
			return proc.Spec{}, fmt.Errorf("venv: %w", err)
		}
		if interp == "" {
			interp = filepath.Join(venv, "bin", "python")
		}
		// What `source bin/activate` does, minus the prompt.
		env = proc.SetEnv(env, "VIRTUAL_ENV", venv)
		env = proc.SetEnv(env, "PATH", filepath.Join(venv, "bin")+string(os.PathListSeparator)+proc.GetEnv(env, "PATH"))
		env = proc.UnsetEnv(env, "PYTHONHOME")
	}
	path, err := proc.Interpreter(interp, "python3", "python")
	if err != nil {
		return proc.Spec{}, err
	}
	env = proc.WithEnv(env, app.Env)
	args := []string{"-u", shimPath, "--app", app.Path, "--name", app.Name}
	if app.Callable != "" {
		args = append(args, "--callable", app.Callable)
	}
	if app.Dir != "" {
		args = append(args, "--dir", app.Dir)
	}
	iface := app.Interface
	if iface == "" {
		iface = config.InterfaceAuto
	}
	args = append(args, "--interface", string(iface))
	// uwsgi.numproc; the launch adds --worker-id (runners/pool/number.go).
	args = append(args, "--numproc", strconv.Itoa(max(app.Workers, 1)))
	if app.Spooler != "" {
		args = append(args, "--spooler", app.Spooler)
	}
	if iface == config.InterfaceAuto && app.Threads == 0 {
		args = append(args, "--wsgi-threads", "1")
	}
	return proc.Spec{Path: path, Args: args, Env: env}, nil
}
