package proc

import (
	"log/slog"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets this test binary serve as the pre-exec helper, as gw's
// binary does (os.Executable is the test binary here).
func TestMain(m *testing.M) {
	HelperMain()
	os.Exit(m.Run())
}

// run starts spec and returns its output once it exited.
func run(t *testing.T, spec Spec) (*Process, string) {
	t.Helper()
	var out lockedBuffer
	p, err := Start(spec, Files{}, slog.New(slog.NewTextHandler(&out, nil)))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		p.Kill()
		t.Fatal("process did not exit")
	}
	return p, out.String()
}

func TestLimitsApplied(t *testing.T) {
	lim := &Limits{Rlimits: []Rlimit{
		{syscall.RLIMIT_AS, 1 << 30}, {syscall.RLIMIT_NOFILE, 64}, {syscall.RLIMIT_CPU, 7}, {RlimitNproc, 4000},
	}}
	// A bare name: the helper must get it looked up as exec.Command would.
	p, out := run(t, Spec{Path: "cat", Args: []string{"/proc/self/limits"}, Env: os.Environ(), Limits: lim})
	if p.ExitCode() != 0 {
		t.Fatalf("%s: %s", p.ExitString(), out)
	}
	for _, want := range []string{
		`Max cpu time +7 +8 +seconds`,
		`Max processes +4000 +4000 `,
		`Max open files +64 +64 `,
		`Max address space +1073741824 +1073741824 `,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("no %q in the runner's limits:\n%s", want, out)
		}
	}
}

func TestLimitsNoneLeavesSpecAlone(t *testing.T) {
	// Without limits nothing is wrapped: the process is the command itself.
	p, out := run(t, Spec{Path: "/bin/sh", Args: []string{"-c", "cat /proc/$$/cmdline | tr '\\0' ' '"}, Env: os.Environ()})
	if p.ExitCode() != 0 || strings.Contains(out, helperArg) || !strings.Contains(out, "/bin/sh -c") {
		t.Errorf("exit %s, cmdline %s", p.ExitString(), out)
	}
}

func TestLimitsHelperFailureIsReported(t *testing.T) {
	lim := &Limits{Cgroups: []string{"/nonexistent/cgroup.procs"}}
	p, _ := run(t, Spec{Path: "/bin/true", Env: os.Environ(), Limits: lim})
	if p.ExitCode() != 126 || !strings.Contains(p.Tail(), "joining cgroup") {
		t.Errorf("exit %s, tail %q; want 126 and the cgroup named", p.ExitString(), p.Tail())
	}
}

func TestLimitHitCPUTime(t *testing.T) {
	lim := &Limits{Rlimits: []Rlimit{{syscall.RLIMIT_CPU, 1}}}
	p, _ := run(t, Spec{Path: "/bin/sh", Args: []string{"-c", "while :; do :; done"}, Env: os.Environ(), Limits: lim})
	if got := p.LimitHit(); got != LimitCPUTime {
		t.Errorf("LimitHit = %q after %s, want %q", got, p.ExitString(), LimitCPUTime)
	}
	// The same death without the limit is no limit's.
	q, _ := run(t, Spec{Path: "/bin/sh", Args: []string{"-c", "kill -XCPU $$"}, Env: os.Environ()})
	if got := q.LimitHit(); got != "" {
		t.Errorf("LimitHit without limits = %q", got)
	}
}

// BenchmarkStart is what the pre-exec helper adds to a runner's start:
// /bin/true started and waited for, without and with limits.
func BenchmarkStart(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	for _, bc := range []struct {
		name string
		lim  *Limits
	}{{"plain", nil}, {"limits", &Limits{Rlimits: []Rlimit{{Resource: syscall.RLIMIT_NOFILE, Value: 1024}}}}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				p, err := Start(Spec{Path: "/bin/true", Env: os.Environ(), Limits: bc.lim}, Files{}, log)
				if err != nil {
					b.Fatal(err)
				}
				<-p.Done()
			}
		})
	}
}
