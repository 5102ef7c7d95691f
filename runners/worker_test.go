package runners

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/bridge"
	"github.com/gwhq/gw/runners/pool"
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

// TestPoolError: how a bridge exchange's failure reaches the pool. A runner
// gone keeps the bridge's sentinel and its cause in the chain under the
// pool's (the log shows why; errors.Is sees it); the app's and the client's
// failures become the pool's types, which the gateway maps to 500 and to
// 4xx or silence.
func TestPoolError(t *testing.T) {
	gone := func(cause error) error { return fmt.Errorf("%w: %w", bridge.ErrRunnerGone, cause) }
	tests := []struct {
		name string
		err  error
		is   []error // all in the chain
		not  []error // none in the chain
	}{
		{"not delivered", fmt.Errorf("%w: %w: write head: %w", bridge.ErrRunnerGone, bridge.ErrNotDelivered, syscall.EPIPE),
			[]error{pool.ErrWorkerGone, pool.ErrNotDelivered, bridge.ErrRunnerGone, syscall.EPIPE}, nil},
		{"died mid-response", gone(io.ErrUnexpectedEOF),
			[]error{pool.ErrWorkerGone, bridge.ErrRunnerGone, io.ErrUnexpectedEOF}, []error{pool.ErrNotDelivered}},
		{"canceled inside", gone(context.Canceled),
			[]error{pool.ErrWorkerGone, bridge.ErrRunnerGone, context.Canceled}, []error{pool.ErrNotDelivered}},
		{"protocol violation", errors.New("bridge: second RESPONSE_HEAD"), []error{pool.ErrWorkerGone}, []error{pool.ErrNotDelivered}},
		{"client body", &bridge.BodyError{Err: io.ErrUnexpectedEOF}, []error{io.ErrUnexpectedEOF}, []error{pool.ErrWorkerGone}},
		{"app error", &bridge.AppError{Msg: "boom"}, nil, []error{pool.ErrWorkerGone}},
	}
	for _, tc := range tests {
		got := poolError(tc.err)
		for _, e := range tc.is {
			if !errors.Is(got, e) {
				t.Errorf("%s: %v: %v not in the chain", tc.name, got, e)
			}
		}
		for _, e := range tc.not {
			if errors.Is(got, e) {
				t.Errorf("%s: %v: %v in the chain", tc.name, got, e)
			}
		}
	}
	var be *pool.BodyError
	if !errors.As(poolError(&bridge.BodyError{Err: io.EOF}), &be) {
		t.Error("a client body's failure is not a *pool.BodyError")
	}
	var ae *pool.AppError
	if !errors.As(poolError(&bridge.AppError{Msg: "boom"}), &ae) || ae.Msg != "boom" {
		t.Errorf("app error: %v, want *pool.AppError boom", ae)
	}
	if poolError(nil) != nil {
		t.Error("poolError(nil) is not nil")
	}
}
