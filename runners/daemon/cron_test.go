package daemon

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/cron"
)

// fakeClock is a Clock the test steps: At fires once Advance reaches its
// time (at once if it already has).
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) At(t time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !t.After(c.now) {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{t, ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
		} else {
			w.ch <- c.now
		}
	}
	c.waiters = kept
}

func newJob(t *testing.T, name, schedule string, command ...string) config.CronJob {
	t.Helper()
	s, err := cron.Parse(schedule)
	if err != nil {
		t.Fatal(err)
	}
	return config.CronJob{Schedule: s, ScheduleText: schedule,
		Process: config.Process{Name: name, Command: command, StopSignal: syscall.SIGTERM, StopTimeout: 5 * time.Second}}
}

// TestCronRuns: a job runs at its minute, not before, and its run is
// counted with its times.
func TestCronRuns(t *testing.T) {
	log, ev := newLog()
	clock := &fakeClock{now: time.Date(2026, 3, 10, 12, 0, 30, 0, time.Local)}
	c := StartCron([]config.CronJob{newJob(t, "tick", "* * * * *", "/bin/sh", "-c", "echo ran")}, clock, log)
	defer c.Stop(context.Background())
	if st := c.Stats()[0]; !st.Next.Equal(time.Date(2026, 3, 10, 12, 1, 0, 0, time.Local)) || st.Runs[ResultOK] != 0 {
		t.Fatalf("before the minute: %+v", st)
	}
	clock.Advance(30 * time.Second)
	await(t, ev, "cron: run started")
	await(t, ev, "ran")
	await(t, ev, "cron: run ended")
	st := c.Stats()[0]
	if st.Runs[ResultOK] != 1 || st.LastExit != "exit status 0" || !st.LastStart.Equal(clock.Now()) ||
		!st.Next.Equal(time.Date(2026, 3, 10, 12, 2, 0, 0, time.Local)) {
		t.Errorf("after the run: %+v", st)
	}
}

// TestCronSkipsOverlaps: a run still going at the next tick skips that
// tick; Stop ends the run.
func TestCronSkipsOverlaps(t *testing.T) {
	log, ev := newLog()
	clock := &fakeClock{now: time.Date(2026, 3, 10, 12, 0, 0, 0, time.Local)}
	c := StartCron([]config.CronJob{newJob(t, "long", "@every 1m", "/bin/sleep", "100")}, clock, log)
	clock.Advance(time.Minute)
	await(t, ev, "cron: run started")
	pid := c.Stats()[0].PID
	for range 2 {
		clock.Advance(time.Minute)
		await(t, ev, "cron: the previous run is still going")
	}
	if st := c.Stats()[0]; st.Runs[ResultSkipped] != 2 || st.PID != pid {
		t.Errorf("stats %+v, want 2 skipped and run %d going", st, pid)
	}
	c.Stop(context.Background())
	if st := c.Stats()[0]; st.Runs[ResultFailed] != 1 || st.PID != 0 {
		t.Errorf("after Stop: %+v", st)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("run %d outlived Stop", pid)
	}
}

// TestCronTimeout: a run past its timeout is stopped and counted.
func TestCronTimeout(t *testing.T) {
	log, ev := newLog()
	clock := &fakeClock{now: time.Date(2026, 3, 10, 12, 0, 0, 0, time.Local)}
	j := newJob(t, "slow", "@hourly", "/bin/sleep", "100")
	j.Timeout = 10 * time.Minute
	c := StartCron([]config.CronJob{j}, clock, log)
	defer c.Stop(context.Background())
	clock.Advance(time.Hour)
	await(t, ev, "cron: run started")
	clock.Advance(10 * time.Minute)
	e := await(t, ev, "cron: run ended")
	if st := c.Stats()[0]; st.Runs[ResultTimeout] != 1 {
		t.Errorf("stats %+v (%s)", st, e.attrs)
	}
}

// TestCronReboot: @reboot runs once at start and never again.
func TestCronReboot(t *testing.T) {
	log, ev := newLog()
	clock := &fakeClock{now: time.Date(2026, 3, 10, 12, 0, 0, 0, time.Local)}
	c := StartCron([]config.CronJob{newJob(t, "boot", "@reboot", "/bin/true")}, clock, log)
	defer c.Stop(context.Background())
	await(t, ev, "cron: run ended")
	if st := c.Stats()[0]; st.Runs[ResultOK] != 1 || !st.Next.IsZero() {
		t.Errorf("stats %+v", st)
	}
}
