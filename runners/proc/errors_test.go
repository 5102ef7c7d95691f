package proc

import (
	"syscall"
	"testing"
)

func TestKilledAtStart(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		want bool
	}{
		{0, false},               // exited by itself: the app's doing
		{syscall.SIGSEGV, false}, // crashed at import: the app's doing
		{syscall.SIGABRT, false}, // aborted: the app's doing
		{syscall.SIGKILL, true},  // an operator or the OOM killer
		{syscall.SIGTERM, true},  // a stop
		{syscall.SIGINT, true},
	} {
		if got := (&SpawnError{Signal: tc.sig}).KilledAtStart(); got != tc.want {
			t.Errorf("signal %v: KilledAtStart %v, want %v", tc.sig, got, tc.want)
		}
	}
}
