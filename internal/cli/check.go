package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gwhq/gw/internal/config"
)

func newCheck(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check -c FILE",
		Short: "Validate a config file and print every problem",
		Long: "Validate a config file: unknown keys (with the nearest valid one), bad values, " +
			"missing app files, clashing names and routes. Every problem is printed as " +
			"FILE:LINE:COL: path: message; the exit status is 1 if there is any.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := cmd.Flags().GetString("config")
			if err != nil {
				return fmt.Errorf("read --config: %w", err)
			}
			if file == "" {
				return usageError(errors.New("check needs a config file: gw check -c FILE"))
			}
			return check(e, file)
		},
	}
	cmd.Flags().StringP("config", "c", "", "YAML config `FILE` to check")
	return cmd
}

// check prints the problems of file to stdout: they are the command's
// report, not a failure of gw itself.
func check(e env, file string) error {
	cfg, err := config.Load(config.Sources{Environ: e.environ, File: file})
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
	n := len(cfg.Apps)
	plural := "s"
	if n == 1 {
		plural = ""
	}
	fmt.Fprintf(e.stdout, "%s: ok (%d app%s)\n", file, n, plural)
	return nil
}
