// Package ruby launches Rack apps through the embedded gw_rack.rb shim.
package ruby

import (
	_ "embed"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/proc"
)

// Shim is the runner source, written to gw's runtime dir at start.
//
//go:embed gw_rack.rb
var Shim []byte

// Spec builds the command that runs app (a config.ru) with the shim at
// shimPath. The shim runs one thread per slot (rack.multithread is true
// when there are several).
func Spec(app config.App, shimPath string, environ []string) (proc.Spec, error) {
	path, err := proc.Interpreter(app.Interpreter, "ruby", "ruby")
	if err != nil {
		return proc.Spec{}, err
	}
	args := []string{shimPath, "--app", app.Path, "--name", app.Name}
	if app.Dir != "" {
		args = append(args, "--dir", app.Dir)
	}
	return proc.Spec{Path: path, Args: args, Env: proc.WithEnv(environ, app.Env)}, nil
}
