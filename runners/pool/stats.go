package pool

import (
	"time"
)

// RunnerStats is one runner's state at a moment.
type RunnerStats struct {
	ID         int       `json:"id"`
	PID        int       `json:"pid"`
	State      string    `json:"state"` // idle, busy, draining
	Requests   int64     `json:"requests"`
	Busy       int       `json:"busy_slots"`
	Slots      int       `json:"slots"`
	RequestAge float64   `json:"request_age_ms"` // the oldest request it is serving now
	RSS        int64     `json:"rss_bytes"`
	Started    time.Time `json:"started"`
}

// Stats is a pool's state at a moment.
type Stats struct {
	Workers   int              `json:"workers"` // configured
	Starting  int              `json:"starting"`
	Failed    bool             `json:"failed"`
	Queue     int              `json:"queue"`
	InFlight  int64            `json:"inflight"`
	Requests  uint64           `json:"requests"`
	Respawns  int64            `json:"respawns"`
	Exits     map[Reason]int   `json:"exits"`
	LastExit  Reason           `json:"last_exit,omitempty"`
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
		Workers: p.opts.Workers, Starting: int(p.starting.Load()), Failed: p.failed.Load(),
		Queue: p.slots.waiting(), InFlight: p.inflight.Load(), Respawns: p.respawns.Load(),
		QueueWait: p.queueWait.Snapshot(), Latency: p.latency.Snapshot(), Spawn: p.spawn.Snapshot(),
		States: map[string]int{"idle": 0, "busy": 0, "draining": 0, "starting": int(p.starting.Load())},
	}
	s.Requests = s.Latency.Count
	p.mu.Lock()
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
	for _, m := range ms {
		r := RunnerStats{ID: m.id, PID: m.w.PID(), Requests: m.requests.Load(), Busy: int(m.busy.Load()),
			Slots: m.w.Slots(), Started: m.started}
		switch {
		case m.gone.Load() || m.retiring.Load():
			r.State = "draining"
		case r.Busy > 0:
			r.State = "busy"
		default:
			r.State = "idle"
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
		s.Runners = append(s.Runners, r)
	}
	return s
}
