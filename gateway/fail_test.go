package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"

	"github.com/gwhq/gw/bridge"
	"github.com/gwhq/gw/runners/pool"
)

// TestFailStatus pins fail's answer to each kind of failed request, errors
// shaped as the pool returns them. A runner gone keeps its cause in the
// chain (runners.poolError): whatever that cause, even one that alone would
// mean the client left or stalled, the answer is the runner's 502.
func TestFailStatus(t *testing.T) {
	// gone is a runner's failure as the pool hands it on.
	gone := func(cause error) error {
		return fmt.Errorf("%w: %w", pool.ErrWorkerGone, fmt.Errorf("%w: %w", bridge.ErrRunnerGone, cause))
	}
	notDelivered := fmt.Errorf("%w: %w: %w", pool.ErrWorkerGone, pool.ErrNotDelivered,
		fmt.Errorf("%w: %w: write head: %w", bridge.ErrRunnerGone, bridge.ErrNotDelivered, syscall.EPIPE))
	tests := []struct {
		name       string
		err        error
		clientGone bool  // the request's context is canceled
		sentinel   error // in err's chain
		cause      error // in err's chain too
		want       int   // 0: nothing written (nobody to answer)
	}{
		{"runner died mid-response", gone(io.EOF), false, pool.ErrWorkerGone, io.EOF, 502},
		{"runner died, client left too", gone(context.Canceled), true, pool.ErrWorkerGone, context.Canceled, 502},
		{"runner's pipe timed out", gone(os.ErrDeadlineExceeded), false, bridge.ErrRunnerGone, os.ErrDeadlineExceeded, 502},
		{"runner reset", gone(&net.OpError{Op: "read", Err: syscall.ECONNRESET}), false, pool.ErrWorkerGone, syscall.ECONNRESET, 502},
		{"runner gone before the request", notDelivered, false, pool.ErrNotDelivered, syscall.EPIPE, 502},
		{"protocol violation", fmt.Errorf("%w: %w", pool.ErrWorkerGone, errors.New("bridge: second RESPONSE_HEAD")), false, pool.ErrWorkerGone, pool.ErrWorkerGone, 502},
		{"client body cut", &pool.BodyError{Err: io.ErrUnexpectedEOF}, false, io.ErrUnexpectedEOF, io.ErrUnexpectedEOF, 0},
		{"client body stalled", &pool.BodyError{Err: os.ErrDeadlineExceeded}, false, os.ErrDeadlineExceeded, os.ErrDeadlineExceeded, 408},
		{"body too large", fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 1}), false, nil, nil, 413},
		{"deadline", pool.ErrTimeout, false, pool.ErrTimeout, pool.ErrTimeout, 504},
		{"queue full", pool.ErrQueueFull, false, pool.ErrQueueFull, pool.ErrQueueFull, 503},
		{"app error", &pool.AppError{Msg: "boom"}, false, nil, nil, 500},
		{"client left while queued", context.Canceled, true, context.Canceled, context.Canceled, 0},
	}
	g := &Gateway{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rt := &route{name: "app"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.sentinel != nil && (!errors.Is(tc.err, tc.sentinel) || !errors.Is(tc.err, tc.cause)) {
				t.Fatalf("%v: want %v and %v in its chain", tc.err, tc.sentinel, tc.cause)
			}
			r := httptest.NewRequest("GET", "/", nil)
			if tc.clientGone {
				ctx, cancel := context.WithCancel(r.Context())
				cancel()
				r = r.WithContext(ctx)
			}
			rec := httptest.NewRecorder()
			sw := &statusWriter{ResponseWriter: rec}
			g.fail(sw, r, rt, tc.err)
			got := 0
			if sw.wrote {
				got = rec.Code
			}
			if got != tc.want {
				t.Errorf("%v: status %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}
