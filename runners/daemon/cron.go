package daemon

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/proc"
)

// Clock is the time source of the cron owner; tests step a fake one
// instead of waiting for real minutes. At takes an absolute time: a
// duration computed from an earlier Now would push the tick back by
// whatever time passed in between (a fake clock stepped there lost a
// minute).
type Clock interface {
	Now() time.Time
	At(t time.Time) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                  { return time.Now() }
func (realClock) At(t time.Time) <-chan time.Time { return time.After(time.Until(t)) }

// Results of a cron run, the label of gw_cron_runs_total.
const (
	ResultOK          = "ok"
	ResultFailed      = "failed"       // non-zero exit or killed
	ResultTimeout     = "timeout"      // stopped past its timeout
	ResultStartFailed = "start_failed" // could not be started
	ResultSkipped     = "skipped"      // the previous run was still going
)

// JobStats is one cron job as /stats shows it.
type JobStats struct {
	Name      string            `json:"name"`
	Schedule  string            `json:"schedule"`
	Command   []string          `json:"command"`
	PID       int               `json:"pid,omitempty"` // of the run going now
	LastStart time.Time         `json:"last_start,omitzero"`
	LastEnd   time.Time         `json:"last_end,omitzero"`
	LastExit  string            `json:"last_exit,omitempty"`
	Next      time.Time         `json:"next,omitzero"`
	Runs      map[string]uint64 `json:"runs"` // by result; "skipped" counts overlaps
}

// Cron runs the cron jobs: one owner goroutine holds every job's next
// time and its run, waiting on the earliest timer, the runs' ends,
// updates and Stop.
type Cron struct {
	clock    Clock
	log      *slog.Logger
	update   chan []config.CronJob
	finished chan *run
	stop     chan context.Context
	once     sync.Once
	done     chan struct{}

	runs map[*run]bool // runs going, of current and removed jobs; owner only

	mu   sync.Mutex // guards jobs' stats for Stats; the owner alone writes
	jobs []*job
}

type job struct {
	cfg  config.CronJob
	next time.Time
	run  *run // the run going now, nil between runs
	st   JobStats
}

// run is one run of a job, waited for by its own goroutine.
type run struct {
	job      *job
	p        *proc.Process
	stop     chan struct{}    // closed to stop the run (Stop, job removed)
	deadline <-chan time.Time // the job's timeout; nil: none
	ctx      context.Context  // bounds the stop; set before stop is closed
	timeout  bool             // set before finished: it was stopped at its timeout
}

// halt stops r, with ctx bounding its stop timeout; owner only.
func (r *run) halt(ctx context.Context) {
	select {
	case <-r.stop:
	default:
		r.ctx = ctx
		close(r.stop)
	}
}

// StartCron starts the owner of jobs with clock (nil: the real one). Jobs
// with @reboot run now, once.
func StartCron(jobs []config.CronJob, clock Clock, log *slog.Logger) *Cron {
	if clock == nil {
		clock = realClock{}
	}
	c := &Cron{clock: clock, log: log, update: make(chan []config.CronJob), finished: make(chan *run),
		stop: make(chan context.Context, 1), done: make(chan struct{}), runs: map[*run]bool{}}
	now := clock.Now()
	for _, cfg := range jobs {
		j := c.newJob(cfg, now)
		if cfg.Schedule.Reboot() {
			c.fire(j, now)
		}
		c.jobs = append(c.jobs, j)
	}
	// Ends at Stop.
	go c.own()
	return c
}

func (c *Cron) newJob(cfg config.CronJob, now time.Time) *job {
	return &job{cfg: cfg, next: cfg.Schedule.Next(now),
		st: JobStats{Name: cfg.Name, Schedule: cfg.ScheduleText, Command: cfg.Command, Runs: map[string]uint64{}}}
}

// Update replaces the jobs at a reload: a job keeps its stats and a run
// going by name; a removed job's run is stopped.
func (c *Cron) Update(jobs []config.CronJob) {
	select {
	case c.update <- jobs:
	case <-c.done:
	}
}

// Stop stops the runs going (stop signal, SIGKILL after the stop timeout
// or when ctx ends) and the owner; it returns once they are gone.
func (c *Cron) Stop(ctx context.Context) {
	c.once.Do(func() { c.stop <- ctx })
	<-c.done
}

// Stats returns every job's state now.
func (c *Cron) Stats() []JobStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]JobStats, len(c.jobs))
	for i, j := range c.jobs {
		out[i] = j.st
		out[i].Next = j.next
		out[i].Runs = make(map[string]uint64, len(j.st.Runs))
		for k, v := range j.st.Runs {
			out[i].Runs[k] = v
		}
	}
	return out
}

