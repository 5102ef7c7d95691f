package gateway

// SetUnready turns /readyz to 503 while gw keeps serving: the first step of
// a graceful stop, so load balancers stop sending before the drain begins.
func (g *Gateway) SetUnready() { g.notReady.Store(true) }

// Ready reports whether gw should get traffic: not stopping, and every app
// of the current generation has a runner that takes requests.
func (g *Gateway) Ready() (bool, string) {
	if g.notReady.Load() {
		return false, "shutting down"
	}
	t := g.routes.Load()
	if t == nil {
		return false, "starting"
	}
	for _, r := range t.routes {
		// A drained app has no runner on purpose (gw ctl drain): the
		// other apps still want traffic.
		if r.pool != nil && !r.drained && len(r.pool.PIDs()) == 0 {
			return false, "app " + r.name + " has no ready runner"
		}
	}
	return true, ""
}
