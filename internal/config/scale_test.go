package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScaleOptions covers min_workers, worker_idle and weight from flags,
// env and YAML, their defaults and their checks.
func TestScaleOptions(t *testing.T) {
	f := newFixture(t)
	app := filepath.Join(f.dir, "wsgi.py")
	tests := []struct {
		name    string
		yaml    string
		env     []string
		args    []string
		min     int
		idle    time.Duration
		weight  int
		problem string
	}{
		{name: "defaults: fixed", args: []string{"--workers", "3", app}, min: 3, idle: 30 * time.Second, weight: 1},
		{name: "flags", args: []string{"--workers", "4", "--min-workers", "1", "--worker-idle", "2s", "--weight", "3", app},
			min: 1, idle: 2 * time.Second, weight: 3},
		{name: "on demand from env", env: []string{"GW_MIN_WORKERS=0", "GW_WORKER_IDLE=5s", "GW_WEIGHT=2"}, args: []string{app},
			min: 0, idle: 5 * time.Second, weight: 2},
		{name: "yaml", yaml: "apps:\n  - {path: wsgi.py, workers: 8, min_workers: 2, worker_idle: 1m, weight: 4}\n",
			min: 2, idle: time.Minute, weight: 4},
		{name: "min over workers", yaml: "apps:\n  - {path: wsgi.py, workers: 2, min_workers: 3}\n",
			problem: "apps[0].min_workers: min_workers must be at most workers (2), got 3"},
		{name: "negative min", args: []string{"--min-workers", "-1", app}, problem: "--min-workers: must be at least 0"},
		{name: "zero idle", args: []string{"--worker-idle", "0s", app}, problem: "--worker-idle: must be more than zero"},
		{name: "floors fit max_runners", yaml: "max_runners: 3\napps:\n  - {path: wsgi.py, workers: 8, min_workers: 3}\n",
			min: 3, idle: 30 * time.Second, weight: 1},
		{name: "floors over max_runners", yaml: "max_runners: 2\napps:\n  - {path: wsgi.py, workers: 3}\n",
			problem: "max_runners: max_runners 2 is less than the apps' min_workers together (wsgi 3 = 3)"},
		{name: "zero weight", yaml: "apps:\n  - {path: wsgi.py, weight: 0}\n", problem: "apps[0].weight: must be at least 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(f.dir)
			cfg, err := f.load(tc.yaml, tc.env, tc.args...)
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("err = %v, want a problem saying %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := cfg.Apps[0]
			if a.MinWorkers != tc.min || a.WorkerIdle != tc.idle || a.Weight != tc.weight {
				t.Errorf("min_workers %d, worker_idle %v, weight %d; want %d, %v, %d",
					a.MinWorkers, a.WorkerIdle, a.Weight, tc.min, tc.idle, tc.weight)
			}
		})
	}
}
