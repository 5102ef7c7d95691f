package pool

import "testing"

func queueOf(slotsPer int, members ...*member) *slotQueue {
	q := &slotQueue{kick: make(chan struct{}, 1)}
	for _, m := range members {
		for i := range slotsPer {
			q.release(slotRef{m, i})
		}
	}
	return q
}

// TestSlotChoiceSpreads: requests in flight spread over runners with many
// slots (fewest busy first), where one stack of free slots put them all on
// the runner released last.
func TestSlotChoiceSpreads(t *testing.T) {
	a, b := &member{id: 0}, &member{id: 1}
	q := queueOf(4, a, b)
	per := map[int]int{}
	for range 4 {
		s, ok := q.tryAcquire(false)
		if !ok {
			t.Fatal("no free slot")
		}
		per[s.m.id]++
	}
	if per[0] != 2 || per[1] != 2 {
		t.Fatalf("4 requests in flight over 2 runners of 4 slots: %v, want 2 each", per)
	}
}

// TestSlotChoiceReusesLast: one request at a time over single-slot runners
// keeps going to the same runner, so the others go idle (worker_idle
// retires them); a gone runner's slots are never handed out.
func TestSlotChoiceReusesLast(t *testing.T) {
	ms := []*member{{id: 0}, {id: 1}, {id: 2}}
	q := queueOf(1, ms...)
	first, _ := q.tryAcquire(false)
	q.unbusy(first.m)
	q.release(first)
	for range 5 {
		s, _ := q.tryAcquire(false)
		if s.m != first.m {
			t.Fatalf("runner %d taken after runner %d went idle; want the last used again", s.m.id, first.m.id)
		}
		q.unbusy(s.m)
		q.release(s)
	}
	q.markGone(first.m)
	for range 2 {
		s, ok := q.tryAcquire(false)
		if !ok || s.m == first.m {
			t.Fatalf("got %v %v: want a live runner's slot", s.m, ok)
		}
	}
	if _, ok := q.tryAcquire(false); ok {
		t.Fatal("a third slot from two live single-slot runners")
	}
}
