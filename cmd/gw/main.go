// Command gw is a polyglot application server. All of its logic lives in
// internal/cli, so this stays the size of a table of contents.
package main

import (
	"os"
	"runtime"
	"runtime/debug"

	"github.com/gwhq/gw/internal/cli"
	"github.com/gwhq/gw/runners/proc"
)

func main() {
	// A runner started with limits: apply them and exec it (never returns).
	proc.HelperMain()
	if os.Getenv("GOGC") == "" {
		// gw's live heap is a few MiB, so the default (GOGC=100) collects
		// dozens of times a second under load; 400 keeps the heap goal
		// around 20 MiB and cut gw's CPU per request ~5% (python hello,
		// c32). GOGC in the environment still wins.
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// Half the CPUs Go would use (its default already follows a
		// cgroup limit), at least one: the apps' runners need the rest.
		// With a P per CPU, gw's idle Ps spin and steal and its threads
		// wake each other on every hop: on 2 CPUs, python hello at 32
		// connections, gw spent 55-65 µs of CPU per request with 2 Ps
		// and 34-38 µs with 1, and req/s rose 15-25%
		// (docs/design/hop.md). GOMAXPROCS in the environment still wins.
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
	}
	stop := startProfile()
	code := cli.Execute(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
