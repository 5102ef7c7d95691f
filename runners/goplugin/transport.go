package goplugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gwhq/gw/runners/goplugin/internal/wire"
	"github.com/gwhq/gw/runners/lifecycle"
	"github.com/gwhq/gw/runners/proc"
)

// transport is a plugin's go-plugin client, the lifecycle's transport for Go
// plugins. go-plugin starts the process itself (Client.Start runs it through
// process.go), so Ready is the start and the handshake in one; the ready
// timeout, the health loop and the kill are the lifecycle's.
type transport struct {
	path   string
	client *plugin.Client
	proc   *process
	lines  []*lineWriter // the synced stdout and stderr, flushed at exit

	// Set by a successful Ready.
	rpc  plugin.ClientProtocol
	conn *grpc.ClientConn

	quitting sync.Once     // starts the Shutdown RPC (or, in Close, rules it out)
	quit     chan struct{} // closed once the Shutdown RPC has returned
}

var (
	_ lifecycle.Transport = (*transport)(nil)
	_ lifecycle.Quitter   = (*transport)(nil)
	_ lifecycle.Noter     = (*transport)(nil)
)

// Ready runs go-plugin's handshake, connects, and waits for the first
// health check. It ignores ctx but for that check: the lifecycle kills the
// process at ctx's end, which makes every other step return.
func (t *transport) Ready(ctx context.Context) error {
	if _, err := t.client.Start(); err != nil {
		return t.explain(&startError{err})
	}
	rpc, err := t.client.Client()
	if err != nil {
		return t.explain(fmt.Errorf("connect: %w", err))
	}
	raw, err := rpc.Dispense(wire.PluginName)
	if err != nil {
		return t.explain(fmt.Errorf("dispense: %w", err))
	}
	conn := raw.(*grpc.ClientConn)
	if err := ping(ctx, conn); err != nil {
		return t.explain(fmt.Errorf("first health check: %w", err))
	}
	t.rpc, t.conn = rpc, conn
	return nil
}

// startError is a failure of go-plugin's Client.Start (the handshake), as
// opposed to one after it.
type startError struct{ err error }

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// explain turns a failed start into a stage and an error that says what the
// binary did, rather than go-plugin's generic wording. A plugin that exited
// by itself keeps err as it is: the lifecycle reports the exit.
func (t *transport) explain(err error) error {
	p := t.proc
	p.mu.Lock()
	startErr := p.startErr
	p.mu.Unlock()
	line, printed := p.stdout.firstLine()
	exited, byItself := p.exited()
	var se *startError
	switch {
	case startErr != nil:
		return &proc.SpawnError{Stage: proc.StageExec, Err: fmt.Errorf("start %s: %w", p.path, startErr)}
	case printed && strings.Count(line, "|") < 3:
		return &proc.SpawnError{Stage: proc.StageHandshake, Err: fmt.Errorf("%s is not a gw Go plugin: its first line on stdout is %q, not a go-plugin handshake "+
			"(a plugin's main calls sdk.Serve and prints nothing to stdout before it)", p.path, line)}
	case errors.As(err, &se) && printed:
		// A handshake line go-plugin refused: another protocol version
		// or transport. Its message names both sides' versions.
		return &proc.SpawnError{Stage: proc.StageHandshake, Err: fmt.Errorf("handshake refused (rebuild the plugin against this gw's sdk): %w", se.err)}
	case exited && byItself:
		return err
	}
	return &proc.SpawnError{Stage: proc.StageHandshake, Err: err}
}

// Notes describe the binary where it is the likely cause of a failed start.
func (t *transport) Notes(stage proc.Stage) string { return notesOnFailure(stage, t.path) }

// Ping runs go-plugin's health check. gRPC multiplexes it beside the
// requests, so a plugin with every slot busy is asked too.
func (t *transport) Ping(ctx context.Context) error { return ping(ctx, t.conn) }

// Quit starts go-plugin's graceful path, its Shutdown RPC: the plugin's gRPC
// server stops, sdk.Serve returns and the process exits. No SIGTERM: the
// SDK ignores it, as go-plugin ignores SIGINT (systemd sends SIGTERM to
// every process of the unit at once, and the plugin must not drop requests
// gw is still draining).
func (t *transport) Quit() bool {
	t.quitting.Do(func() {
		// Ends when the RPC does: at the plugin's exit at the latest.
		go func() { t.rpc.Close(); close(t.quit) }()
	})
	return false
}

// Close releases what go-plugin holds for the exited process, flushes its
// output, and waits for a Shutdown RPC in flight.
func (t *transport) Close() {
	release(t.client, t.proc)
	for _, l := range t.lines {
		l.flush()
	}
	t.quitting.Do(func() { close(t.quit) })
	<-t.quit
}

// ping runs go-plugin's health check (the "plugin" service of
// grpc.health.v1) within ctx. ClientProtocol.Ping makes the same call with
// context.Background(), so a wedged plugin would hang the checker instead
// of failing the check.
func ping(ctx context.Context, conn *grpc.ClientConn) error {
	resp, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	if err != nil {
		return err
	}
	if resp.Status != grpc_health_v1.HealthCheckResponse_SERVING {
		return fmt.Errorf("health status %v", resp.Status)
	}
	return nil
}

// release frees what go-plugin holds for a process that is exiting or has
// exited: the gRPC connection, its goroutines and the socket directory.
func release(c *plugin.Client, p *process) {
	// What the plugin forked may outlive it and hold the output pipes
	// open, which would keep go-plugin's readers (and Kill) waiting.
	p.killGroup()
	killed := make(chan struct{})
	// Client.Kill returns once go-plugin's pipe readers end.
	go func() { c.Kill(); close(killed) }()
	select {
	case <-killed:
	case <-time.After(time.Second):
		// Something outside the group holds the pipes: stop reading.
		p.closePipes()
		<-killed
	}
	p.release()
}
