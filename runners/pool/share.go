package pool

// Share is this pool's part of a runner budget shared with other apps
// (max_runners). A place is one runner the pool may keep; a runner that
// replaces another (recycle, respawn after a crash) takes its
// predecessor's place, so only growing and shrinking touch the budget.
type Share interface {
	// Acquire takes a place now, or returns false: the pool is then
	// waiting, and Grants delivers each place handed to it later.
	Acquire() bool
	// Grants receives once per place granted while waiting.
	Grants() <-chan struct{}
	// Unwant says the pool no longer waits for a place.
	Unwant()
	// Release gives one place back.
	Release()
	// Reclaims receives when the pool holds more than its fair share and
	// another pool waits: retire one idle runner above the floor (now, or
	// as soon as one becomes idle) and Release its place.
	Reclaims() <-chan struct{}
}

// unlimited is the Share of a pool with no budget: every place is free.
type unlimited struct{}

func (unlimited) Acquire() bool             { return true }
func (unlimited) Grants() <-chan struct{}   { return nil }
func (unlimited) Unwant()                   {}
func (unlimited) Release()                  {}
func (unlimited) Reclaims() <-chan struct{} { return nil }
