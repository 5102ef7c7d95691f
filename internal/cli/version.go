package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/gwhq/gw/bridge"
)

// Version is gw's release, set at build time with
// -ldflags "-X github.com/gwhq/gw/internal/cli.Version=v1.2.3".
var Version = "dev"

func newVersion(e env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print gw's version, Go version and bridge protocol version",
		Args:  args(cobra.NoArgs),
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(e.stdout, "gw %s\n%s %s/%s\nbridge protocol %d\n",
				version(), runtime.Version(), runtime.GOOS, runtime.GOARCH, bridge.Protocol)
		},
	}
}

// version is Version, or the module version when gw was built with
// `go install github.com/gwhq/gw/cmd/gw@v1.2.3` and no -ldflags.
func version() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}
