package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gwhq/gw/internal/config"
)

func newCheck(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check [-c FILE] [--apps-dir DIR]",
		Short: "Validate a config file (and its apps directory) and print every problem",
		Long: "Validate a config file: unknown keys (with the nearest valid one), bad values, " +
			"missing app files, clashing names and routes. With apps_dir: in the file or --apps-dir, " +
			"every app file of the directory too, as gw would load it (a clashing file is the newer one's problem). " +
			"Every problem is printed as FILE:LINE:COL: path: message; the exit status is 1 if there is any.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := cmd.Flags().GetString("config")
			if err != nil {
				return fmt.Errorf("read --config: %w", err)
			}
			dir, err := cmd.Flags().GetString("apps-dir")
			if err != nil {
				return fmt.Errorf("read --apps-dir: %w", err)
			}
			if file == "" && dir == "" {
				return usageError(errors.New("check needs a config file or an apps directory: gw check -c FILE, gw check --apps-dir DIR"))
			}
			return check(e, cmd.Flags(), file)
		},
	}
	cmd.Flags().StringP("config", "c", "", "YAML config `FILE` to check")
	// Looked up by config.Load as gw run's --apps-dir is.
	cmd.Flags().String("apps-dir", "", "`DIR` of one-app *.yaml files to check (wins over the file's apps_dir:)")
	return cmd
}

// check prints the problems of file and its apps directory to stdout:
// they are the command's report, not a failure of gw itself.
func check(e env, flags *pflag.FlagSet, file string) error {
	cfg, err := config.Load(config.Sources{Flags: flags, Environ: e.environ, File: file})
	var ps config.Problems
	switch {
	case errors.As(err, &ps):
		for _, p := range ps {
			fmt.Fprintln(e.stdout, p)
		}
		return &exitError{code: exitFailure}
	case err != nil:
		return &exitError{code: exitFailure, err: fmt.Errorf("load config: %w", err)}
	}
	refused := 0
	for _, f := range cfg.AppFiles {
		for _, p := range f.Problems {
			fmt.Fprintln(e.stdout, p)
		}
		if f.Name == "" {
			refused++
		}
	}
	if refused > 0 {
		return &exitError{code: exitFailure}
	}
	what := file
	if what == "" {
		what = cfg.AppsDir
	}
	n := len(cfg.Apps)
	plural := "s"
	if n == 1 {
		plural = ""
	}
	fmt.Fprintf(e.stdout, "%s: ok (%d app%s)\n", what, n, plural)
	return nil
}
