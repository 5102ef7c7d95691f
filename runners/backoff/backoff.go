// Package backoff is the restart delay gw uses wherever it replaces a
// process that keeps failing: a pool's runners and attached daemons.
package backoff

import "time"

// Backoff decides how long to wait before the n-th consecutive attempt to
// replace a process that keeps failing: exponential from Base, capped at Max.
type Backoff struct {
	Base time.Duration // first retry delay (default 100ms)
	Max  time.Duration // cap (default 10s)
	// Stable is how long a process must have lived for its exit not to
	// count as a crash at start (default 5s).
	Stable time.Duration
}

// Delay returns the wait before attempt n (1-based). The first replacement
// of a process that ran fine (n <= 0) is immediate.
func (b Backoff) Delay(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	base, limit := b.Base, b.MaxDelay()
	if base <= 0 {
		base = 100 * time.Millisecond
	}
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// StableAfter is Stable or its default.
func (b Backoff) StableAfter() time.Duration {
	if b.Stable <= 0 {
		return 5 * time.Second
	}
	return b.Stable
}

// MaxDelay is Max or its default.
func (b Backoff) MaxDelay() time.Duration {
	if b.Max <= 0 {
		return 10 * time.Second
	}
	return b.Max
}
