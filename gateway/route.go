package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gwhq/gw/gateway/compress"
	"github.com/gwhq/gw/gateway/respbuf"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/files"
	"github.com/gwhq/gw/runners"
	"github.com/gwhq/gw/runners/budget"
	"github.com/gwhq/gw/runners/pool"
)

// route is one app's place in the URL space.
type route struct {
	host  string // "" = any
	mount string // "" for "/", else "/prefix"
	name  string
	lang  config.Lang
	stats *appCounters
	pool  *pool.Pool
	share *budget.Share     // the pool's part of max_runners; nil without a cap
	serve runners.ServeFunc // the pool, behind the app's front if it has one
	// serveConn is serve for upgrades (WebSockets, raw connections): the
	// pool places them by the connections its runners hold open.
	serveConn func(w http.ResponseWriter, r *http.Request, c *pool.Conn) error
	buffer    bool // read the whole body before a runner (request_buffering)
	static    []staticDir
	// respbuf buffers the app's answers for slow clients (nil: straight
	// through); set by bufferAnswers.
	respbuf *respbuf.Options
	drained bool  // gw ctl drain stopped pool; restart or reload boots a new one
	maxWS   int64 // max_websockets, 0 = no limit
	// sendfile are the roots an answer's X-Sendfile may name files
	// under; nil: such answers pass through as the app made them.
	sendfile files.Roots
	// compress compresses answers for clients that accept it (nil: off);
	// set by compressAnswers.
	compress *compress.Options
}

type staticDir struct {
	prefix string
	h      http.Handler
}

// table is one generation of apps: immutable once built. A reload builds a
// new one, swaps it in, and drains the old one once every request that saw
// it is done (refs, then idle: reload.go).
type table struct {
	routes []route // host-specific first, then longest mount first
	body   bodyPolicy
	refs   atomic.Int64 // requests that loaded this table and are not done: pin, release
	// retired: replaced, and drainLater waits for idle, closed (once) by
	// whoever brings refs to 0 after that.
	retired  atomic.Bool
	idle     chan struct{}
	idleOnce sync.Once
	gen      int64 // 1 for the first table, +1 for each that replaced one
	// budget is max_runners for this generation's apps (nil: no cap). A
	// full reload makes a new one: the old generation's runners drain
	// beside the new one's, as in any reload.
	budget *budget.Budget
	// WebSockets: the open sessions (closed with 1001 at drain) and limits.
	ws     *openSet // WebSocket sessions (websocket.go)
	raw    *openSet // hijacked connections (rawconn.go)
	wsOpts wsOptions
}

func newTable(apps []config.App, run []*runners.App, pools []*pool.Pool) (*table, error) {
	t := &table{ws: &openSet{}, raw: &openSet{}}
	for i, app := range apps {
		mount := strings.TrimSuffix(app.Mount, "/")
		r := route{host: app.Host, mount: mount, name: app.Name, lang: app.Lang, pool: pools[i]}
		r.buffer = app.RequestBuffering
		r.maxWS = int64(app.MaxWebSockets)
		if p := pools[i]; p != nil {
			r.serve, r.serveConn = p.Serve, p.ServeConn
			if front := run[i].Front; front != nil {
				r.serve = func(w http.ResponseWriter, req *http.Request) error { return front(w, req, p.Serve) }
				r.serveConn = func(w http.ResponseWriter, req *http.Request, c *pool.Conn) error {
					return front(w, req, func(w http.ResponseWriter, req *http.Request) error { return p.ServeConn(w, req, c) })
				}
			}
		}
		if len(app.Sendfile) > 0 {
			roots, err := files.NewRoots(app.Sendfile)
			if err != nil {
				return nil, fmt.Errorf("app %q: sendfile: %w", app.Name, err)
			}
			r.sendfile = roots
		}
		for prefix, dir := range app.Static {
			prefix = strings.TrimSuffix(prefix, "/")
			root, err := files.NewRoot(dir)
			if err != nil {
				return nil, fmt.Errorf("app %q: static %s: %w", app.Name, prefix, err)
			}
			r.static = append(r.static, staticDir{prefix, root.Handler(prefix)})
		}
		sort.Slice(r.static, func(a, b int) bool { return len(r.static[a].prefix) > len(r.static[b].prefix) })
		t.routes = append(t.routes, r)
	}
	if err := sortRoutes(t.routes); err != nil {
		return nil, err
	}
	return t, nil
}

// sortRoutes puts routes in match order and refuses two on one host and
// mount, which routing could never tell apart.
func sortRoutes(routes []route) error {
	sort.SliceStable(routes, func(a, b int) bool {
		ra, rb := routes[a], routes[b]
		if (ra.host == "") != (rb.host == "") {
			return ra.host != ""
		}
		return len(ra.mount) > len(rb.mount)
	})
	for i := 1; i < len(routes); i++ {
		if a, b := routes[i-1], routes[i]; a.host == b.host && a.mount == b.mount {
			return fmt.Errorf("apps %q and %q share host %q and mount %q", a.name, b.name, a.host, a.mount)
		}
	}
	return nil
}

// match picks the app for host and path: an exact host match beats the
// any-host apps, then the longest mount that matches at a segment boundary.
func (t *table) match(host, path string) *route {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	for i := range t.routes {
		r := &t.routes[i]
		if r.host != "" && r.host != host {
			continue
		}
		if underMount(path, r.mount) {
			return r
		}
	}
	return nil
}

// underMount reports whether path is mount itself or below it: "/a" owns
// "/a" and "/a/x" but not "/ab".
func underMount(path, mount string) bool {
	if mount == "" {
		return true
	}
	return strings.HasPrefix(path, mount) && (len(path) == len(mount) || path[len(mount)] == '/')
}

// drain stops every app of this generation, in parallel; each pool
// finishes what it has queued and running first, until ctx ends.
func (t *table) drain(ctx context.Context, reason pool.Reason) {
	t.ws.closeAll() // before the runners stop: 1001, not 1011
	// Hijacked connections had their time: a reload's drain runs once
	// the requests that pinned t are done or at the bound.
	t.raw.closeAll()
	var wg sync.WaitGroup
	for _, r := range t.routes {
		if r.pool == nil {
			continue
		}
		wg.Add(1)
		// Drain returns once the pool's runners are gone.
		go func() { defer wg.Done(); r.drain(ctx, reason) }()
	}
	wg.Wait()
}

// drain stops r's pool and takes its share out of the budget, so a
// drained or replaced app no longer counts among those contending.
func (r route) drain(ctx context.Context, reason pool.Reason) {
	r.pool.Drain(ctx, reason)
	if r.share != nil {
		r.share.Leave()
	}
}

// bridge reports whether rt's runners take requests on bridge slots
// (pipes a spliced body can go on to): Python, Ruby and Perl.
func (rt *route) bridge() bool {
	return rt.lang == config.LangPython || rt.lang == config.LangRuby || rt.lang == config.LangPerl
}
