package runners

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/gwhq/gw/runners/proc"
)

// TestLaunchStages: a runner that fails to start says which stage failed.
// The "runners" here are shell one-liners: real processes, real fds.
func TestLaunchStages(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		script string
		stage  proc.Stage
		detail string
	}{
		{"exec", "/nonexistent/interpreter", "", proc.StageExec, ""},
		{"exits before ready", "/bin/sh", "echo 'boom: cannot import' >&2; exit 4", proc.StageLoad, "boom: cannot import"},
		{"garbage handshake", "/bin/sh", "printf 'HTTP/1.1 200 OK\\r\\n\\r\\n' >&3; sleep 5", proc.StageHandshake, ""},
		{"ready timeout", "/bin/sh", "sleep 5", proc.StageReadyTimeout, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &bridgeLauncher{
				app:          "t",
				spec:         proc.Spec{Path: tc.path, Args: []string{"-c", tc.script, "sh"}, Env: os.Environ()},
				threads:      1,
				readyTimeout: 300 * time.Millisecond,
				pingEvery:    time.Second,
				pingTimeout:  time.Second,
				log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
			start := time.Now()
			_, err := l.Launch(context.Background(), 3)
			var se *proc.SpawnError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *proc.SpawnError", err)
			}
			if se.Stage != tc.stage || se.App != "t" || se.Worker != 3 {
				t.Errorf("stage %q app %q worker %d, want %q t 3 (%v)", se.Stage, se.App, se.Worker, tc.stage, err)
			}
			if tc.detail != "" && se.Detail != tc.detail {
				t.Errorf("detail %q, want %q", se.Detail, tc.detail)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("launch failure took %v: the runner was not killed promptly", d)
			}
		})
	}
}
