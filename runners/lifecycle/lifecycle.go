// Package lifecycle is the one life of a runner process, whatever it speaks:
// started, waited for until ready (or failed at a named stage), health
// checked while serving, stopped (asked, then killed), exited with a reason.
// What differs between runner kinds, the way gw talks to the process, is a
// small Transport; each kind's pool.Worker is a Runner plus its transport's
// Serve, Abort and Slots. This is go-plugin's split of a runner from its
// transport (hashicorp/go-plugin runner/runner.go), with the ready, health
// and stop rules written once instead of once per kind.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gwhq/gw/runners/proc"
)

// Transport is how gw talks to one runner: the per-kind part of its life.
type Transport interface {
	// Ready returns once the runner says it is ready to serve. It returns
	// early when ctx ends or Close is called. A runner that answered
	// wrongly gets a *proc.SpawnError naming the stage (Detail may be
	// left empty: the lifecycle fills in the output tail); any other
	// error means the transport lost the runner, which is exiting.
	Ready(ctx context.Context) error
	// Ping checks that the runner answers, within ctx. It returns ErrBusy,
	// without asking, when the runner cannot answer now.
	Ping(ctx context.Context) error
	// Close releases gw's ends of the transport. The lifecycle calls it
	// once, after the process has exited (or a start failed).
	Close()
}

// Quitter is a Transport with its own part in a graceful stop: Quit runs
// before SIGTERM and says whether SIGTERM is still wanted. It must not
// block; what it starts must end by Close.
type Quitter interface {
	Quit() (term bool)
}

// Noter is a Transport that can say more about a failed start than the
// process's output tail (go-plugin's Diagnose): its notes go in Detail.
type Noter interface {
	Notes(stage proc.Stage) string
}

// ErrBusy is Ping's answer when every slot is serving: a single-threaded
// runner (Perl, php-cgi) cannot answer then, and a stuck request is the
// request deadline's to end, not the health check's.
var ErrBusy = errors.New("every slot is busy")

// Process is the OS process a Runner supervises: *proc.Process, or the one
// go-plugin starts through the plugin transport.
type Process interface {
	PID() int
	// Done is closed once the process has exited, or, for a process that
	// never started, once it was killed.
	Done() <-chan struct{}
	Signal(sig syscall.Signal) error // to its process group
	ExitString() string
	Tail() string // the last lines it wrote
}

// Options are the timings and names every kind shares.
type Options struct {
	App    string
	Worker int
	// Kind names the runner in errors and logs: "runner", "php-cgi",
	// "plugin".
	Kind string
	// Awaits names what Ready waits for, for the ready-timeout error:
	// "READY", "a FastCGI answer".
	Awaits       string
	ReadyTimeout time.Duration
	PingEvery    time.Duration
	PingTimeout  time.Duration
	Log          *slog.Logger // with the app and worker attributes
}

// exitGrace is how long an exit may trail the sign of it: a transport that
// lost its runner, or a failed ping. proc's Done follows the exit by up to
// the second it gives the output readers.
const exitGrace = time.Second

// Runner is one ready runner process: the lifecycle half of a pool.Worker.
type Runner struct {
	o        Options
	proc     Process
	t        Transport
	stopping atomic.Bool   // Stop began: failed health checks are expected
	done     chan struct{} // closed after the exit, once t is closed
}

// Start starts spec with files inherited, waits until t says it is ready
// and supervises it from then on. It closes files once the child has its
// copies: gw must not hold the runner's ends, or a runner's exit would not
// show as EOF on the transport. t's Close releases gw's ends if anything
// fails. Failures are *proc.SpawnError.
func Start(ctx context.Context, o Options, spec proc.Spec, files proc.Files, t Transport) (*Runner, error) {
	p, err := proc.Start(spec, files, o.Log)
	for _, f := range append(files.Extra, files.Stdin) {
		if f != nil {
			f.Close()
		}
	}
	if err != nil {
		t.Close()
		return nil, o.spawnError(proc.StageExec, fmt.Errorf("start %s: %w", spec.Path, err))
	}
	return Run(ctx, o, p, t)
}

// Run supervises p, already started or being started by t's Ready (as
// go-plugin starts its process): it waits until t says p is ready, and
// then health-checks p until it exits. On failure p is killed, t closed,
// and the error is a *proc.SpawnError.
func Run(ctx context.Context, o Options, p Process, t Transport) (*Runner, error) {
	r := &Runner{o: o, proc: p, t: t, done: make(chan struct{})}
	if err := r.awaitReady(ctx); err != nil {
		return nil, err
	}
	// run ends after the process exits.
	go r.run()
	return r, nil
}

