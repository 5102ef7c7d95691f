package pool

import "context"

// A runner's number is uWSGI's worker id: a small number, 1 and up, that
// its replacement (a recycle, a reload, a restart) inherits; a new place
// takes the lowest number no runner or launch holds. Apps use it to do a
// thing in one runner only (`uwsgi.worker_id() == 1`), so the numbers of
// a full pool are 1..Workers. While a replacement starts beside the runner
// it replaces, both hold the number. The launch-order id stays what logs
// and metrics name.

type numberKey struct{}

// Number is the runner number a launch's ctx carries (0: none; a Launcher
// called outside a Pool).
func Number(ctx context.Context) int {
	n, _ := ctx.Value(numberKey{}).(int)
	return n
}

func withNumber(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, numberKey{}, n)
}

// numbers counts the holders of each runner number. The owner's alone
// (Start's before the owner runs).
type numbers map[int]int

// take returns the lowest number nobody holds, and holds it.
func (ns numbers) take() int {
	n := 1
	for ns[n] > 0 {
		n++
	}
	ns[n]++
	return n
}

// share holds n once more: a replacement inherits it.
func (ns numbers) share(n int) int {
	ns[n]++
	return n
}

func (ns numbers) release(n int) {
	if ns[n]--; ns[n] <= 0 {
		delete(ns, n)
	}
}
