// Command gw is a polyglot application server. All of its logic lives in
// internal/cli, so this stays the size of a table of contents.
package main

import (
	"os"

	"github.com/gwhq/gw/internal/cli"
)

func main() {
	stop := startProfile()
	code := cli.Execute(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
