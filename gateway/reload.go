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
	idle := old.retire()
	g.draining.Add(1)
	// Ends once drain returns, at the latest at the bound.
	go func() {
		defer g.draining.Done()
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		// Requests that loaded the old table may still be on their way to
		// its pools: wait until they are done (bounded by the drain time).
		select {
		case <-idle:
		case <-ctx.Done():
		}
		drain(ctx)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			g.log.Warn("reload: old runners drained at their time bound", "bound", bound)
		}
	}()
}

// pin counts one more request on t; release ends it.
func (t *table) pin() { t.refs.Add(1) }

// release ends a request's pin on t. The one that leaves a retired table
// unpinned says so: its drain starts at once, without polling.
func (t *table) release() {
	if t.refs.Add(-1) == 0 && t.retired.Load() {
		t.idleOnce.Do(func() { close(t.idle) })
	}
}

// retire marks t replaced and returns a channel closed once no request
// pins it. Called once per table, by drainLater. A pin after the channel
// closed (acquireTable's retry, a WebSocket's end re-pinning) and its
// release change nothing; one before it delays it, as it should.
func (t *table) retire() <-chan struct{} {
	t.idle = make(chan struct{})
	// Stored after idle is made: a release that sees retired sees idle.
	// A release that brings refs to 0 before this store sees retired
	// false, and then this Load sees 0: one of the two closes idle.
	t.retired.Store(true)
	if t.refs.Load() == 0 {
		t.idleOnce.Do(func() { close(t.idle) })
	}
	return t.idle
}
