package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/gateway/admin"
	"github.com/gwhq/gw/internal/gwtest"
	"github.com/gwhq/gw/runners/daemon"
)

func snapshot(t *testing.T, stats string) admin.Snapshot {
	t.Helper()
	resp, err := http.Get(stats + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap admin.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	return snap
}

func daemonStats(t *testing.T, stats, name string) daemon.Stats {
	for _, d := range snapshot(t, stats).Daemons {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no daemon %q in /stats", name)
	return daemon.Stats{}
}

// daemonConfig writes gw.yaml: the python suite app plus daemons and cron.
func daemonConfig(t *testing.T, path, py, extra string) {
	t.Helper()
	y := fmt.Sprintf("listen: { http: \"127.0.0.1:0\", stats: \"127.0.0.1:0\" }\napps:\n  - path: %s\n    interpreter: %s\n    workers: 1\n%s",
		app("suite.py"), py, extra)
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDaemons: a daemon killed with SIGKILL comes back after a backoff
// that grows while it keeps dying young; on-failure leaves a clean exit
// down; the stop signal is honoured at gw's stop and no daemon outlives gw
// (gwtest's Stop checks the children); a cron job whose runs outlast its
// @every 1s interval skips the ticks that overlap.
func TestDaemons(t *testing.T) {
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	mark := filepath.Join(dir, "int")
	cfg := filepath.Join(dir, "gw.yaml")
	daemonConfig(t, cfg, py, fmt.Sprintf(`daemons:
  - name: crashy
    command: [/bin/sh, -c, "echo crashy up; exec sleep 100"]
  - name: once
    command: [/bin/sh, -c, "exit 0"]
    restart: on-failure
  - name: intr
    command: [/bin/sh, -c, "trap 'echo bye > %s; exit 0' INT; while :; do sleep 0.05; done"]
    stop_signal: INT
cron:
  - name: tick
    schedule: "@every 1s"
    command: [/bin/sh, -c, "echo tick; sleep 2.5"]
`, mark))
	s := gwtest.Start(t, "-c", cfg)
	stats := "http://" + s.Addr("stats")

	// Kill crashy four times as soon as it is back: each return takes
	// longer (backoff 100ms, 200ms, 400ms, 800ms; the 50ms polling and a
	// busy machine add noise, so the first and the last are compared).
	var pid int
	waitFor(t, "crashy running", func() bool { pid = daemonStats(t, stats, "crashy").PID; return pid != 0 })
	var gaps []time.Duration
	for range 4 {
		killed := time.Now()
		syscall.Kill(pid, syscall.SIGKILL)
		old := pid
		waitFor(t, "crashy back", func() bool {
			pid = daemonStats(t, stats, "crashy").PID
			return pid != 0 && pid != old
		})
		gaps = append(gaps, time.Since(killed))
	}
	t.Logf("crashy back after %v", gaps)
	if gaps[3] < 800*time.Millisecond || gaps[3] < gaps[0]+400*time.Millisecond {
		t.Errorf("restart delays %v: want growing backoff (100ms, 200ms, 400ms, 800ms)", gaps)
	}
	if d := daemonStats(t, stats, "crashy"); d.Restarts[daemon.ReasonSignal] != 4 || d.State != daemon.StateRunning {
		t.Errorf("crashy: %+v", d)
	}
	fams := scrape(t, stats)
	if v, _ := metric(fams, "gw_daemon_restarts_total", map[string]string{"daemon": "crashy", "reason": "signal"}); v != 4 {
		t.Errorf("gw_daemon_restarts_total{crashy,signal} = %v", v)
	}
	if v, ok := metric(fams, "gw_daemon_up", map[string]string{"daemon": "crashy"}); !ok || v != 1 {
		t.Errorf("gw_daemon_up{crashy} = %v", v)
	}
	if d := daemonStats(t, stats, "once"); d.State != daemon.StateExited || len(d.Restarts) != 0 {
		t.Errorf("once (on-failure, exit 0): %+v", d)
	}

	var tick daemon.JobStats
	waitFor(t, "cron tick ran and skipped", func() bool {
		for _, j := range snapshot(t, stats).Cron {
			if j.Name == "tick" {
				tick = j
			}
		}
		return tick.Runs[daemon.ResultOK] >= 1 && tick.Runs[daemon.ResultSkipped] >= 1
	})
	if tick.Schedule != "@every 1s" || tick.LastStart.IsZero() || tick.Next.IsZero() {
		t.Errorf("tick: %+v", tick)
	}
	if v, _ := metric(scrape(t, stats), "gw_cron_runs_total", map[string]string{"job": "tick", "result": "skipped"}); v < 1 {
		t.Errorf("gw_cron_runs_total{tick,skipped} = %v", v)
	}
	log := s.Log()
	if !strings.Contains(log, "msg=\"crashy up\" daemon=crashy") || !strings.Contains(log, "msg=tick cron=tick") {
		t.Errorf("daemon and cron output not tagged in gw's log:\n%s", log)
	}

	s.Stop()
	if b, err := os.ReadFile(mark); err != nil || strings.TrimSpace(string(b)) != "bye" {
		t.Errorf("intr did not get its stop signal INT: %q %v", b, err)
	}
}

// TestDaemonsReload: a SIGHUP restarts the daemon whose command changed
// and leaves the unchanged one running.
func TestDaemonsReload(t *testing.T) {
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gw.yaml")
	two := func(bArg string) string {
		return "daemons:\n  - name: a\n    command: [/bin/sleep, \"100\"]\n  - name: b\n    command: [/bin/sleep, \"" + bArg + "\"]\n"
	}
	daemonConfig(t, cfg, py, two("100"))
	s := gwtest.Start(t, "-c", cfg)
	stats := "http://" + s.Addr("stats")
	var a, b int
	waitFor(t, "daemons running", func() bool {
		a, b = daemonStats(t, stats, "a").PID, daemonStats(t, stats, "b").PID
		return a != 0 && b != 0
	})
	daemonConfig(t, cfg, py, two("101"))
	syscall.Kill(s.PID(), syscall.SIGHUP)
	var b2 int
	waitFor(t, "b restarted", func() bool { b2 = daemonStats(t, stats, "b").PID; return b2 != 0 && b2 != b })
	if a2 := daemonStats(t, stats, "a").PID; a2 != a {
		t.Errorf("unchanged daemon a: pid %d before the reload, %d after", a, a2)
	}
	if gwtest.Alive(b) {
		t.Errorf("b's old process %d still runs", b)
	}
}
