// Package python launches WSGI apps through the embedded gw_wsgi.py shim.
package python

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/proc"
)

// Shim is the runner source, written to gw's runtime dir at start.
//
//go:embed gw_wsgi.py
var Shim []byte

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
	return proc.Spec{Path: path, Args: args, Env: env}, nil
}
