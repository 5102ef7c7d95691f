package pool

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// numberLauncher records the runner number each launch's ctx carried.
type numberLauncher struct {
	fakeLauncher
	mu    sync.Mutex
	byPID map[int]int
}

func (l *numberLauncher) Launch(ctx context.Context, id int) (Worker, error) {
	w, err := l.fakeLauncher.Launch(ctx, id)
	if err == nil {
		l.mu.Lock()
		l.byPID[w.PID()] = Number(ctx)
		l.mu.Unlock()
	}
	return w, err
}

// live is the numbers of the pool's live runners, sorted.
func (l *numberLauncher) live(p *Pool) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ns []int
	for _, pid := range p.PIDs() {
		ns = append(ns, l.byPID[pid])
	}
	slices.Sort(ns)
	return ns
}

// TestNumbersAreSlots: runner numbers are 1..Workers; a crashed runner's
// respawn and a restarted runner's replacement take its number, so
// "worker 1" always exists (uwsgi.worker_id()).
func TestNumbersAreSlots(t *testing.T) {
	l := &numberLauncher{fakeLauncher: fakeLauncher{behave: ok}, byPID: map[int]int{}}
	p := startPool(t, Options{Workers: 3, QueueWait: time.Second,
		Backoff: Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}}, l)
	want := []int{1, 2, 3}
	if got := l.live(p); !slices.Equal(got, want) {
		t.Fatalf("numbers at start: %v, want %v", got, want)
	}
	for _, w := range l.workers() {
		if l.byPID[w.pid] == 1 {
			w.Kill() // a crash
		}
	}
	waitFor(t, "respawn", func() bool { return len(l.workers()) == 4 && len(p.PIDs()) == 3 })
	if got := l.live(p); !slices.Equal(got, want) {
		t.Fatalf("numbers after a crash: %v, want %v", got, want)
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restarted", func() bool { return p.Exits()[ReasonRestart] == 3 && len(p.PIDs()) == 3 })
	if got := l.live(p); !slices.Equal(got, want) {
		t.Fatalf("numbers after a restart: %v, want %v", got, want)
	}
	if n := Number(context.Background()); n != 0 {
		t.Errorf("Number outside a pool = %d, want 0", n)
	}
}
