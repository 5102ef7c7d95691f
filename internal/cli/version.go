package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is gw's release, set at build time with
// -ldflags "-X github.com/gwhq/gw/internal/cli.Version=v1.2.3".
var Version = "dev"

// BridgeProtocol is the version of the gateway-runner protocol
// (proto/bridge.proto) this gw speaks. It is repeated here rather than
// imported so that `gw version` does not pull in the bridge package; keep
// it equal to the bridge's version when that changes.
const BridgeProtocol = 1

func newVersion(e env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print gw's version, Go version and bridge protocol version",
		Args:  args(cobra.NoArgs),
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(e.stdout, "gw %s\n%s %s/%s\nbridge protocol %d\n",
				version(), runtime.Version(), runtime.GOOS, runtime.GOARCH, BridgeProtocol)
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
