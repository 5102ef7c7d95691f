// Command gw is a polyglot application server. All of its logic lives in
// internal/cli, so this stays the size of a table of contents.
package main

import (
	"os"
	"runtime/debug"

	"github.com/gwhq/gw/internal/cli"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// gw's live heap is a few MiB, so the default (GOGC=100) collects
		// dozens of times a second under load; 400 keeps the heap goal
		// around 20 MiB and cut gw's CPU per request ~5% (python hello,
		// c32). GOGC in the environment still wins.
		debug.SetGCPercent(400)
	}
	stop := startProfile()
	code := cli.Execute(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
