// Package daemon runs the processes gw attaches to its apps: daemons it
// keeps running (celery, sidekiq, queue workers) and cron jobs it runs on a
// schedule. It sits on runners/proc, as a runner does, and reuses only
// that: the process start (credentials, its own process group, output into
// gw's log), the group signal and kill; runners/backoff for the restart
// delay. A daemon needs none of the lifecycle's ready wait or health check:
// gw does not talk to it.
//
// Each daemon has one owner goroutine (start, wait for the exit, restart
// per policy after the backoff, stop); the cron jobs share one owner
// goroutine that holds their timers (cron.go). Set (set.go) is the whole
// configured set, reconciled at a reload.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/hostenv"
	"github.com/gwhq/gw/runners/backoff"
	"github.com/gwhq/gw/runners/proc"
)

// The states of a daemon, as /stats shows them.
const (
	StateRunning = "running"
	StateBackoff = "backoff" // waiting to be started again
	StateExited  = "exited"  // ended, and its restart policy says stay down
	StateStopped = "stopped" // stopped by gw
)

// Restart reasons, the label of gw_daemon_restarts_total.
const (
	ReasonExit        = "exit"         // exit status 0 (restart: always)
	ReasonFailure     = "failure"      // non-zero exit status
	ReasonSignal      = "signal"       // killed by a signal not from gw
	ReasonStartFailed = "start_failed" // could not be started at all
)

// Stats is one daemon as /stats shows it.
type Stats struct {
	Name     string            `json:"name"`
	Command  []string          `json:"command"`
	PID      int               `json:"pid,omitempty"`
	State    string            `json:"state"`
	Restarts map[string]uint64 `json:"restarts"` // by reason
	LastExit string            `json:"last_exit,omitempty"`
	Started  time.Time         `json:"started,omitzero"` // of the current process
	Uptime   float64           `json:"uptime_s"`         // of the current process
}

// Daemon is one attached daemon and the goroutine that owns it.
type Daemon struct {
	cfg     config.Daemon
	log     *slog.Logger
	backoff backoff.Backoff
	stop    chan context.Context // Stop's request, read by the owner
	once    sync.Once
	done    chan struct{} // closed when the owner has returned

	mu sync.Mutex // guards st, written only by the owner
	st Stats
}

// Start starts cfg's process and the goroutine that keeps it running.
// Failing to start is not an error here: the daemon retries with backoff,
// as it does after a crash, and says so in the log and the stats.
func Start(cfg config.Daemon, b backoff.Backoff, log *slog.Logger) *Daemon {
	d := &Daemon{cfg: cfg, log: log.With("daemon", cfg.Name), backoff: b,
		stop: make(chan context.Context, 1), done: make(chan struct{}),
		st: Stats{Name: cfg.Name, Command: cfg.Command, Restarts: map[string]uint64{}}}
	// Ends at Stop.
	go d.run()
	return d
}

// Stop asks the daemon to stop with its stop signal and kills its process
// group after its stop timeout, or when ctx ends first. It returns once the
// process is gone; a later call returns at once.
func (d *Daemon) Stop(ctx context.Context) {
	d.once.Do(func() { d.stop <- ctx })
	<-d.done
}

// Config is what the daemon was started from.
func (d *Daemon) Config() config.Daemon { return d.cfg }

// Stats returns the daemon's state now.
func (d *Daemon) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st
	st.Restarts = make(map[string]uint64, len(d.st.Restarts))
	for k, v := range d.st.Restarts {
		st.Restarts[k] = v
	}
	if st.State == StateRunning {
		st.Uptime = time.Since(st.Started).Seconds()
	}
	return st
}

func (d *Daemon) set(f func(*Stats)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(&d.st)
}

// run is the owner: start, wait for the exit or Stop, restart per policy.
func (d *Daemon) run() {
	defer close(d.done)
	young := 0 // exits in a row of a process that lived less than Stable
	for {
		p, err := startProcess(d.cfg.Process, d.log)
		reason := ReasonStartFailed
		if err != nil {
			d.log.Error("daemon failed to start; retrying with backoff", "err", err)
			d.set(func(s *Stats) { s.LastExit = err.Error() })
		} else {
			started := time.Now()
			d.set(func(s *Stats) { s.PID, s.State, s.Started = p.PID(), StateRunning, started })
			d.log.Info("daemon started", "pid", p.PID())
			select {
			case ctx := <-d.stop:
				stopProcess(ctx, p, d.cfg.StopSignal, d.cfg.StopTimeout)
				d.log.Info("daemon stopped", "pid", p.PID(), "exit", p.ExitString())
				d.set(func(s *Stats) { s.PID, s.State, s.LastExit = 0, StateStopped, p.ExitString() })
				return
			case <-p.Done():
			}
			reason = exitReason(p)
			if time.Since(started) >= d.backoff.StableAfter() {
				young = 0
			}
			d.set(func(s *Stats) { s.PID, s.LastExit = 0, p.ExitString() })
			if !restarts(d.cfg.Restart, reason) {
				d.set(func(s *Stats) { s.State = StateExited })
				d.log.Info("daemon exited; not restarted (restart: "+string(d.cfg.Restart)+")", "pid", p.PID(), "exit", p.ExitString())
				<-d.stop
				d.set(func(s *Stats) { s.State = StateStopped })
				return
			}
		}
		young++
		delay := d.backoff.Delay(young)
		d.set(func(s *Stats) { s.State = StateBackoff; s.Restarts[reason]++ })
		d.log.Warn("daemon exited; restarting", "reason", reason, "exit", d.Stats().LastExit, "in", delay)
		select {
		case <-d.stop:
			d.set(func(s *Stats) { s.State = StateStopped })
			return
		case <-time.After(delay):
		}
	}
}

// restarts says whether policy restarts after an exit for reason.
func restarts(policy config.Restart, reason string) bool {
	switch policy {
	case config.RestartNever:
		return false
	case config.RestartOnFailure:
		return reason != ReasonExit
	}
	return true
}

// exitReason classifies how p ended.
func exitReason(p *proc.Process) string {
	switch code := p.ExitCode(); {
	case code == 0:
		return ReasonExit
	case code > 0:
		return ReasonFailure
	}
	return ReasonSignal
}

// startProcess starts what a daemon or cron job runs: its command in its
// directory, gw's environment plus its own, as its user. Output goes to
// log as lines, tagged by the caller ("daemon", "cron").
func startProcess(c config.Process, log *slog.Logger) (*proc.Process, error) {
	if len(c.Command) == 0 {
		return nil, errors.New("empty command")
	}
	cred, err := proc.LookupCredential(c.User, c.Group)
	if err != nil {
		return nil, err
	}
	spec := proc.Spec{Path: c.Command[0], Args: c.Command[1:], Env: proc.WithEnv(hostenv.Environ(), c.Env), Dir: c.Dir, Cred: cred}
	p, err := proc.Start(spec, proc.Files{}, log)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Command[0], err)
	}
	return p, nil
}

// stopProcess sends sig to p's process group and SIGKILL after timeout or
// when ctx ends, whichever is first; it returns once p is gone.
func stopProcess(ctx context.Context, p *proc.Process, sig syscall.Signal, timeout time.Duration) {
	select {
	case <-p.Done():
		return
	default:
	}
	p.Signal(sig)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.Done():
		return
	case <-t.C:
	case <-ctx.Done():
	}
	p.Kill()
	<-p.Done()
}
