package pool

import "github.com/gwhq/gw/runners/backoff"

// Backoff is the respawn delay of a pool's runners; it lives in
// runners/backoff, shared with attached daemons.
type Backoff = backoff.Backoff
