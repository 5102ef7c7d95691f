package pool

import (
	"net/http/httptest"
	"testing"
)

// TestConnChoice: an upgrade's slot comes from the runner with the fewest
// open connections, then the fewest busy, then the least recently used;
// an ordinary request's choice ignores connections.
func TestConnChoice(t *testing.T) {
	type runner struct {
		conns, busy int32
		lastUsed    uint64
	}
	tests := []struct {
		name    string
		conn    bool
		runners []runner
		want    int
	}{
		{"fewest conns", true, []runner{{3, 0, 5}, {1, 2, 1}, {2, 0, 9}}, 1},
		{"equal conns: fewest busy", true, []runner{{2, 1, 1}, {2, 0, 2}}, 1},
		{"equal conns and busy: least recently used", true, []runner{{2, 0, 7}, {2, 0, 3}}, 1},
		{"ordinary: fewest busy whatever the conns", false, []runner{{0, 1, 1}, {9, 0, 2}}, 1},
		{"ordinary: last used among equals", false, []runner{{0, 0, 7}, {5, 0, 3}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ms []*member
			for i, r := range tt.runners {
				m := &member{id: i}
				m.conns.Store(r.conns)
				m.busy.Store(r.busy)
				ms = append(ms, m)
			}
			q := queueOf(4, ms...)
			for i, r := range tt.runners {
				ms[i].lastUsed = r.lastUsed
			}
			s, ok := q.tryAcquire(tt.conn)
			if !ok || s.m.id != tt.want {
				t.Fatalf("got runner %v (ok %v), want %d", s.m.id, ok, tt.want)
			}
		})
	}
}

// TestServeConnSpreads: upgrades whose connections stay open once their
// slots are free land evenly on the runners (with Serve every one went to
// the runner used last, as its slots looked as free as the others'); a
// closed Conn no longer counts, so the next upgrades fill the gap.
func TestServeConnSpreads(t *testing.T) {
	l := &fakeLauncher{slots: 4, behave: ok}
	p := newPool(t, Options{Workers: 2, QueueSize: 8}, l)
	upgrade := func() *Conn {
		t.Helper()
		c := &Conn{}
		if err := p.ServeConn(httptest.NewRecorder(), httptest.NewRequest("GET", "/ws", nil), c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	perRunner := func() map[int]int {
		out := map[int]int{}
		for _, r := range p.Stats().Runners {
			out[r.ID] = r.Conns
		}
		return out
	}
	var open []*Conn
	for range 32 {
		open = append(open, upgrade())
	}
	if got := perRunner(); got[0] != 16 || got[1] != 16 {
		t.Fatalf("32 open connections over 2 runners: %v, want 16 each", got)
	}
	// Ordinary requests neither count nor move the counts.
	for range 10 {
		if err := serve(p, "/"); err != nil {
			t.Fatal(err)
		}
	}
	// End 8 of runner 0's: the next 8 upgrades all go there.
	closed := 0
	for _, c := range open {
		if closed < 8 && c.m.id == 0 {
			c.Close()
			c.Close() // twice is once
			closed++
		}
	}
	if got := perRunner(); got[0] != 8 || got[1] != 16 {
		t.Fatalf("after closing 8 of runner 0's: %v, want 8 and 16", got)
	}
	for range 8 {
		if c := upgrade(); c.m.id != 0 {
			t.Fatalf("upgrade went to runner %d with counts %v; want runner 0 (fewer open)", c.m.id, perRunner())
		}
	}
	// A refused upgrade: the caller closes at once, nothing stays counted.
	upgrade().Close()
	if got := perRunner(); got[0] != 16 || got[1] != 16 {
		t.Fatalf("after a refused upgrade: %v, want 16 each", got)
	}
}
