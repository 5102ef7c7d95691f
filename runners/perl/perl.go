// Package perl launches PSGI apps through the embedded gw_psgi.pl shim.
package perl

import (
	_ "embed"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/proc"
)

// Shim is the runner source, written to gw's runtime dir at start.
//
//go:embed gw_psgi.pl
var Shim []byte

// Spec builds the command that runs app with the shim at shimPath. A Perl
// runner serves one request at a time (no interpreter threads), so --threads
// does not apply: scale Perl apps with --workers.
func Spec(app config.App, shimPath string, environ []string) (proc.Spec, error) {
	path, err := proc.Interpreter(app.Interpreter, "perl", "perl")
	if err != nil {
		return proc.Spec{}, err
	}
	args := []string{shimPath, "--app", app.Path, "--name", app.Name}
	if app.Dir != "" {
		args = append(args, "--dir", app.Dir)
	}
	return proc.Spec{Path: path, Args: args, Env: proc.WithEnv(environ, app.Env)}, nil
}
