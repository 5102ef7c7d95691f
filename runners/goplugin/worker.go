package goplugin

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gwhq/gw/proto/pluginpb"
)

// worker is one running plugin process. gRPC multiplexes its requests over
// one connection, so the slot index only counts toward Slots.
type worker struct {
	proc     *process
	client   *plugin.Client
	rpc      plugin.ClientProtocol
	conn     *grpc.ClientConn
	stopping atomic.Bool // Stop began: failed health checks are expected
	handler  pluginpb.HandlerClient
	slots    int
	log      *slog.Logger
	lines    []*lineWriter // the synced stdout and stderr, flushed at exit
	done     chan struct{} // closed once the process is gone and released
	abortMu  sync.Mutex
	aborts   []context.CancelCauseFunc // per slot: ends the request being served
}

func (w *worker) PID() int              { return w.proc.pid() }
func (w *worker) Slots() int            { return w.slots }
func (w *worker) Done() <-chan struct{} { return w.done }
func (w *worker) Exit() string          { return w.proc.exitString() }

// Kill kills the process group at once; Done follows.
func (w *worker) Kill() { w.proc.kill() }

// Stop is go-plugin's graceful path: its Shutdown RPC stops the plugin's
// gRPC server, sdk.Serve returns and the process exits. The pool stops a
// worker once its requests are done; a process still there at ctx's end is
// killed. (The SDK ignores SIGTERM, as go-plugin ignores SIGINT: systemd
// sends SIGTERM to every process of the unit at once, and the plugin must
// not drop requests gw is still draining.)
func (w *worker) Stop(ctx context.Context) {
	select {
	case <-w.done:
		return
	default:
	}
	w.stopping.Store(true)
	closed := make(chan struct{})
	// Ends when the RPC does: at the plugin's exit at the latest.
	go func() { w.rpc.Close(); close(closed) }()
	select {
	case <-w.done:
	case <-ctx.Done():
		w.proc.kill()
		<-w.done
	}
	<-closed
}

// run health-checks the plugin until it exits, then releases it and closes
// done.
func (w *worker) run(every, timeout time.Duration) {
	defer close(w.done)
	defer func() {
		release(w.client, w.proc)
		for _, l := range w.lines {
			l.flush()
		}
	}()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-w.proc.done:
			return
		case <-tick.C:
		}
		err := ping(context.Background(), w.conn, timeout)
		if err == nil || w.stopping.Load() {
			continue
		}
		select {
		case <-w.proc.done:
			return // the check failed because the plugin is exiting
		case <-time.After(100 * time.Millisecond):
		}
		w.log.Error("plugin failed its health check, killing it", "pid", w.PID(), "timeout", timeout, "err", err)
		w.proc.kill()
	}
}

// ping runs go-plugin's health check (the "plugin" service of
// grpc.health.v1) under a deadline. ClientProtocol.Ping makes the same call
// with context.Background(), so a wedged plugin would hang the checker
// instead of failing the check.
func ping(ctx context.Context, conn *grpc.ClientConn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
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

// DumpStacks has the SDK log every goroutine's stack (SIGUSR1), for the
// pool's slow-request log. The process keeps serving.
func (w *worker) DumpStacks() { w.proc.signal(syscall.SIGUSR1) }
