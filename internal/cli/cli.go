// Package cli is gw's command line: it parses arguments with cobra, loads
// the config and runs the gateway. It holds no serving logic of its own.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes, as shared/spec/interface.md fixes them.
const (
	exitOK      = 0 // clean stop
	exitFailure = 1 // bad config, an app that cannot load, or a failed stop
	exitUsage   = 2 // unknown flag or command, wrong argument count
)

// exitError ends Execute with code. The command has already told the user
// what went wrong when err is nil.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError marks err as bad usage, exit 2.
func usageError(err error) error { return &exitError{code: exitUsage, err: err} }

// env is what commands read and write besides their arguments. Tests pass
// their own environ so GW_* variables of the shell do not leak in.
type env struct {
	environ []string
	stdout  io.Writer
	stderr  io.Writer
}

// Execute runs gw with args (without the program name) and returns the
// process exit code.
func Execute(args []string, stdout, stderr io.Writer) int {
	return execute(args, env{environ: os.Environ(), stdout: stdout, stderr: stderr})
}

func execute(args []string, e env) int {
	root := newRoot(e)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(e.stderr, "gw: %v\n", ee.err)
			if ee.code == exitUsage {
				fmt.Fprintln(e.stderr, "Run 'gw --help' for usage.")
			}
		}
		return ee.code
	}
	// cobra's own errors (an unknown command, a bad flag value, a wrong
	// argument count) are all bad usage.
	fmt.Fprintf(e.stderr, "gw: %v\nRun 'gw --help' for usage.\n", err)
	return exitUsage
}

func newRoot(e env) *cobra.Command {
	root := &cobra.Command{
		Use:   "gw",
		Short: "gw serves Python, Ruby, Perl, PHP and Go apps behind one gateway",
		Long: "gw is a polyglot application server: one binary that runs your apps' " +
			"interpreters as supervised runners and serves them over HTTP, HTTPS, uwsgi and FastCGI.",
		Args: cobra.NoArgs,
		// Without a command there is nothing to do: show how to use gw and
		// report bad usage, as a script calling bare "gw" has a bug.
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(e.stderr)
			_ = cmd.Help()
			return &exitError{code: exitUsage}
		},
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(newRun(e), newCheck(e), newStats(e), newCtl(e), newVersion(e), newPrivsep(), newImport(e))
	return root
}

// args wraps a cobra argument check so its failure is bad usage.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError(err)
		}
		return nil
	}
}
