package gateway

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gwhq/gw/gateway/control"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners"
	"github.com/gwhq/gw/runners/pool"
)

// What gw ctl asks of the gateway (gateway/control serves it). Each action
// takes reloadMu, as Reload does: one change to the route table at a time.
// The pool's Restart and Scale are called here and nowhere else.

// Status reports every app of the current route table and its runners.
func (g *Gateway) Status() control.Status {
	s := control.Status{PID: os.Getpid(), Version: Version, Started: g.started,
		Uptime: time.Since(g.started).Seconds()}
	t := g.routes.Load()
	if t == nil {
		return s
	}
	s.Generation = t.gen
	for _, r := range t.routes {
		a := control.AppStatus{Name: r.name, Lang: string(r.lang), Mount: r.mount + "/", Host: r.host,
			State: "serving", Exits: map[string]int{}, Runners: []control.Runner{}}
		if r.pool != nil {
			st := r.pool.Stats()
			a.MinWorkers, a.MaxWorkers, a.Target = st.Min, st.Max, st.Target
			a.Failed, a.Queue = st.Failed, st.Queue
			for reason, n := range st.Exits {
				a.Exits[string(reason)] = n
			}
			for _, rs := range st.Runners {
				a.Runners = append(a.Runners, control.Runner{ID: rs.ID, PID: rs.PID, State: rs.State,
					Requests: rs.Requests, RSS: rs.RSS})
			}
			slices.SortFunc(a.Runners, func(x, y control.Runner) int { return x.ID - y.ID })
		}
		switch {
		case r.drained:
			a.State, a.Target = "drained", 0
		case a.Failed:
			a.State = "failed"
		}
		s.Apps = append(s.Apps, a)
	}
	return s
}

// find returns the index of app name's route in the current table.
func (g *Gateway) find(name string) (*table, int, error) {
	t := g.routes.Load()
	for i := range t.routes {
		if t.routes[i].name == name {
			return t, i, nil
		}
	}
	return nil, 0, fmt.Errorf("%w: %q", control.ErrUnknownApp, name)
}

// ReloadApp rebuilds app name's pool from its entry in cfg (the config
// file read again), leaving the other apps and every global setting as
// they are: the new pool boots, takes the app's place in a new route
// table, and the old pool drains. An app whose host or mount changed
// would move in the table: that takes a full reload. A nil cfg is the
// config serving now: the app's code changed, not its config (reload on
// change, touch_reload, uwsgi.reload()).
func (g *Gateway) ReloadApp(ctx context.Context, cfg *config.Config, name string) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if cfg == nil {
		cfg = g.cfg
	}
	t, i, err := g.find(name)
	if err != nil {
		return err
	}
	if cfg == nil {
		cfg = g.cfg
	}
	j := slices.IndexFunc(cfg.Apps, func(a config.App) bool { return a.Name == name })
	if j < 0 {
		return &control.Conflict{Reason: fmt.Sprintf("app %q is no longer in the config file; use a full reload (gw ctl reload)", name)}
	}
	app, r := cfg.Apps[j], t.routes[i]
	if app.Host != r.host || strings.TrimSuffix(app.Mount, "/") != r.mount {
		return &control.Conflict{Reason: fmt.Sprintf("app %q changed its host or mount; use a full reload (gw ctl reload)", name)}
	}
	merged := *g.cfg
	merged.Apps = slices.Clone(g.cfg.Apps)
	for k := range merged.Apps {
		if merged.Apps[k].Name == name {
			merged.Apps[k] = app
		}
	}
	return g.replaceApp(ctx, &merged, t, i)
}

// Config returns the config serving now, as the last reload left it. It
// waits for a reload under way.
func (g *Gateway) Config() *config.Config {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	return g.cfg
}

// replaceApp boots route i of t anew from its entry in cfg and swaps it in;
// the pool it replaces drains once the requests that saw t are done.
func (g *Gateway) replaceApp(ctx context.Context, cfg *config.Config, t *table, i int) error {
	old := t.routes[i]
	k := slices.IndexFunc(cfg.Apps, func(a config.App) bool { return a.Name == old.name })
	start := time.Now()
	one, err := g.bootApps(ctx, cfg, cfg.Apps[k:k+1], t.budget)
	if err != nil {
		return fmt.Errorf("app %q: new runners failed to start, the running ones keep serving: %w", old.name, err)
	}
	g.routes.Store(t.with(i, one.routes[0]))
	g.cfg = cfg
	g.log.Info("reload: app serving from new runners", "app", old.name, "took", time.Since(start).Round(time.Millisecond))
	if !old.drained && old.pool != nil {
		g.drainLater(t, func(ctx context.Context) { old.drain(ctx, pool.ReasonReload) })
	}
	return nil
}

// with is a copy of t with route i replaced by r: the next table.
func (t *table) with(i int, r route) *table {
	routes := slices.Clone(t.routes)
	routes[i] = r
	return t.next(routes)
}

// next is the table after t, with routes (in match order).
func (t *table) next(routes []route) *table {
	// The open WebSockets stay the generation's: a drain of nt closes them.
	return &table{routes: routes, body: t.body, gen: t.gen + 1, budget: t.budget,
		ws: t.ws, raw: t.raw, wsOpts: t.wsOpts}
}

// RestartApp replaces app name's runners one by one, config unchanged,
// each replacement ready before its predecessor stops taking requests. A
// drained app is booted again from its current config.
func (g *Gateway) RestartApp(ctx context.Context, name string) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	t, i, err := g.find(name)
	if err != nil {
		return err
	}
	if r := t.routes[i]; !r.drained && r.pool != nil {
		return r.pool.Restart()
	}
	return g.replaceApp(ctx, g.cfg, t, i)
}

// ScaleApp sets app name's runner count (floor and current) to n.
func (g *Gateway) ScaleApp(_ context.Context, name string, n int) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	t, i, err := g.find(name)
	if err != nil {
		return err
	}
	r := t.routes[i]
	if r.drained || r.pool == nil {
		return &control.Conflict{Reason: fmt.Sprintf("app %q is drained; gw ctl restart %s brings it back", name, name)}
	}
	return r.pool.Scale(n)
}

// DrainApp stops app name: from now on its requests get 503 (the pool
// answers ErrStopped, which fail maps), the ones it is running finish
// (within the drain bound), and its runners stop. It returns once they
// have; RestartApp or a reload brings the app back.
func (g *Gateway) DrainApp(ctx context.Context, name string) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	t, i, err := g.find(name)
	if err != nil {
		return err
	}
	r := t.routes[i]
	if r.drained || r.pool == nil {
		return nil
	}
	r.drained = true
	g.routes.Store(t.with(i, r))
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Limits.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	r.drain(ctx, pool.ReasonShutdown)
	g.log.Info("app drained", "app", name, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// reloadFromApp is a runner's uwsgi.reload() (runners.Runtime.Reload): app
// name reloads gracefully with the config it runs, as `gw ctl reload
// name` would without a changed file. It runs on its own goroutine.
func (g *Gateway) reloadFromApp(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*runners.ReadyTimeout)
	defer cancel()
	g.log.Info("reload asked by the app (uwsgi.reload())", "app", name)
	if err := g.ReloadApp(ctx, nil, name); err != nil {
		g.log.Error("reload asked by the app failed; its runners keep serving", "app", name, "err", err)
	}
}
