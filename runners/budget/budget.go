// Package budget shares a cap on runner processes (max_runners) among the
// apps of one generation, by weight.
//
// A place is one runner an app may keep. An app holds at least its floor
// (min_workers; the config makes the floors fit the cap) and grows into
// free places while its requests wait. When the cap is reached and an app
// below its fair share waits, the app furthest above its share is asked
// to give one back (a reclaim): it retires an idle runner above its floor
// and releases the place, which goes to the neediest waiter. An app flooded
// with slow requests thus keeps what its weight entitles it to when others
// are quiet, and gives back down to its share when they need theirs.
//
// Fair share of app a among the apps that hold or want places:
//
//	share(a) = max(floor(a), cap × weight(a) / Σ weight)
//
// No peer has this: uWSGI's cheaper, php-fpm's pm.max_children and
// FrankenPHP's max_threads all cap one pool at a time.
package budget

import (
	"sort"
	"sync"
)

// Budget is one generation's cap on runners. Its methods are safe for
// concurrent use; each Share belongs to one pool.
type Budget struct {
	mu     sync.Mutex
	max    int // 0 = no cap
	held   int
	shares []*Share
}

// New makes a budget of max places (0 = no cap: every Acquire succeeds).
func New(max int) *Budget { return &Budget{max: max} }

// Share is one app's part of a Budget; it implements pool.Share.
type Share struct {
	b      *Budget
	name   string
	weight int
	floor  int

	// Under b.mu.
	held     int
	wants    int // Acquires that returned false and are not yet granted
	owed     int // reclaims sent and not yet answered by a Release
	grants   chan struct{}
	reclaims chan struct{}
}

// Join adds an app with its weight (at least 1) and floor.
func (b *Budget) Join(name string, weight, floor int) *Share {
	b.mu.Lock()
	defer b.mu.Unlock()
	// A grant is sent under b.mu and must not block: there are never more
	// grants outstanding than places.
	n := max(b.max, 1)
	s := &Share{b: b, name: name, weight: max(weight, 1), floor: floor,
		grants: make(chan struct{}, n), reclaims: make(chan struct{}, 1)}
	b.shares = append(b.shares, s)
	return s
}

// Leave removes a drained app's share (its places are all released) so
// it no longer counts among the contending apps or in Stats.
func (s *Share) Leave() {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held -= s.held
	s.held, s.wants, s.owed = 0, 0, 0
	for i, o := range b.shares {
		if o == s {
			b.shares = append(b.shares[:i], b.shares[i+1:]...)
			break
		}
	}
	for b.held < b.max || b.max == 0 {
		w := b.neediest()
		if w == nil {
			break
		}
		w.wants--
		w.held++
		b.held++
		w.grants <- struct{}{}
	}
}

// Grants receives once per place handed to the app while it waited.
func (s *Share) Grants() <-chan struct{} { return s.grants }

// Reclaims receives when the app should give a place back.
func (s *Share) Reclaims() <-chan struct{} { return s.reclaims }

// SetFloor changes the app's floor (gw ctl scale).
func (s *Share) SetFloor(n int) {
	s.b.mu.Lock()
	s.floor = n
	s.b.mu.Unlock()
}

// Acquire takes a place if one is free. Otherwise it records a want (each
// is granted at most once, through Grants) and, if the app is below its
// fair share, asks the app furthest above its own to give one back.
func (s *Share) Acquire() bool {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	// A floor is always granted, past the cap if it must be: the config
	// makes the floors fit, and the cap is passed only while a reloaded
	// app's new runners start beside its old ones (gw ctl reload APP).
	if b.max == 0 || b.held < b.max || s.held < s.floor {
		b.held++
		s.held++
		return true
	}
	s.wants++
	b.reclaimFor()
	return false
}

// signalReclaim wakes the pool to give a place back; one pending signal
// is enough, the next follows its Release.
func (s *Share) signalReclaim() {
	select {
	case s.reclaims <- struct{}{}:
	default:
	}
}

// Unwant drops the app's outstanding wants: its demand is met.
func (s *Share) Unwant() {
	s.b.mu.Lock()
	s.wants = 0
	s.b.mu.Unlock()
}

