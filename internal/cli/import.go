package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/gwhq/gw/internal/uwsgiimport"
)

func newImport(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Turn another server's config into a gw.yaml",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError(errors.New("import needs a kind and a file: gw import uwsgi FILE"))
		},
	}
	u := &cobra.Command{
		Use:   "uwsgi FILE[:section]",
		Short: "Turn a uWSGI config (ini, yaml, json or xml) into a gw.yaml",
		Long: "Read a uWSGI config as uWSGI would (its [uwsgi] section or FILE:section, " +
			"repeated keys, %d %n %c and the other magic variables, %(placeholders), $(ENV), " +
			"if-env and the other config logic, ini = includes) and write the gw.yaml to stdout. " +
			"On stderr, one line per option says what it became: mapped (a gw key), default " +
			"(gw does it anyway), unsupported (dropped, and why), placeholder or evaluated. " +
			"$(ENV) and if-env read the environment of this command. With --strict the exit " +
			"status is 1 when any option was dropped.",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			strict, err := cmd.Flags().GetBool("strict")
			if err != nil {
				return fmt.Errorf("read --strict: %w", err)
			}
			return importUWSGI(e, a[0], strict)
		},
	}
	u.Flags().Bool("strict", false, "exit 1 when any option was dropped (reported as unsupported)")
	cmd.AddCommand(u)
	return cmd
}

// importUWSGI writes the gw.yaml to stdout and the per-option report and
// a summary to stderr.
func importUWSGI(e env, file string, strict bool) error {
	host, _ := os.Hostname()
	cwd, _ := os.Getwd()
	res, err := uwsgiimport.Import(uwsgiimport.Input{File: file, Environ: e.environ, CPUs: runtime.NumCPU(), Hostname: host, Cwd: cwd})
	if res == nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return &exitError{code: exitFailure, err: fmt.Errorf("import %s: %v", pe.Path, pe.Err)}
		}
		return &exitError{code: exitFailure, err: fmt.Errorf("import %s: %w", file, err)}
	}
	for _, l := range res.Lines {
		fmt.Fprintln(e.stderr, l)
	}
	if err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("import %s: %w", file, err)}
	}
	_, _ = e.stdout.Write(res.YAML)
	dropped := res.Count(uwsgiimport.Unsupported)
	fmt.Fprintf(e.stderr, "gw import: %d options: %d mapped, %d default, %d unsupported, %d placeholder, %d evaluated\n",
		len(res.Lines), res.Count(uwsgiimport.Mapped), res.Count(uwsgiimport.Default), dropped,
		res.Count(uwsgiimport.Placeholder), res.Count(uwsgiimport.Evaluated))
	if strict && dropped > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("--strict: %d option(s) of %s have no gw equivalent (the lines marked unsupported)", dropped, file)}
	}
	return nil
}
