package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/pool"
)

// Reload starts a new generation of every app from cfg (their code may have
// changed even where the config did not), switches traffic to it once all of
// it is ready, and drains the old generation in the background. Listeners
// stay open throughout, so no connection is refused. If any app of the new
// generation fails to start, the old one keeps serving and the error says
// why. Listener changes need a restart; they are reported, not applied.
func (g *Gateway) Reload(ctx context.Context, cfg *config.Config) error {
	if err := g.ReloadCerts(); err != nil {
		g.log.Error("reload: certificate not reloaded; the current one keeps serving", "err", err)
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if !cfg.Listen.Equal(g.cfg.Listen) {
		g.log.Warn("reload: listener changes take effect at the next restart; keeping the current listeners")
		cfg.Listen = g.cfg.Listen
	}
	start := time.Now()
	t, err := g.boot(ctx, cfg)
	if err != nil {
		return fmt.Errorf("reload: new generation failed to start, the running one keeps serving: %w", err)
	}
	t.gen = g.routes.Load().gen + 1
	g.proxy.Store(proxyPolicy(cfg.Proxy))
	old := g.routes.Swap(t)
	g.cfg = cfg
	g.log.Info("reload: new generation serving", "apps", len(cfg.Apps), "took", time.Since(start).Round(time.Millisecond))
	g.drainLater(old, func(ctx context.Context) { old.drain(ctx, pool.ReasonReload) })
	if ds := g.daemons.Load(); ds != nil {
		ds.Update(ctx, cfg.Daemons, cfg.Cron)
	}
	return nil
}

// drainLater runs drain in the background once every request that loaded
// old (a table no longer current) is done, within the drain bound;
// Shutdown waits for it. drain stops what old alone holds: all of it after
// a reload, one pool after ReloadApp.
func (g *Gateway) drainLater(old *table, drain func(context.Context)) {
	bound := g.cfg.Limits.ShutdownTimeout
	g.draining.Add(1)
	// Ends once drain returns, at the latest at the bound.
	go func() {
		defer g.draining.Done()
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		// Requests that loaded the old table may still be on their way to
		// its pools: wait until they are done (bounded by the drain time).
		for old.refs.Load() > 0 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		drain(ctx)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			g.log.Warn("reload: old runners drained at their time bound", "bound", bound)
		}
	}()
}
