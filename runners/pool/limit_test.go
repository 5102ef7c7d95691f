package pool

import (
	"os"
	"testing"
	"time"
)

// TestLimitExitReasons: a runner that dies on its own is counted by the
// limit it says ended it, else as a crash, and is respawned either way.
func TestLimitExitReasons(t *testing.T) {
	for _, tc := range []struct {
		limit string
		want  Reason
	}{
		{"", ReasonCrash},
		{"memory", ReasonMemory},
		{"cpu_time", ReasonCPUTime},
		{"memory_max", ReasonMemoryMax},
		{"something_else", ReasonCrash}, // unknown names are not invented reasons
	} {
		t.Run(string(tc.want)+"/"+tc.limit, func(t *testing.T) {
			l := &fakeLauncher{behave: ok}
			p := newPool(t, Options{Workers: 1, QueueWait: time.Minute,
				Backoff: Backoff{Base: 5 * time.Millisecond, Max: 5 * time.Millisecond}}, l)
			w := l.workers()[0]
			w.limit = tc.limit
			w.Kill()
			waitFor(t, "respawn", func() bool { return len(l.workers()) == 2 && len(p.PIDs()) == 1 })
			if got := p.Exits(); got[tc.want] != 1 || len(got) != 1 {
				t.Errorf("exits %v, want one %s", got, tc.want)
			}
			if err := serve(p, ""); err != nil {
				t.Errorf("after the respawn: %v", err)
			}
		})
	}
}

func TestProcCPU(t *testing.T) {
	// Burn some CPU in this process, then read it back.
	start := time.Now()
	x := 0
	for time.Since(start) < 300*time.Millisecond {
		x++
	}
	got := procCPU(os.Getpid())
	if got < 0.1 || got > 3600 {
		t.Errorf("procCPU = %v s after 300ms of spinning (x=%d)", got, x)
	}
	if procCPU(-1) != 0 {
		t.Errorf("procCPU of no process is not 0")
	}
}

// TestCPUTotalKeepsExited: an app's CPU figure keeps what its exited
// runners used (their rusage), also in the next generation's pool, and
// never falls: a counter.
func TestCPUTotalKeepsExited(t *testing.T) {
	total := &CPUTotal{}
	opts := Options{Workers: 1, QueueWait: time.Minute, CPU: total,
		Backoff: Backoff{Base: 5 * time.Millisecond, Max: 5 * time.Millisecond}}
	l := &fakeLauncher{behave: ok}
	p := newPool(t, opts, l)
	w := l.workers()[0]
	w.cpu = 1.5
	w.Kill()
	waitFor(t, "respawn", func() bool { return len(l.workers()) == 2 && len(p.PIDs()) == 1 })
	first := p.Stats().CPU
	if first < 1.5 {
		t.Errorf("CPU after a runner with 1.5s exited = %v", first)
	}
	// A reload's new pool for the app shares the total.
	l2 := &fakeLauncher{behave: ok}
	p2 := newPool(t, opts, l2)
	w2 := l2.workers()[0]
	w2.cpu = 2
	w2.Kill()
	waitFor(t, "respawn", func() bool { return len(l2.workers()) == 2 && len(p2.PIDs()) == 1 })
	if got := p2.Stats().CPU; got < first+2 {
		t.Errorf("next generation's CPU = %v, want at least %v", got, first+2)
	}
	if got := total.total(0); got < first+2 {
		t.Errorf("total fell to %v", got)
	}
}
