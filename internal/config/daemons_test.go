package config

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDaemonsAndCron(t *testing.T) {
	f := newFixture(t)
	f.write("srv/x", "")
	cfg, err := f.load(`
apps:
  - path: wsgi.py
daemons:
  - name: worker
    command: [celery, -A, proj, worker]
    dir: srv
    env: { C_FORCE_ROOT: "0" }
    restart: on-failure
    stop_signal: SIGINT
    stop_timeout: 3s
    uid: nobody
  - name: mailer
    command: ["/bin/sh", "-c", "exec sleep 100"]
cron:
  - name: cleanup
    schedule: "*/15 * * * *"
    command: [manage.py, clearsessions]
    timeout: 5m
  - name: boot
    schedule: "@reboot"
    command: [true]
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Daemons) != 2 || len(cfg.Cron) != 2 {
		t.Fatalf("daemons %+v cron %+v", cfg.Daemons, cfg.Cron)
	}
	w := cfg.Daemons[0]
	if w.Name != "worker" || strings.Join(w.Command, " ") != "celery -A proj worker" || w.Dir != f.dir+"/srv" ||
		w.Env["C_FORCE_ROOT"] != "0" || w.Restart != RestartOnFailure || w.StopSignal != syscall.SIGINT ||
		w.StopTimeout != 3*time.Second || w.User != "nobody" {
		t.Errorf("worker = %+v", w)
	}
	if m := cfg.Daemons[1]; m.Restart != RestartAlways || m.StopSignal != syscall.SIGTERM || m.StopTimeout != 10*time.Second {
		t.Errorf("defaults = %+v", m)
	}
	c := cfg.Cron[0]
	if c.ScheduleText != "*/15 * * * *" || c.Timeout != 5*time.Minute || c.Schedule.Next(time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)).Minute() != 15 {
		t.Errorf("cleanup = %+v", c)
	}
	if !cfg.Cron[1].Schedule.Reboot() || cfg.Cron[1].Timeout != 0 {
		t.Errorf("boot = %+v", cfg.Cron[1])
	}
}

func TestDaemonProblems(t *testing.T) {
	for i, tc := range []struct{ yaml, want string }{
		{"daemons:\n  - name: w\n    command: celery worker\n", `gw.yaml:9:14: daemons[0].command: want a list, not the value "celery worker"; write the program and its arguments as a list`},
		{"daemons:\n  - command: [a]\n", "gw.yaml:8:5: daemons[0]: missing name"},
		{"daemons:\n  - name: w\n", "gw.yaml:8:5: daemons[0]: missing command"},
		{"daemons:\n  - name: w\n    command: []\n", "daemons[0].command: empty command"},
		{"daemons:\n  - name: w\n    command: [a]\n  - name: w\n    command: [b]\n", `gw.yaml:10:11: daemons[1].name: name "w" is already used on line 8`},
		{"daemons:\n  - name: w\n    command: [a]\n    restart: sometimes\n", `gw.yaml:10:14: daemons[0].restart: restart must be always, on-failure or never`},
		{"daemons:\n  - name: w\n    command: [a]\n    stop_signal: STOP\n", "daemons[0].stop_signal: stop_signal must be one of"},
		{"daemons:\n  - name: w\n    command: [a]\n    stop_timeout: soon\n", "daemons[0].stop_timeout"},
		{"daemons:\n  - name: w\n    command: [a]\n    schedule: '* * * * *'\n", "daemons[0].schedule: unknown key"},
		{"daemons:\n  - name: w\n    command: [/no/such/prog]\n", "/no/such/prog: no such file or directory"},
		{"cron:\n  - name: c\n    command: [a]\n", "gw.yaml:8:5: cron[0]: missing schedule"},
		{"cron:\n  - name: c\n    command: [a]\n    schedule: '*/15 * * *'\n", `gw.yaml:10:15: cron[0].schedule: want 5 fields`},
		{"cron:\n  - name: c\n    command: [a]\n    schedule: '61 * * * *'\n", `cron[0].schedule: minute field "61": 61 is out of range 0-59`},
		{"cron:\n  - name: c\n    command: [a]\n    schedule: '@daily'\n    restart: always\n", "cron[0].restart: unknown key"},
	} {
		f := newFixture(t)
		_, err := f.load("listen:\n  http: :0\napps:\n  - path: wsgi.py\n\n\n"+tc.yaml, nil)
		var ps Problems
		if !errors.As(err, &ps) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: got %v, want a problem with %q", i, err, tc.want)
		}
	}
}
