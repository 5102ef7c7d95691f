package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newStats(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats [--addr ADDR] [--json]",
		Short: "Print the live stats of a running gw",
		Args:  args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			// The stats listener arrives in a later issue; the flags are
			// registered now so scripts can be written against them.
			fmt.Fprintln(e.stderr, "gw stats: not available yet: the stats listener is not implemented")
			return &exitError{code: exitFailure}
		},
	}
	cmd.Flags().String("addr", "127.0.0.1:9191", "`ADDR` of the running gw's stats listener")
	cmd.Flags().Bool("json", false, "print the stats as JSON")
	return cmd
}
