package budget

import (
	"sync"
	"testing"
)

// got drains what s was sent: grants and whether a reclaim is pending.
func got(s *Share) (grants int, reclaim bool) {
	for {
		select {
		case <-s.grants:
			grants++
		case <-s.reclaims:
			reclaim = true
		default:
			return grants, reclaim
		}
	}
}

func acquireN(t *testing.T, s *Share, n int) {
	t.Helper()
	for i := range n {
		if !s.Acquire() {
			t.Fatalf("%s: Acquire %d of %d refused", s.name, i+1, n)
		}
	}
}

func TestNoCap(t *testing.T) {
	b := New(0)
	a := b.Join("a", 1, 0)
	acquireN(t, a, 100)
	if st := b.Stats(); st.Held != 100 || st.Apps[0].Held != 100 {
		t.Fatalf("stats %+v", st)
	}
}

// TestReclaimToFairShare: one app holds the whole cap; a second app that
// starts waiting gets places back, one reclaim per want, up to its share
// and not beyond.
func TestReclaimToFairShare(t *testing.T) {
	tests := []struct {
		name             string
		wa, wb           int // weights
		floorA, floorB   int
		max              int
		wantB            int // places b ends with after asking for max
		reclaimsExpected int
	}{
		{name: "1:1", wa: 1, wb: 1, max: 4, wantB: 2},
		{name: "3:1", wa: 3, wb: 1, max: 4, wantB: 1},
		{name: "1:3", wa: 1, wb: 3, max: 4, wantB: 3},
		{name: "floor of a holds", wa: 1, wb: 3, floorA: 2, max: 4, wantB: 2},
		{name: "floor of b beats weight", wa: 10, wb: 1, floorB: 2, max: 4, wantB: 2},
		{name: "odd cap", wa: 1, wb: 1, max: 5, wantB: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bud := New(tc.max)
			a := bud.Join("a", tc.wa, tc.floorA)
			b := bud.Join("b", tc.wb, tc.floorB)
			acquireN(t, b, tc.floorB) // floors are taken at start
			acquireN(t, a, tc.max-tc.floorB)
			// b asks for one place at a time, as a pool does while its
			// requests wait; a answers each reclaim with a Release.
			for range tc.max {
				if b.Acquire() {
					continue
				}
				_, reclaim := got(a)
				if !reclaim {
					break // b is at its share: it waits, nobody is asked
				}
				a.Release()
				if g, _ := got(b); g != 1 {
					t.Fatalf("b got %d grants after a's release, want 1", g)
				}
			}
			st := bud.Stats()
			if b.held != tc.wantB || st.Held != tc.max {
				t.Fatalf("b holds %d (want %d); held %d of %d; stats %+v", b.held, tc.wantB, st.Held, tc.max, st)
			}
			if a.held < tc.floorA {
				t.Fatalf("a holds %d, below its floor %d", a.held, tc.floorA)
			}
		})
	}
}

// TestReleaseGoesToNeediest: a freed place goes to the waiter furthest
// below its fair share, by weight.
func TestReleaseGoesToNeediest(t *testing.T) {
	bud := New(4)
	a := bud.Join("a", 1, 0)
	b := bud.Join("b", 1, 0)
	c := bud.Join("c", 3, 0)
	acquireN(t, a, 3)
	acquireN(t, b, 1)
	if b.Acquire() || c.Acquire() {
		t.Fatal("Acquire succeeded past the cap")
	}
	// Shares: a and b 0.8, c 2.4. c is furthest below.
	a.Release()
	if g, _ := got(c); g != 1 {
		t.Fatalf("c (weight 3, no place) got %d grants, want the freed place", g)
	}
	if g, _ := got(b); g != 0 {
		t.Fatalf("b got %d grants, want 0", g)
	}
	c.Acquire()
	a.Release()
	if g, _ := got(c); g != 1 {
		t.Fatalf("c got %d grants after the second release, want 1 (still furthest below)", g)
	}
}

// TestUnwant: an app whose demand is met gets no more grants; a freed
// place stays free.
func TestUnwant(t *testing.T) {
	bud := New(2)
	a := bud.Join("a", 1, 0)
	b := bud.Join("b", 1, 0)
	acquireN(t, a, 2)
	if b.Acquire() {
		t.Fatal("Acquire past the cap")
	}
	b.Unwant()
	a.Release()
	if g, _ := got(b); g != 0 {
		t.Fatalf("b got %d grants after Unwant", g)
	}
	if !b.Acquire() {
		t.Fatal("the freed place was not free")
	}
}

// TestReclaimResignals: a pool owing two places gets a second signal after
// its first Release (one pending signal stands for any number owed).
func TestReclaimResignals(t *testing.T) {
	bud := New(4)
	a := bud.Join("a", 1, 0)
	b := bud.Join("b", 1, 0)
	acquireN(t, a, 4)
	b.Acquire()
	b.Acquire()
	if _, r := got(a); !r {
		t.Fatal("no reclaim")
	}
	a.Release()
	if _, r := got(a); !r {
		t.Fatal("no second reclaim while a still owes one")
	}
	a.Release()
	if g, _ := got(b); g != 2 {
		t.Fatalf("b got %d grants, want 2", g)
	}
	if _, r := got(a); r {
		t.Fatal("reclaim signalled though nothing is owed")
	}
}

// TestConcurrentNeverOverCap hammers the budget from many goroutines:
// places held never pass the cap and every grant is a held place.
func TestConcurrentNeverOverCap(t *testing.T) {
	const max = 6
	bud := New(max)
	var wg sync.WaitGroup
	for i := range 4 {
		s := bud.Join(string(rune('a'+i)), i+1, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := 0
			for range 2000 {
				if s.Acquire() {
					mine++
				}
				g, r := got(s)
				mine += g
				if (r || mine > 2) && mine > 0 {
					s.Release()
					mine--
				}
				bud.mu.Lock()
				over := bud.held > max
				bud.mu.Unlock()
				if over {
					t.Error("held past the cap")
					return
				}
			}
			s.Unwant()
			g, _ := got(s)
			for range mine + g {
				s.Release()
			}
		}()
	}
	wg.Wait()
	if st := bud.Stats(); st.Held < 0 || st.Held > max {
		t.Fatalf("held %d at the end", st.Held)
	}
}

// TestFloorAlwaysGranted: an app below its floor gets a place even at the
// cap (a reloaded app's new runners start beside its old ones); Leave
// takes the old share's places away and hands them to waiters.
func TestFloorAlwaysGranted(t *testing.T) {
	bud := New(2)
	old := bud.Join("app", 1, 2)
	acquireN(t, old, 2)
	other := bud.Join("other", 1, 0)
	if other.Acquire() {
		t.Fatal("other got a place past the cap")
	}
	neu := bud.Join("app", 1, 2)
	acquireN(t, neu, 2)
	if st := bud.Stats(); st.Held != 4 {
		t.Fatalf("held %d, want 4 (two floors)", st.Held)
	}
	old.Leave()
	if st := bud.Stats(); st.Held != 2 || len(st.Apps) != 2 {
		t.Fatalf("after Leave: %+v", st)
	}
	if g, _ := got(other); g != 0 {
		t.Fatalf("other got %d grants while the cap is full", g)
	}
	if neu.Acquire() {
		t.Fatal("a place above the floor past the cap")
	}
}