func (c *Cron) set(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

func (c *Cron) own() {
	defer close(c.done)
	for {
		var tick <-chan time.Time
		if at := c.earliest(); !at.IsZero() {
			tick = c.clock.At(at)
		}
		select {
		case <-tick:
			now := c.clock.Now()
			for _, j := range c.jobs {
				if !j.next.IsZero() && !j.next.After(now) {
					c.fire(j, now)
					c.set(func() { j.next = nextAfter(j, now) })
				}
			}
		case r := <-c.finished:
			c.ended(r)
		case jobs := <-c.update:
			c.replace(jobs)
		case ctx := <-c.stop:
			c.stopAll(ctx)
			return
		}
	}
}

// nextAfter is j's next time after the one that just fired: from the
// scheduled time for @every, so a late owner does not drift.
func nextAfter(j *job, now time.Time) time.Time {
	if n := j.cfg.Schedule.Next(j.next); n.After(now) {
		return n
	}
	return j.cfg.Schedule.Next(now)
}

func (c *Cron) earliest() time.Time {
	var at time.Time
	for _, j := range c.jobs {
		if !j.next.IsZero() && (at.IsZero() || j.next.Before(at)) {
			at = j.next
		}
	}
	return at
}

// fire starts a run of j, or skips the tick while the last run goes on.
func (c *Cron) fire(j *job, now time.Time) {
	log := c.log.With("cron", j.cfg.Name)
	if j.run != nil {
		log.Warn("cron: the previous run is still going; this run is skipped", "pid", j.run.p.PID(), "since", j.st.LastStart)
		c.set(func() { j.st.Runs[ResultSkipped]++ })
		return
	}
	p, err := startProcess(j.cfg.Process, log)
	if err != nil {
		log.Error("cron: run failed to start", "err", err)
		c.set(func() {
			j.st.Runs[ResultStartFailed]++
			j.st.LastStart, j.st.LastEnd, j.st.LastExit = now, now, err.Error()
		})
		return
	}
	r := &run{job: j, p: p, stop: make(chan struct{})}
	if j.cfg.Timeout > 0 {
		r.deadline = c.clock.At(now.Add(j.cfg.Timeout))
	}
	j.run = r
	c.runs[r] = true
	c.set(func() { j.st.PID, j.st.LastStart = p.PID(), now })
	log.Info("cron: run started", "pid", p.PID())
	// Ends when the process has; the owner receives its end.
	go c.wait(r)
}

// wait waits for r's process, stopping it at its timeout or when asked,
// and hands r to the owner.
func (c *Cron) wait(r *run) {
	cfg := r.job.cfg
	select {
	case <-r.p.Done():
	case <-r.deadline:
		r.timeout = true
		stopProcess(context.Background(), r.p, cfg.StopSignal, cfg.StopTimeout)
	case <-r.stop:
		stopProcess(r.ctx, r.p, cfg.StopSignal, cfg.StopTimeout)
	}
	c.finished <- r
}

// ended records a finished run.
func (c *Cron) ended(r *run) {
	j := r.job
	delete(c.runs, r)
	result := ResultOK
	switch {
	case r.timeout:
		result = ResultTimeout
	case r.p.ExitCode() != 0:
		result = ResultFailed
	}
	if j.run == r {
		j.run = nil
	}
	c.set(func() {
		j.st.Runs[result]++
		j.st.PID, j.st.LastEnd, j.st.LastExit = 0, c.clock.Now(), r.p.ExitString()
	})
	c.log.Info("cron: run ended", "cron", j.cfg.Name, "pid", r.p.PID(), "result", result, "exit", r.p.ExitString())
}

// replace reconciles the jobs with a reloaded list, by name.
func (c *Cron) replace(cfgs []config.CronJob) {
	now := c.clock.Now()
	old := map[string]*job{}
	for _, j := range c.jobs {
		old[j.cfg.Name] = j
	}
	jobs := make([]*job, 0, len(cfgs))
	for _, cfg := range cfgs {
		j, ok := old[cfg.Name]
		delete(old, cfg.Name)
		switch {
		case !ok:
			j = c.newJob(cfg, now)
		case !reflect.DeepEqual(j.cfg, cfg):
			// Its run goes on under the old settings; the next one
			// follows the new schedule.
			j.cfg = cfg
			j.next = cfg.Schedule.Next(now)
			j.st.Schedule, j.st.Command = cfg.ScheduleText, cfg.Command
		}
		jobs = append(jobs, j)
	}
	for _, j := range old {
		if j.run != nil {
			j.run.halt(context.Background()) // its end still comes to finished
		}
	}
	c.set(func() { c.jobs = jobs })
}

// stopAll stops every run going, of current and removed jobs, and waits
// for their ends.
func (c *Cron) stopAll(ctx context.Context) {
	for r := range c.runs {
		r.halt(ctx)
	}
	for len(c.runs) > 0 {
		c.ended(<-c.finished)
	}
}
