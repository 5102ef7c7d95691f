package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// TestDeadlineAndSlowlog: past slow_after the runner's stacks reach the log
// (naming the app's own file); past the timeout the client gets 504 in
// about the timeout, and the app is back to full strength with a fresh
// runner.
func TestDeadlineAndSlowlog(t *testing.T) {
	stackMark := map[string]string{
		"python": "most recent call first", // faulthandler
		"perl":   "gw_psgi: slow request, stack",
		"ruby":   "gw_rack: thread",
	}
	for _, ls := range suites {
		t.Run(ls.lang, func(t *testing.T) {
			s := gwtest.Start(t, "--interpreter", ls.interp(t), "--workers", "2", "--timeout", "1s",
				"--slow-after", "300ms", suitePath(ls.app))
			before := s.Children()
			start := time.Now()
			code, body := gwtest.Get(t, s.URL+"/sleep?5")
			took := time.Since(start)
			if code != 504 {
				t.Fatalf("status %d %q, want 504", code, body)
			}
			if took < 900*time.Millisecond || took > 3*time.Second {
				t.Errorf("504 after %v, want about 1s", took)
			}
			for _, want := range []string{stackMark[ls.lang], "suite.", "slow request"} {
				if !strings.Contains(s.Log(), want) {
					t.Errorf("log lacks %q:\n%s", want, s.Log())
				}
			}
			// Back to full strength: two runners, the stuck one replaced.
			deadline := time.Now().Add(10 * time.Second)
			for {
				kids := s.Children()
				if len(kids) == 2 && !(containsPID(kids, before[0]) && containsPID(kids, before[1])) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("runners %v (before %v): the stuck runner was not replaced", kids, before)
				}
				time.Sleep(50 * time.Millisecond)
			}
			for range 4 {
				if code, _ := gwtest.Get(t, s.URL+"/pid"); code != 200 {
					t.Fatalf("after the deadline: %d", code)
				}
			}
			if !strings.Contains(s.Log(), "reason=deadline") {
				t.Errorf("exit reason not logged:\n%s", s.Log())
			}
		})
	}
}
