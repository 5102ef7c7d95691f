package daemon

import (
	"context"
	"log/slog"
	"reflect"
	"sync"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/backoff"
)

// Set is every daemon and cron job of one gw, kept across reloads.
type Set struct {
	log     *slog.Logger
	backoff backoff.Backoff
	cron    *Cron

	mu      sync.Mutex // guards daemons against Stats during Update
	daemons []*Daemon
}

// StartSet starts daemons and the cron owner for jobs.
func StartSet(daemons []config.Daemon, jobs []config.CronJob, b backoff.Backoff, log *slog.Logger) *Set {
	s := &Set{log: log, backoff: b, cron: StartCron(jobs, nil, log)}
	for _, cfg := range daemons {
		s.daemons = append(s.daemons, Start(cfg, b, log))
	}
	return s
}

// Update reconciles the set with a reloaded config: a daemon whose
// settings changed is stopped, then started again from them; one whose
// settings did not keeps running; removed ones stop, new ones start. ctx
// bounds the stops.
func (s *Set) Update(ctx context.Context, daemons []config.Daemon, jobs []config.CronJob) {
	s.cron.Update(jobs)
	old := map[string]*Daemon{}
	for _, d := range s.daemons {
		old[d.cfg.Name] = d
	}
	var stop []*Daemon
	next := make([]*Daemon, len(daemons))
	for i, cfg := range daemons {
		d, ok := old[cfg.Name]
		delete(old, cfg.Name)
		if ok && reflect.DeepEqual(d.cfg, cfg) {
			next[i] = d
			continue
		}
		if ok {
			s.log.Info("reload: daemon changed; restarting it", "daemon", cfg.Name)
			stop = append(stop, d)
		}
	}
	for _, d := range old {
		s.log.Info("reload: daemon removed; stopping it", "daemon", d.cfg.Name)
		stop = append(stop, d)
	}
	stopAll(ctx, stop)
	for i, cfg := range daemons {
		if next[i] == nil {
			next[i] = Start(cfg, s.backoff, s.log)
		}
	}
	s.mu.Lock()
	s.daemons = next
	s.mu.Unlock()
}

// Stop stops every daemon and cron run, concurrently, each with its stop
// signal and timeout, within ctx.
func (s *Set) Stop(ctx context.Context) {
	s.mu.Lock()
	ds := s.daemons
	s.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	// Ends when the cron runs have.
	go func() { defer wg.Done(); s.cron.Stop(ctx) }()
	stopAll(ctx, ds)
	wg.Wait()
}

func stopAll(ctx context.Context, ds []*Daemon) {
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Add(1)
		// Stop returns once the daemon's process is gone.
		go func() { defer wg.Done(); d.Stop(ctx) }()
	}
	wg.Wait()
}

// Stats returns every daemon's and cron job's state now.
func (s *Set) Stats() ([]Stats, []JobStats) {
	s.mu.Lock()
	ds := s.daemons
	s.mu.Unlock()
	out := make([]Stats, len(ds))
	for i, d := range ds {
		out[i] = d.Stats()
	}
	return out, s.cron.Stats()
}
