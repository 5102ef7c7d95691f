// Package python launches WSGI apps through the embedded gw_wsgi.py shim.
package python

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

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
		env = setEnv(env, "VIRTUAL_ENV", venv)
		env = setEnv(env, "PATH", filepath.Join(venv, "bin")+string(os.PathListSeparator)+getEnv(env, "PATH"))
		env = unsetEnv(env, "PYTHONHOME")
	}
	if interp == "" {
		interp = "python3"
	}
	path, err := exec.LookPath(interp)
	if err != nil {
		return proc.Spec{}, fmt.Errorf("python interpreter %q: %w (set --interpreter)", interp, err)
	}
	for k, v := range app.Env {
		env = setEnv(env, k, v)
	}
	args := []string{"-u", shimPath, "--app", app.Path, "--name", app.Name}
	if app.Callable != "" {
		args = append(args, "--callable", app.Callable)
	}
	if app.Dir != "" {
		args = append(args, "--dir", app.Dir)
	}
	return proc.Spec{Path: path, Args: args, Env: env}, nil
}

func getEnv(env []string, k string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, k+"="); ok {
			return v
		}
	}
	return ""
}

func setEnv(env []string, k, v string) []string {
	return append(unsetEnv(env, k), k+"="+v)
}

func unsetEnv(env []string, k string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, k+"=") {
			out = append(out, kv)
		}
	}
	return out
}
