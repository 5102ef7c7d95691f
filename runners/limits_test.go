package runners

import (
	"log/slog"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/proc"
)

func TestDirName(t *testing.T) {
	for in, want := range map[string]string{
		"blog": "blog", "api.v2": "api.v2", "a/../b": "a_.._b", "..": "_..", "": "_", "é": "__",
	} {
		if got := dirName(in); got != want {
			t.Errorf("dirName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLimitsOfApp(t *testing.T) {
	rt := &Runtime{Dir: t.TempDir()}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	for _, tc := range []struct {
		name string
		lim  config.AppLimits
		cred *syscall.Credential
		want []proc.Rlimit
		err  string
	}{
		{name: "none"},
		{name: "all rlimits", cred: nobody,
			lim:  config.AppLimits{Memory: 256 << 20, OpenFiles: 100, Processes: 20, CPUTime: 90 * time.Second},
			want: []proc.Rlimit{{Resource: syscall.RLIMIT_AS, Value: 256 << 20}, {Resource: syscall.RLIMIT_NOFILE, Value: 100}, {Resource: proc.RlimitNproc, Value: 20}, {Resource: syscall.RLIMIT_CPU, Value: 90}}},
		{name: "processes for root", lim: config.AppLimits{Processes: 20}, cred: &syscall.Credential{},
			err: "limits.processes: the runners run as root"},
		{name: "above gw's hard limit", lim: config.AppLimits{OpenFiles: 1 << 62}, cred: nobody,
			err: "limits.open_files: 4611686018427387904 is above gw's own hard limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rt.limits(config.App{Name: "x", Limits: tc.lim}, tc.cred)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err = %v, want %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case tc.want == nil && got != nil:
				t.Errorf("limits for none = %+v, want nil (no helper)", got)
			case tc.want != nil && !reflect.DeepEqual(got.Rlimits, tc.want):
				t.Errorf("rlimits = %v, want %v", got.Rlimits, tc.want)
			}
		})
	}
}

func TestGoPluginLimitsRefused(t *testing.T) {
	rt := &Runtime{Dir: t.TempDir()}
	_, err := New(config.App{Name: "g", Lang: config.LangGo, Path: "/bin/true", Limits: config.AppLimits{OpenFiles: 100}},
		rt, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "not supported for Go plugins") {
		t.Errorf("err = %v", err)
	}
}

// TestCgroupUsageDuringStart: the stats endpoint reads an app's cgroup
// usage while another app's runners start and make the cgroup manager.
// CgroupUsage read rt.cg outside the Once that writes it: a data race
// (go test -race failed here).
func TestCgroupUsageDuringStart(t *testing.T) {
	rt := &Runtime{Dir: t.TempDir(), CgroupRoot: t.TempDir()}
	done := make(chan struct{})
	go func() { // ends by itself
		defer close(done)
		rt.cgroups()
	}()
	for range 1000 {
		if _, ok := rt.CgroupUsage("site"); ok {
			t.Fatal("usage of an app without a group")
		}
	}
	<-done
	if _, ok := rt.CgroupUsage("site"); ok {
		t.Fatal("usage of an app without a group")
	}
	if err := rt.RemoveCgroups(); err != nil {
		t.Fatal(err)
	}
}
