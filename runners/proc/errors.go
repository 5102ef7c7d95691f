package proc

import (
	"fmt"
	"syscall"
)

// Stage names the step of starting a runner that failed.
type Stage string

// The stages of a runner's start, in order.
const (
	StageExec         Stage = "exec"          // the interpreter could not be started
	StageHandshake    Stage = "handshake"     // the runner spoke something other than the bridge protocol
	StageLoad         Stage = "import"        // the app failed to load (traceback in Detail)
	StageReadyTimeout Stage = "ready timeout" // no READY in time
)

// SpawnError says which stage of starting a runner failed and why.
type SpawnError struct {
	App    string
	Worker int
	Stage  Stage
	Err    error
	// Detail is the language's own report (a Python traceback) or the last
	// lines the runner wrote to stderr; it may be empty.
	Detail string
	// Signal killed the runner while it started (0: it was not killed).
	Signal syscall.Signal
}

// KilledAtStart says the runner was killed while it started by a signal
// that comes from outside (an operator, the OOM killer, gw's own stop):
// no evidence that the app cannot start, where a crash (SIGSEGV) or an
// exit status is.
func (e *SpawnError) KilledAtStart() bool {
	switch e.Signal {
	case syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT:
		return true
	}
	return false
}

func (e *SpawnError) Error() string {
	return fmt.Sprintf("app %q worker %d: %s failed: %v", e.App, e.Worker, e.Stage, e.Err)
}

func (e *SpawnError) Unwrap() error { return e.Err }
