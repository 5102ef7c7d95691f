package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAppLimits(t *testing.T) {
	f := newFixture(t)
	cfg := f.mustLoad(`
apps:
  - path: wsgi.py
    limits:
      memory: 512MiB
      open_files: 4096
      processes: 64
      cpu_time: 2m
      memory_max: 1GiB
      pids_max: 128
      cpu_weight: 200
  - path: config.ru
    mount: /rb
    limits: { cpu_time: 30 }
`, nil)
	want := AppLimits{Memory: 512 << 20, OpenFiles: 4096, Processes: 64, CPUTime: 2 * time.Minute,
		MemoryMax: 1 << 30, PidsMax: 128, CPUWeight: 200}
	if got := cfg.Apps[0].Limits; got != want {
		t.Errorf("limits = %+v, want %+v", got, want)
	}
	if got := cfg.Apps[1].Limits; got != (AppLimits{CPUTime: 30 * time.Second}) || got.Cgrouped() || !got.Rlimited() {
		t.Errorf("second app's limits = %+v", got)
	}
}

func TestAppLimitsProblems(t *testing.T) {
	for _, tc := range []struct{ limits, want string }{
		{"memory: 512", "below 16MiB"},
		{"memory: lots", "size \"lots\""},
		{"open_files: 3", "at least 16"},
		{"processes: -1", "at least 0"},
		{"cpu_time: 1.5s", "whole seconds"},
		{"cpu_time: soon", "cpu_time: want whole seconds"},
		{"cpu_weight: 20000", "1 to 10000"},
		{"swap: 1GiB", "swap"},
	} {
		t.Run(tc.limits, func(t *testing.T) {
			f := newFixture(t)
			_, err := f.load("apps:\n  - path: wsgi.py\n    limits: { "+tc.limits+" }\n", nil)
			var ps Problems
			if !errors.As(err, &ps) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a problem with %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "apps[0].limits") {
				t.Errorf("problem does not name the key: %v", err)
			}
		})
	}
}
