package pool

import (
	"slices"
	"sync"
	"time"
)

// RunnerStats is one runner's state at a moment.
type RunnerStats struct {
	ID         int       `json:"id"`
	PID        int       `json:"pid"`
	State      string    `json:"state"` // idle, busy, draining
	Requests   int64     `json:"requests"`
	Busy       int       `json:"busy_slots"`
	Conns      int       `json:"open_conns"` // connections left open by upgrades (ServeConn)
	Slots      int       `json:"slots"`
	RequestAge float64   `json:"request_age_ms"` // the oldest request it is serving now
	RSS        int64     `json:"rss_bytes"`
	CPU        float64   `json:"cpu_s"` // user+system CPU seconds, its reaped children's too
	Started    time.Time `json:"started"`
}

// Runner states, as Stats reports them. A runner is starting until it is
// ready, idle or busy while it takes requests, draining once it takes no
// more (retiring: finishing its requests); its exit is counted by Reason.
const (
	StateStarting = "starting"
	StateIdle     = "idle"
	StateBusy     = "busy"
	StateDraining = "draining"
)

// Stats is a pool's state at a moment.
type Stats struct {
	Workers    int            `json:"workers"` // the ceiling
	Min        int            `json:"min_workers"`
	Max        int            `json:"max_workers"` // = Workers
	Target     int            `json:"target"`      // runners the pool means to have now
	Starting   int            `json:"starting"`
	Failed     bool           `json:"failed"`
	Queue      int            `json:"queue"`
	InFlight   int64          `json:"inflight"`
	Requests   uint64         `json:"requests"`
	Respawns   int64          `json:"respawns"`
	ScaleUps   int64          `json:"scale_ups"`
	ScaleDowns int64          `json:"scale_downs"`
	Exits      map[Reason]int `json:"exits"`
	LastExit   Reason         `json:"last_exit,omitempty"`
	// RSS sums the runners alive now: what the app uses. CPU is every
	// runner's since the pool began, exited ones' from their rusage, so it
	// only grows (a counter).
	RSS       int64            `json:"rss_bytes"`
	CPU       float64          `json:"cpu_s"`
	Runners   []RunnerStats    `json:"runners"`
	QueueWait Snapshot         `json:"-"`
	Latency   Snapshot         `json:"-"`
	Spawn     Snapshot         `json:"-"`
	States    map[string]int   `json:"-"` // runners by state, starting included
	Extra     map[string]int64 `json:"-"`
}

// Stats reads the pool's counters and every runner's state (RSS from /proc).
func (p *Pool) Stats() Stats {
	now := time.Now()
	s := Stats{
		Failed: p.failed.Load(), Queue: p.slots.waiting(), InFlight: p.inflight.Load(),
		QueueWait: p.queueWait.Snapshot(), Latency: p.latency.Snapshot(), Spawn: p.spawn.Snapshot(),
	}
	s.Requests = s.Latency.Count
	p.mu.Lock()
	s.Workers, s.Min, s.Max, s.Target = p.ceiling, p.floor, p.ceiling, p.target
	s.Starting, s.Respawns, s.ScaleUps, s.ScaleDowns = p.starting, p.respawns, p.ups, p.downs
	s.Exits = make(map[Reason]int, len(p.exits))
	for k, v := range p.exits {
		s.Exits[k] = v
	}
	s.LastExit = p.lastExit
	ms := make([]*member, 0, len(p.members))
	for m := range p.members {
		ms = append(ms, m)
	}
	p.mu.Unlock()
	s.States = map[string]int{StateIdle: 0, StateBusy: 0, StateDraining: 0, StateStarting: s.Starting}
	for _, m := range ms {
		r := RunnerStats{ID: m.id, PID: m.w.PID(), Requests: m.requests.Load(), Busy: int(m.busy.Load()),
			Conns: int(m.conns.Load()),
			Slots: m.w.Slots(), Started: m.started}
		switch {
		case m.gone.Load():
			r.State = StateDraining
		case r.Busy > 0:
			r.State = StateBusy
		default:
			r.State = StateIdle
		}
		s.States[r.State]++
		for i := range m.slots {
			if t := m.slots[i].since.Load(); t != 0 {
				if age := float64(now.UnixNano()-t) / 1e6; age > r.RequestAge {
					r.RequestAge = age
				}
			}
		}
		if rss, err := p.opts.RSS(r.PID); err == nil {
			r.RSS = rss
		}
		r.CPU = procCPU(r.PID)
		s.RSS += r.RSS
		s.CPU += r.CPU
		s.Runners = append(s.Runners, r)
	}
	s.CPU = p.opts.CPU.total(s.CPU)
	slices.SortFunc(s.Runners, func(a, b RunnerStats) int { return a.ID - b.ID })
	return s
}

// CPUTotal is an app's CPU seconds: its exited runners' (from their
// rusage at wait) plus those alive now, so the figure only grows and can
// be a counter. One value of it may be shared by an app's pools across
// reloads (Options.CPU).
type CPUTotal struct {
	mu     sync.Mutex
	exited float64 // runners gone
	shown  float64 // the most total reported
}

func (c *CPUTotal) add(s float64) {
	c.mu.Lock()
	c.exited += s
	c.mu.Unlock()
}

// total is exited plus live (the runners alive now), never less than
// before: a runner that exits between its /proc read and its wait, or an
// old generation's runners draining outside the current pool, would
// otherwise make it dip.
func (c *CPUTotal) total(live float64) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shown = max(c.shown, c.exited+live)
	return c.shown
}