// Release gives a place back; it goes to the neediest waiting app.
func (s *Share) Release() {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.held == 0 {
		return // more releases than places: a caller's bug, not worth a crash
	}
	s.held--
	b.held--
	if s.owed > 0 {
		s.owed--
		if s.owed > 0 {
			// One signal stands for any number owed: send the next.
			s.signalReclaim()
		}
	}
	if w := b.neediest(); w != nil {
		w.wants--
		w.held++
		b.held++
		w.grants <- struct{}{}
	}
}

// active sums the weights of the apps that hold or want places: the apps
// that contend.
func (b *Budget) activeWeight() int {
	sum := 0
	for _, s := range b.shares {
		if s.held > 0 || s.wants > 0 {
			sum += s.weight
		}
	}
	return sum
}

// fair is s's fair share in hundredths of a place, so weights that do not
// divide the cap still compare exactly.
func (b *Budget) fair(s *Share, total int) int {
	if total == 0 {
		return s.floor * 100
	}
	return max(s.floor*100, b.max*100*s.weight/total)
}

// neediest is the waiting app that gets the next free place: below its
// floor first, then the one furthest below its fair share (by weight).
func (b *Budget) neediest() *Share {
	var best *Share
	total := b.activeWeight()
	for _, s := range b.shares {
		if s.wants == 0 {
			continue
		}
		if best == nil || need(b, s, total) > need(b, best, total) {
			best = s
		}
	}
	return best
}

// need ranks a waiter: how far below its fair share it is, with apps
// below their floor ahead of everyone.
func need(b *Budget, s *Share, total int) int {
	n := b.fair(s, total) - s.held*100
	if s.held < s.floor {
		n += 1 << 30
	}
	return n
}

// reclaimFor asks apps above their fair share to give places back, one per
// want of an app below its share that no earlier reclaim covers yet.
func (b *Budget) reclaimFor() {
	total := b.activeWeight()
	short := 0 // places owed to apps below their share
	for _, s := range b.shares {
		if s.wants > 0 && s.held*100 < b.fair(s, total) {
			short += min(s.wants, (b.fair(s, total)-s.held*100+99)/100)
		}
	}
	owed := 0
	for _, s := range b.shares {
		owed += s.owed
	}
	for ; owed < short; owed++ {
		v := b.victim(total)
		if v == nil {
			return
		}
		v.owed++
		v.signalReclaim()
	}
}

// victim is the app furthest above its fair share, counting the places it
// already owes, that can give one and stay at or above its share and its
// floor. Stopping there keeps places from moving back and forth when the
// cap does not divide evenly (5 places, weights 1:1: 3 and 2 stay put).
func (b *Budget) victim(total int) *Share {
	var best *Share
	over := func(s *Share) int { return (s.held-s.owed-1)*100 - b.fair(s, total) }
	for _, s := range b.shares {
		if s.held-s.owed <= s.floor || over(s) < 0 {
			continue
		}
		if best == nil || (over(s)+100)*best.weight > (over(best)+100)*s.weight {
			best = s
		}
	}
	return best
}

// AppStats is one app's part of the budget at a moment.
type AppStats struct {
	Name    string  `json:"name"`
	Weight  int     `json:"weight"`
	Floor   int     `json:"floor"`
	Held    int     `json:"held"`
	Share   float64 `json:"fair_share"`
	Waiting int     `json:"waiting"`
}

// Stats is the budget at a moment.
type Stats struct {
	Max  int        `json:"max_runners"` // 0 = no cap
	Held int        `json:"held"`
	Apps []AppStats `json:"apps"`
}

// Stats reads the budget.
func (b *Budget) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	total := b.activeWeight()
	st := Stats{Max: b.max, Held: b.held}
	for _, s := range b.shares {
		a := AppStats{Name: s.name, Weight: s.weight, Floor: s.floor, Held: s.held, Waiting: s.wants}
		if b.max > 0 {
			a.Share = float64(b.fair(s, total)) / 100
		}
		st.Apps = append(st.Apps, a)
	}
	sort.Slice(st.Apps, func(i, j int) bool { return st.Apps[i].Name < st.Apps[j].Name })
	return st
}
