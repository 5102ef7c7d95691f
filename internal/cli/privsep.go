package cli

import (
	"errors"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gwhq/gw/internal/privsep"
)

// privsepCommand is the hidden command gw runs itself as for its helper.
const privsepCommand = "privsep"

// newPrivsep is the helper that keeps root for gw once gw has dropped it
// (internal/privsep). gw starts it; it is not for people, hence hidden.
func newPrivsep() *cobra.Command {
	var p privsep.Paths
	cmd := &cobra.Command{
		Use:    privsepCommand,
		Short:  "gw's privileged helper (started by gw run --uid; not for direct use)",
		Hidden: true,
		Args:   args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			var st syscall.Stat_t
			if err := syscall.Fstat(3, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
				return &exitError{code: exitUsage, err: errors.New("privsep: started by gw run only (no socket on fd 3)")}
			}
			if err := privsep.Serve(os.NewFile(3, "privsep"), p); err != nil {
				return &exitError{code: exitFailure, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&p.Cert, "cert", "", "certificate file")
	cmd.Flags().StringVar(&p.Key, "key", "", "key file")
	cmd.Flags().StringVar(&p.RuntimeDir, "runtime-dir", "", "runtime directory to remove at the end")
	return cmd
}
