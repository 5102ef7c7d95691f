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
