package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gwhq/gw/gateway/admin"
	"github.com/gwhq/gw/runners/pool"
)

// Version is reported in /stats; the CLI sets it.
var Version = "dev"

// appCounters are an app's request counters. They live in the Gateway by
// app name, not in a generation, so Prometheus counters never go back to
// zero at a reload.
type appCounters struct {
	status   [6]atomic.Uint64 // by status class: 1xx..5xx at 1..5
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	spliced  atomic.Uint64 // request bodies spliced (bodypipe)
	ws       wsCounters
	raw      rawCounters
	cpu      pool.CPUTotal // shared by the app's pools across reloads
}

func (g *Gateway) counters(app string) *appCounters {
	if c, ok := g.appStats.Load(app); ok {
		return c.(*appCounters)
	}
	c, _ := g.appStats.LoadOrStore(app, &appCounters{})
	return c.(*appCounters)
}

// record counts one answered request.
func (c *appCounters) record(status int, in, out int64) {
	if class := status / 100; class >= 1 && class <= 5 {
		c.status[class].Add(1)
	}
	c.bytesIn.Add(uint64(in))
	c.bytesOut.Add(uint64(out))
}

// Snapshot is the admin listener's view of gw (admin.Source).
func (g *Gateway) Snapshot() admin.Snapshot {
	s := admin.Snapshot{Version: Version, PID: os.Getpid(), Started: g.started, Uptime: time.Since(g.started).Seconds(),
		ProxyProtocolClosed: g.proxyRefused.Load()}
	if ds := g.daemons.Load(); ds != nil {
		s.Daemons, s.Cron = ds.Stats()
	}
	t := g.routes.Load()
	if t == nil {
		return s
	}
	for _, r := range t.routes {
		c := g.counters(r.name)
		a := admin.AppStats{Name: r.name, Lang: string(r.lang), Mount: r.mount, Host: r.host,
			Status: map[string]uint64{}, BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(), BodiesSpliced: c.spliced.Load(),
			WebSockets: admin.WebSocketStats{Open: c.ws.open.Load(), Total: c.ws.total.Load(), Refused: c.ws.refused.Load(), Handed: c.ws.handed.Load(),
				MessagesIn: c.ws.msgsIn.Load(), MessagesOut: c.ws.msgsOut.Load()},
			Raw: admin.RawStats{Open: c.raw.open.Load(), Total: c.raw.total.Load(),
				BytesIn: c.raw.bytesIn.Load(), BytesOut: c.raw.bytesOut.Load()}}
		for class := 1; class <= 5; class++ {
			if n := c.status[class].Load(); n > 0 {
				a.Status[string(rune('0'+class))+"xx"] = n
			}
		}
		if g.rt != nil {
			if u, ok := g.rt.CgroupUsage(r.name); ok {
				a.Cgroup = &u
			}
		}
		if r.pool != nil {
			a.Stats = r.pool.Stats()
			a.QueueWait = admin.PercentilesOf(a.Stats.QueueWait)
			a.Latency = admin.PercentilesOf(a.Stats.Latency)
		}
		for _, n := range a.Status {
			s.Requests += n
		}
		s.InFlight += a.InFlight
		s.BytesIn += a.BytesIn
		s.BytesOut += a.BytesOut
		s.Apps = append(s.Apps, a)
	}
	if t.budget != nil {
		b := t.budget.Stats()
		s.Budget = &b
	}
	return s
}

// serveAdmin serves the stats listener bound by Listen, if any.
func (g *Gateway) serveAdmin() error {
	ln := g.statsLn
	if ln == nil {
		return nil
	}
	g.admin = &http.Server{Handler: admin.Handler(g), ReadHeaderTimeout: 5 * time.Second}
	g.adminAddr = ln.Addr()
	g.adminWG.Add(1)
	// Serve returns when closeAdmin closes the server.
	go func() {
		defer g.adminWG.Done()
		if err := g.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("stats listener failed", "err", err)
		}
	}()
	return nil
}

// closeAdmin stops the stats listener last, so /metrics answers through a
// drain.
func (g *Gateway) closeAdmin() {
	if g.admin == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	g.admin.Shutdown(ctx)
	g.adminWG.Wait()
}

var _ admin.Source = (*Gateway)(nil)

type adminFields struct {
	admin     *http.Server
	statsLn   net.Listener
	adminAddr net.Addr
	adminWG   sync.WaitGroup
	appStats  sync.Map // app name -> *appCounters
	started   time.Time
}
