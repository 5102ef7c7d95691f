// Package reqinfo carries what the gateway learns about a request from the
// layers that serve it. The pool's callers see only an error, and its
// Serve keeps the http.Handler shape every front end shares, so the facts
// travel back in a small struct the gateway puts in the request context
// and the pool fills in.
package reqinfo

import (
	"context"
	"time"
)

// Timing is where one request spent its time. The zero Timing is a request
// that never reached a runner (a 404, a static file, a full queue).
type Timing struct {
	QueueWait time.Duration // waiting for a free runner slot
	AppTime   time.Duration // in the runner
	PID       int           // the runner that served it; 0 = none
	Vars      []string      // fields the app set for the log (uwsgi.set_logvar): name, value, ...
}

type timingKey struct{}

// WithTiming returns ctx carrying t, for the pool to fill in.
func WithTiming(ctx context.Context, t *Timing) context.Context {
	return context.WithValue(ctx, timingKey{}, t)
}

// TimingFrom returns the Timing ctx carries, or nil when nobody asked (the
// access log is off).
func TimingFrom(ctx context.Context) *Timing {
	t, _ := ctx.Value(timingKey{}).(*Timing)
	return t
}
