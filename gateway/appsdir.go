package gateway

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gwhq/gw/gateway/control"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/pool"
)

// The apps directory's actions (internal/cli's appsDirWatch drives them):
// one app comes, changes or goes while the others serve on. Like the
// control socket's, each takes reloadMu and swaps in a new route table.

// PutApp starts app name of cfg (the config read again), or replaces the
// app of that name serving now: a new or changed file of the apps
// directory. The new runners boot while the old ones serve; if they fail,
// nothing changes. Unlike ReloadApp, the host and mount may change: Load
// checked them against the other apps, and the table is sorted anew.
func (g *Gateway) PutApp(ctx context.Context, cfg *config.Config, name string) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	j := slices.IndexFunc(cfg.Apps, func(a config.App) bool { return a.Name == name })
	if j < 0 {
		return fmt.Errorf("%w: %q is not in the config", control.ErrUnknownApp, name)
	}
	app := cfg.Apps[j]
	merged := *g.cfg
	merged.Apps = slices.Clone(g.cfg.Apps)
	if k := slices.IndexFunc(merged.Apps, func(a config.App) bool { return a.Name == name }); k >= 0 {
		merged.Apps[k] = app
	} else {
		merged.Apps = append(merged.Apps, app)
	}
	t := g.routes.Load()
	start := time.Now()
	one, err := g.bootApps(ctx, &merged, []config.App{app}, t.budget)
	if err != nil {
		return fmt.Errorf("app %q: runners failed to start, what serves is unchanged: %w", name, err)
	}
	routes := slices.Clone(t.routes)
	i := slices.IndexFunc(routes, func(r route) bool { return r.name == name })
	if i >= 0 {
		routes[i] = one.routes[0]
	} else {
		routes = append(routes, one.routes[0])
	}
	if err := sortRoutes(routes); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), stopUnused)
		defer cancel()
		one.routes[0].drain(stopCtx, pool.ReasonShutdown)
		return &control.Conflict{Reason: err.Error()}
	}
	g.routes.Store(t.next(routes))
	g.cfg = &merged
	verb := "app started"
	if i >= 0 {
		verb = "app serving from new runners"
		if old := t.routes[i]; !old.drained && old.pool != nil {
			g.drainLater(t, func(ctx context.Context) { old.drain(ctx, pool.ReasonReload) })
		}
	}
	g.log.Info(verb, "app", name, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// RemoveApp takes app name out of the route table (its requests get 404
// like any unrouted path) and drains its runners in the background once
// the requests that saw it are done: a file of the apps directory removed.
func (g *Gateway) RemoveApp(_ context.Context, name string) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	t, i, err := g.find(name)
	if err != nil {
		return err
	}
	old := t.routes[i]
	g.routes.Store(t.next(slices.Delete(slices.Clone(t.routes), i, i+1)))
	cfg := *g.cfg
	cfg.Apps = slices.DeleteFunc(slices.Clone(g.cfg.Apps), func(a config.App) bool { return a.Name == name })
	g.cfg = &cfg
	if !old.drained && old.pool != nil {
		g.drainLater(t, func(ctx context.Context) { old.drain(ctx, pool.ReasonShutdown) })
	}
	g.log.Info("app removed; its runners drain", "app", name)
	return nil
}