// awaitReady waits for t's Ready within ReadyTimeout and ctx, and on any
// failure kills the process, closes t and says which stage failed.
func (r *Runner) awaitReady(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, r.o.ReadyTimeout)
	defer cancel()
	res := make(chan error, 1)
	// Ends with Ready: at its answer, rctx's end, or Close below.
	go func() { res <- r.t.Ready(rctx) }()
	var err error
	answered, exited := false, false
	select {
	case err = <-res:
		answered = true
		var se *proc.SpawnError
		if err == nil || errors.As(err, &se) {
			break
		}
		// The transport lost the runner: wait for the exit it means.
		select {
		case <-r.proc.Done():
			exited = true
		case <-rctx.Done():
		}
	case <-r.proc.Done():
		exited = true
		// The transport may still hold the runner's last word (a
		// LOAD_ERROR with its traceback): a moment to read it.
		cancel()
		select {
		case err = <-res:
			answered = true
		case <-time.After(exitGrace):
			err = errors.New("no answer")
		}
	case <-rctx.Done():
		err = rctx.Err()
	}
	if err == nil {
		return nil
	}
	se := r.verdict(ctx, err, exited)
	r.proc.Signal(syscall.SIGKILL)
	<-r.proc.Done()
	r.t.Close()
	if !answered {
		<-res
	}
	if se.Detail == "" {
		se.Detail = r.proc.Tail()
	}
	if n, ok := r.t.(Noter); ok {
		if notes := n.Notes(se.Stage); notes != "" {
			se.Detail = joinLines(se.Detail, notes)
		}
	}
	return se
}

// verdict names the stage a start failed at, first cause first: the
// caller gave up, the runner said what was wrong, it exited, it ran out of
// time.
func (r *Runner) verdict(ctx context.Context, err error, exited bool) *proc.SpawnError {
	var se *proc.SpawnError
	switch {
	case ctx.Err() != nil:
		return r.o.spawnError(proc.StageHandshake, fmt.Errorf("launch canceled: %w", ctx.Err()))
	case errors.As(err, &se):
		se.App, se.Worker = r.o.App, r.o.Worker
		return se
	case exited:
		se := r.o.spawnError(proc.StageLoad, fmt.Errorf("%s exited during its start (%s)", r.o.Kind, r.proc.ExitString()))
		if k, ok := r.proc.(interface{ KilledBy() syscall.Signal }); ok { // proc.Process
			se.Signal = k.KilledBy()
		}
		return se
	case errors.Is(err, context.DeadlineExceeded):
		return r.o.spawnError(proc.StageReadyTimeout, fmt.Errorf("no %s within %v", r.o.Awaits, r.o.ReadyTimeout))
	}
	return r.o.spawnError(proc.StageHandshake, err)
}

func (o *Options) spawnError(stage proc.Stage, err error) *proc.SpawnError {
	return &proc.SpawnError{App: o.App, Worker: o.Worker, Stage: stage, Err: err}
}

func joinLines(a, b string) string {
	if a == "" {
		return b
	}
	return a + "\n" + b
}

// run health-checks the runner until it exits, then closes the transport
// and done.
func (r *Runner) run() {
	defer close(r.done)
	defer r.t.Close()
	tick := time.NewTicker(r.o.PingEvery)
	defer tick.Stop()
	for {
		select {
		case <-r.proc.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.o.PingTimeout)
		err := r.t.Ping(ctx)
		cancel()
		if err == nil || errors.Is(err, ErrBusy) || r.stopping.Load() {
			continue
		}
		select {
		case <-r.proc.Done():
			return // the check failed because the runner is exiting
		case <-time.After(exitGrace):
		}
		if r.stopping.Load() {
			continue // Stop began meanwhile: it ends the runner
		}
		r.o.Log.Error(r.o.Kind+" failed its health check, killing it", "pid", r.PID(), "timeout", r.o.PingTimeout, "err", err)
		r.Kill()
	}
}

// PID is the runner's process id.
func (r *Runner) PID() int { return r.proc.PID() }

// Kill kills the runner's process group at once; Done follows.
func (r *Runner) Kill() { r.proc.Signal(syscall.SIGKILL) }

// Done is closed once the process has exited and gw's ends of the transport
// are closed.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Exit says how the process ended, for logs; valid after Done.
func (r *Runner) Exit() string { return r.proc.ExitString() }

// LimitHit names the app's limit that ended the runner ("memory",
// "cpu_time", "memory_max"), "" when none did; valid after Done.
func (r *Runner) LimitHit() string {
	if l, ok := r.proc.(interface{ LimitHit() string }); ok { // proc.Process
		return l.LimitHit()
	}
	return ""
}

// CPUSeconds is the exited runner's CPU time from its rusage (reaped
// children included); valid after Done.
func (r *Runner) CPUSeconds() float64 {
	if c, ok := r.proc.(interface{ CPUSeconds() float64 }); ok { // proc.Process
		return c.CPUSeconds()
	}
	return 0
}

// Stop asks the runner to exit (the transport's Quit, then SIGTERM unless
// Quit was the whole request) and kills its group at ctx's end. It returns
// once the runner is gone.
func (r *Runner) Stop(ctx context.Context) {
	select {
	case <-r.done:
		return
	default:
	}
	r.stopping.Store(true)
	term := true
	if q, ok := r.t.(Quitter); ok {
		term = q.Quit()
	}
	if term {
		r.proc.Signal(syscall.SIGTERM)
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		r.Kill()
		<-r.done
	}
}

// DumpStacks asks the runner to log its threads' stacks (SIGUSR1: Python's
// faulthandler, Ruby's Thread#backtrace, Perl's Carp, the Go SDK's
// goroutine dump), php-fpm's slowlog for every language. The process only,
// not its group: what an app forked would die of the signal.
func (r *Runner) DumpStacks() { syscall.Kill(r.proc.PID(), syscall.SIGUSR1) }
