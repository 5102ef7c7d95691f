package daemon

import (
	"context"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/backoff"
)

// logEvents is a slog handler that hands each record to the test as an
// event: its message and attributes as "k=v" text, with the time it came.
type logEvents struct {
	ch    chan event
	attrs []slog.Attr
}

type event struct {
	msg, attrs string
	at         time.Time
}

func newLog() (*slog.Logger, chan event) {
	ch := make(chan event, 10000)
	return slog.New(&logEvents{ch: ch}), ch
}

func (h *logEvents) Enabled(context.Context, slog.Level) bool { return true }
func (h *logEvents) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	for _, a := range h.attrs {
		b.WriteString(a.String() + " ")
	}
	r.Attrs(func(a slog.Attr) bool { b.WriteString(a.String() + " "); return true })
	h.ch <- event{msg: r.Message, attrs: b.String(), at: time.Now()}
	return nil
}
func (h *logEvents) WithAttrs(as []slog.Attr) slog.Handler {
	return &logEvents{ch: h.ch, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}
func (h *logEvents) WithGroup(string) slog.Handler { return h }

// await returns the next event whose message starts with prefix.
func await(t *testing.T, ch chan event, prefix string) event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-ch:
			if strings.HasPrefix(e.msg, prefix) {
				return e
			}
		case <-deadline:
			t.Fatalf("no log line %q within 10s", prefix)
		}
	}
}

func shDaemon(name, script string) config.Daemon {
	return config.Daemon{Restart: config.RestartAlways, Process: config.Process{Name: name, Command: []string{"/bin/sh", "-c", script},
		StopSignal: syscall.SIGTERM, StopTimeout: 5 * time.Second}}
}

// TestRestartBackoff: a daemon that keeps crashing young is restarted
// after a delay that doubles each time.
func TestRestartBackoff(t *testing.T) {
	log, ev := newLog()
	b := backoff.Backoff{Base: 50 * time.Millisecond, Max: time.Second}
	d := Start(shDaemon("crash", "exit 3"), b, log)
	defer d.Stop(context.Background())
	var starts []time.Time
	for range 5 {
		starts = append(starts, await(t, ev, "daemon started").at)
	}
	for i := 1; i < len(starts); i++ {
		gap := starts[i].Sub(starts[i-1])
		want := b.Delay(i)
		if gap < want || gap > want+400*time.Millisecond {
			t.Errorf("restart %d came %v after the start before, want %v (+ the start)", i, gap, want)
		}
	}
	if st := d.Stats(); st.Restarts[ReasonFailure] < 4 || st.LastExit != "exit status 3" {
		t.Errorf("stats %+v", st)
	}
}

// TestRestartPolicies: which exits each policy restarts after.
func TestRestartPolicies(t *testing.T) {
	for i, tc := range []struct {
		policy  config.Restart
		script  string
		restart bool
	}{
		{config.RestartAlways, "exit 0", true},
		{config.RestartAlways, "exit 1", true},
		{config.RestartOnFailure, "exit 0", false},
		{config.RestartOnFailure, "exit 1", true},
		{config.RestartOnFailure, "kill -9 $$", true},
		{config.RestartNever, "exit 1", false},
	} {
		log, ev := newLog()
		cfg := shDaemon("p", tc.script)
		cfg.Restart = tc.policy
		d := Start(cfg, backoff.Backoff{Base: time.Millisecond}, log)
		await(t, ev, "daemon started")
		e := await(t, ev, "daemon exited")
		if got := strings.Contains(e.msg, "restarting"); got != tc.restart {
			t.Errorf("%d: %s after %q: %q, want restart %v", i, tc.policy, tc.script, e.msg, tc.restart)
		}
		if !tc.restart && d.Stats().State != StateExited {
			t.Errorf("%d: state %q, want exited", i, d.Stats().State)
		}
		d.Stop(context.Background())
		if st := d.Stats(); st.State != StateStopped {
			t.Errorf("%d: after Stop: state %q", i, st.State)
		}
	}
}

// TestStopSignal: the stop signal reaches the daemon, which exits on it
// without waiting for the SIGKILL.
func TestStopSignal(t *testing.T) {
	log, ev := newLog()
	cfg := shDaemon("int", `trap 'echo got INT; exit 0' INT; echo ready; while :; do sleep 0.05; done`)
	cfg.StopSignal = syscall.SIGINT
	d := Start(cfg, backoff.Backoff{}, log)
	await(t, ev, "ready")
	start := time.Now()
	d.Stop(context.Background())
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stop took %v: the INT was not honoured", took)
	}
	await(t, ev, "got INT")
	if st := d.Stats(); st.LastExit != "exit status 0" {
		t.Errorf("last exit %q", st.LastExit)
	}
}

// TestStopKills: a daemon that ignores its stop signal is killed at its
// stop timeout.
func TestStopKills(t *testing.T) {
	log, ev := newLog()
	cfg := shDaemon("deaf", `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	cfg.StopTimeout = 300 * time.Millisecond
	d := Start(cfg, backoff.Backoff{}, log)
	await(t, ev, "ready")
	start := time.Now()
	d.Stop(context.Background())
	if took := time.Since(start); took < 300*time.Millisecond || took > 3*time.Second {
		t.Errorf("stop took %v, want the 300ms stop timeout", took)
	}
	if st := d.Stats(); !strings.Contains(st.LastExit, "killed") {
		t.Errorf("last exit %q, want killed", st.LastExit)
	}
}

// TestSetUpdate: a reload restarts the changed daemon only, stops the
// removed one and starts the new one.
func TestSetUpdate(t *testing.T) {
	log, ev := newLog()
	a, b := shDaemon("a", "exec sleep 100"), shDaemon("b", "exec sleep 100")
	s := StartSet([]config.Daemon{a, b}, nil, backoff.Backoff{}, log)
	defer s.Stop(context.Background())
	// pids waits for n daemons to start and returns every daemon's pid.
	pids := func(n int) map[string]int {
		for range n {
			await(t, ev, "daemon started")
		}
		m := map[string]int{}
		ds, _ := s.Stats()
		for _, d := range ds {
			m[d.Name] = d.PID
		}
		return m
	}
	before := pids(2)
	b2, c := shDaemon("b", "exec sleep 101"), shDaemon("c", "exec sleep 100")
	s.Update(context.Background(), []config.Daemon{a, b2, c}, nil)
	after := pids(2)
	if after["a"] != before["a"] || after["b"] == before["b"] || after["c"] == 0 || len(after) != 3 {
		t.Errorf("pids before %v, after %v: want a kept, b restarted, c new", before, after)
	}
	s.Update(context.Background(), []config.Daemon{a}, nil)
	if ds, _ := s.Stats(); len(ds) != 1 || ds[0].PID != before["a"] {
		t.Errorf("after removing b and c: %+v", ds)
	}
	if syscall.Kill(after["c"], 0) == nil {
		t.Errorf("removed daemon c (pid %d) still runs", after["c"])
	}
}
