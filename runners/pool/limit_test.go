package pool

import (
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
