// Package gateway is gw's front end: listeners, the route table and the
// HTTP server that hands each request to its app's runner pool.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gwhq/gw/gateway/acme"
	"github.com/gwhq/gw/gateway/fastcgi"
	"github.com/gwhq/gw/gateway/forwarded"
	"github.com/gwhq/gw/gateway/h1"
	"github.com/gwhq/gw/gateway/uwsgi"
	"github.com/gwhq/gw/internal/bodypipe"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners"
	"github.com/gwhq/gw/runners/backoff"
	"github.com/gwhq/gw/runners/budget"
	"github.com/gwhq/gw/runners/daemon"
	"github.com/gwhq/gw/runners/pool"
	"github.com/quic-go/quic-go/http3"
)

// Gateway serves every app of one Config.
type Gateway struct {
	cfg     *config.Config
	log     *slog.Logger
	rt      *runners.Runtime
	ownsRT  bool                                       // Start made rt, so Shutdown removes it
	keyPair func() (certPEM, keyPEM []byte, err error) // nil: read the files
	routes  atomic.Pointer[table]
	pipesMu sync.Mutex
	pipes   *bodypipe.Pool // request bodies spliced into pipes; the generations share it
	srvs    []server
	lns     []listener
	// The HTTP/3 listener's UDP socket and server (nil when off), and
	// the sockets an upgrade passed for it.
	h3conn       net.PacketConn
	h3altSvc     []string // its Alt-Svc value, shared by every answer
	h3srv        *http3.Server
	h3conns      h3Conns
	inheritedPCs map[string]net.PacketConn
	// uwsgiLocks are the Python apps' lock files an upgrade passed.
	uwsgiLocks map[string]*os.File
	wg         sync.WaitGroup // Serve loops

	reloadMu  sync.Mutex                 // one reload (or the shutdown) at a time
	draining  sync.WaitGroup             // old generations still draining after a reload
	notReady  atomic.Bool                // /readyz answers 503 (SetUnready)
	controlLn net.Listener               // listen.control, served by the caller (ControlListener)
	daemons   atomic.Pointer[daemon.Set] // attached daemons and cron, started once the apps serve
	// proxy is whom the HTTP listeners believe (proxy:), nil for nobody;
	// proxyRefused counts connections the PROXY protocol closed.
	proxy        atomic.Pointer[forwarded.Policy]
	proxyRefused atomic.Int64
	acme         *acme.Manager // listen.tls.acme's certificates, nil without
	adminFields
}

// New prepares a gateway; nothing runs until Start.
func New(cfg *config.Config, log *slog.Logger) (*Gateway, error) {
	// With an apps directory, apps may come later: it may be empty yet.
	if len(cfg.Apps) == 0 && cfg.AppsDir == "" {
		return nil, errors.New("no apps configured")
	}
	return &Gateway{cfg: cfg, log: log}, nil
}

// KeepPrivileged gives g what gw makes while root for a gateway that is to
// serve after gw drops root (internal/cli; call it before Listen): rt, a
// runtime directory made as root, which g uses and leaves for its maker to
// remove, and keyPair, which reads the HTTPS certificate and key that only
// root may read (internal/privsep), at Listen and at each reload.
func (g *Gateway) KeepPrivileged(rt *runners.Runtime, keyPair func() (certPEM, keyPEM []byte, err error)) {
	g.rt, g.ownsRT, g.keyPair = rt, false, keyPair
}

// InheritUwsgiLocks gives g the Python apps' lock files (uwsgi.lock(),
// the timer token) the gw an upgrade replaces passed; call it before Start.
func (g *Gateway) InheritUwsgiLocks(locks map[string]*os.File) { g.uwsgiLocks = locks }

// UwsgiLocks are the Python apps' lock files, by app name, for the next
// gw of an upgrade (nil before Start).
func (g *Gateway) UwsgiLocks() map[string]*os.File {
	if g.rt == nil {
		return nil
	}
	return g.rt.UwsgiLocks()
}

// RuntimeDir is gw's private runtime directory ("" before Start): the
// reload watcher leaves it out, as it may sit in a watched temp dir.
func (g *Gateway) RuntimeDir() string {
	if g.rt == nil {
		return ""
	}
	return g.rt.Dir
}

func (g *Gateway) removeRuntime() {
	if g.rt == nil {
		return
	}
	// The apps' cgroups are gw's to remove even when the directory is
	// privsep's: only a gw that kept root made any.
	if err := g.rt.RemoveCgroups(); err != nil {
		g.log.Warn("removing the apps' cgroups", "err", err)
	}
	if g.ownsRT {
		g.rt.Remove()
	}
}

// Start binds the listeners, boots every app's runners (waiting until each is
// ready), then serves in the background. Listeners are bound first so a busy
// port fails fast; connections that arrive meanwhile wait in the backlog. An
// app that fails to load makes Start fail with an error that unwraps to
// *proc.SpawnError.
func (g *Gateway) Start(ctx context.Context) (err error) {
	if err := g.listen(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			g.closeListeners()
		}
	}()
	if g.rt == nil {
		if g.rt, err = runners.NewRuntime(nil); err != nil {
			return err
		}
		g.ownsRT = true
	}
	g.rt.Reload = g.reloadFromApp
	g.rt.CgroupRoot = g.cfg.CgroupRoot
	for app, f := range g.uwsgiLocks {
		g.rt.AdoptUwsgiLock(app, f)
	}
	t, err := g.boot(ctx, g.cfg)
	if err != nil {
		g.removeRuntime()
		return err
	}
	t.gen = 1
	g.proxy.Store(proxyPolicy(g.cfg.Proxy))
	g.routes.Store(t)
	g.started = time.Now()
	if err := g.serveAdmin(); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), stopUnused)
		defer cancel()
		t.drain(stopCtx, pool.ReasonShutdown)
		g.removeRuntime()
		return err
	}
	g.serve()
	if g.acme != nil {
		// Once the listeners serve, as the CA's validation reaches them.
		if err := g.acme.Manage(); err != nil {
			g.log.Error("acme", "err", err)
		}
	}
	// After the apps: a worker may call them, and what it does is theirs.
	g.daemons.Store(daemon.StartSet(g.cfg.Daemons, g.cfg.Cron, backoff.Backoff{}, g.log))
	return nil
}

// boot starts every app of cfg concurrently and builds their route table.
// If any app fails, the others are stopped and the first error (carrying
// the traceback) is returned.
func (g *Gateway) boot(ctx context.Context, cfg *config.Config) (*table, error) {
	body, err := newBodyPolicy(cfg.Limits, g.rt.BodyDir())
	if err != nil {
		return nil, err
	}
	body.pipes = g.bodyPipes(body.mem)
	var bud *budget.Budget
	if cfg.MaxRunners > 0 {
		bud = budget.New(cfg.MaxRunners)
	}
	t, err := g.bootApps(ctx, cfg, cfg.Apps, bud)
	if err != nil {
		return nil, err
	}
	t.body = body
	t.budget = bud
	t.wsOpts = newWSOptions(cfg.Limits)
	return t, nil
}

// bodyPipes is the pool of pipes spliced request bodies wait in, asked
// to hold twice mem (a body arriving in pieces takes a pipe buffer each).
func (g *Gateway) bodyPipes(mem int64) *bodypipe.Pool {
	g.pipesMu.Lock()
	defer g.pipesMu.Unlock()
	size := int(min(max(2*mem, 64<<10), 1<<20))
	if g.pipes == nil {
		g.pipes = bodypipe.NewPool(maxBodyPipes, size)
	} else {
		g.pipes.SetSize(size)
	}
	return g.pipes
}

// maxBodyPipes bounds the pipes bodies wait in: past it, bodies are read
// into memory as before. 32 pipes of 128 KiB are 1024 of the user's
// 16384 pipe pages (pipe-user-pages-soft).
const maxBodyPipes = 32

// bootApps starts apps (entries of cfg, whose limits they get) concurrently
// and builds a table of their routes alone, without a body policy: boot's
// for a whole generation, ReloadApp's for the one route it replaces.
func (g *Gateway) bootApps(ctx context.Context, cfg *config.Config, appCfgs []config.App, bud *budget.Budget) (*table, error) {
	pools := make([]*pool.Pool, len(appCfgs))
	shares := map[string]*budget.Share{}
	leave := func() {
		for _, s := range shares {
			s.Leave()
		}
	}
	apps := make([]*runners.App, len(appCfgs))
	for i, app := range appCfgs {
		a, err := runners.New(app, g.rt, g.log)
		if err != nil {
			return nil, err
		}
		apps[i] = a
		opts := poolOptions(app)
		opts.HardMaxRequests = a.HardMaxRequests
		opts.CPU = &g.counters(app.Name).cpu
		if bud != nil {
			s := bud.Join(app.Name, app.Weight, app.MinWorkers)
			shares[app.Name], opts.Share = s, s
		}
		pools[i] = pool.New(opts, a.Launcher, g.log)
	}
	errs := make([]error, len(pools))
	var wg sync.WaitGroup
	for i, p := range pools {
		wg.Add(1)
		// Start returns once the app's runners are ready or one failed.
		go func() { defer wg.Done(); errs[i] = p.Start(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), stopUnused)
		defer cancel()
		for i, p := range pools {
			if errs[i] == nil {
				p.Shutdown(stopCtx)
			}
		}
		leave()
		for _, e := range errs {
			if e != nil {
				return nil, e
			}
		}
	}
	t, err := newTable(appCfgs, apps, pools)
	if err != nil {
		leave()
		return nil, err
	}
	for i := range t.routes {
		t.routes[i].share = shares[t.routes[i].name]
	}
	t.bufferAnswers(cfg, g.rt.AnswerDir(), g.log)
	t.compressAnswers(cfg)
	for i := range t.routes {
		t.routes[i].stats = g.counters(t.routes[i].name)
	}
	return t, nil
}

func poolOptions(app config.App) pool.Options {
	opts := pool.Options{
		Name: app.Name, Workers: app.Workers, MinWorkers: app.MinWorkers, WorkerIdle: app.WorkerIdle,
		QueueSize: app.QueueSize, QueueWait: app.QueueWait, Timeout: app.Timeout, SlowAfter: app.SlowAfter,
		MaxRequests: app.MaxRequests, MaxRSS: int64(app.MaxRSS),
	}
	if app.MinWorkers == 0 {
		opts.MinWorkers = pool.OnDemand // the pool's 0 means fixed, its zero value
	}
	return opts
}

// stopUnused bounds the stop of runners that booted but never served (a
// boot that failed elsewhere, a refused app file): they have no requests
// in flight to wait for, so not the shutdown timeout, only SIGTERM's
// grace before SIGKILL.
const stopUnused = 5 * time.Second

// server is what every front end protocol provides: http.Server's shape.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// newServer makes the protocol server for one listener; every protocol
// hands requests to the same handler, g, so HTTP/2 gets the routing,
// limits and streaming of HTTP/1.1.
func (g *Gateway) newServer(ln listener) server {
	lim := g.cfg.Limits
	switch ln.proto {
	case "uwsgi":
		return &uwsgi.Server{Handler: g, Log: g.log, IdleTimeout: lim.IdleTimeout, MaxVars: int(min(lim.MaxHeader, 65535))}
	case "fastcgi":
		return &fastcgi.Server{Handler: g, Log: g.log, IdleTimeout: lim.IdleTimeout, MaxParams: int(lim.MaxHeader)}
	}
	if ln.proto == "http" && !g.cfg.Listen.H2C {
		// gw's own HTTP/1.1 server: no background read, no per-request
		// goroutine or deadline syscalls (docs/design/hop.md).
		return &h1.Server{Handler: g.plainHandler(ln), Log: g.log, MaxHeaderBytes: int(lim.MaxHeader),
			ReadHeaderTimeout: lim.ReadHeaderTimeout, IdleTimeout: lim.IdleTimeout}
	}
	maxHeader := int(lim.MaxHeader)
	if maxHeader > 4096 {
		// net/http allows 4096 bytes of slack past MaxHeaderBytes.
		maxHeader -= 4096
	}
	h := g.plainHandler(ln)
	if ln.proto == "https" {
		h = g.altSvc(h) // Alt-Svc: the HTTP/3 listener, when there is one
	}
	srv := &http.Server{
		Handler:           closeHidden{h},
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
		// HTTP/2 advertises it as SETTINGS_MAX_HEADER_LIST_SIZE.
		MaxHeaderBytes: maxHeader,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		Protocols:      new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	if ln.proto == "https" {
		// One place for the HTTPS policy (certificate source, TLS
		// versions): the HTTP/3 server takes the same (http3Server).
		srv.Protocols.SetHTTP2(true)
		srv.TLSConfig = ln.certs.tlsConfig()
		return tlsServer{srv}
	}
	// h2c with prior knowledge (RFC 9113 §3.3), for clients and proxies
	// that speak HTTP/2 over a trusted network; Go has no Upgrade: h2c.
	srv.Protocols.SetUnencryptedHTTP2(g.cfg.Listen.H2C)
	return srv
}

// tlsServer serves HTTPS on a plain listener: ServeTLS wraps it and
// negotiates h2 or http/1.1 by ALPN.
type tlsServer struct{ *http.Server }

// Serve takes the certificate from TLSConfig.GetCertificate, not files.
func (s tlsServer) Serve(ln net.Listener) error { return s.ServeTLS(ln, "", "") }

// serve starts one protocol server per listener.
func (g *Gateway) serve() {
	for _, ln := range g.lns {
		srv := g.newServer(ln)
		g.srvs = append(g.srvs, srv)
		g.wg.Add(1)
		// Serve returns at Shutdown.
		go func() {
			defer g.wg.Done()
			if err := srv.Serve(g.proxyListener(ln.Listener, ln.proto)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.log.Error("listener failed", "proto", ln.proto, "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	g.serveHTTP3()
}

// Bound is one open listener: its protocol and the address the kernel gave
// it (so ":0" shows the real port).
type Bound struct {
	Proto string // "http", "https", "http3" (UDP), "uwsgi", "fastcgi", "stats", "control"
	Name  string // Proto, or "uwsgi.1"... for the more of a kind (ProtoAddr.Name)
	Addr  net.Addr
}

// Listeners returns the open listeners in config order.
func (g *Gateway) Listeners() []Bound {
	out := make([]Bound, 0, len(g.lns)+1)
	for _, ln := range g.lns {
		out = append(out, Bound{Proto: ln.proto, Name: ln.name, Addr: ln.Addr()})
	}
	if g.h3conn != nil {
		out = append(out, Bound{Proto: "http3", Name: "http3", Addr: g.h3conn.LocalAddr()})
	}
	if g.adminAddr != nil {
		out = append(out, Bound{Proto: "stats", Name: "stats", Addr: g.adminAddr})
	}
	if g.controlLn != nil {
		out = append(out, Bound{Proto: "control", Name: "control", Addr: g.controlLn.Addr()})
	}
	return out
}

// Shutdown stops accepting, finishes in-flight requests until ctx ends, then
// stops every runner (the current generation and any still draining from a
// reload) and removes the runtime directory.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var errs []error
	if t := g.routes.Load(); t != nil {
		// Open WebSockets get 1001 now: h1 counts them in flight, so
		// they would hold the drain to its bound.
		t.ws.closeAll()
	}
	for _, srv := range g.srvs {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain: %w", err))
			srv.Close()
		}
	}
	if err := g.shutdownHTTP3(ctx); err != nil {
		errs = append(errs, err)
	}
	if t := g.routes.Load(); t != nil {
		// Hijacked connections get the shutdown timeout (h1 counts
		// them in the drain above; net/http's HTTPS server does not).
		t.raw.wait(ctx)
		t.raw.closeAll()
	}
	g.wg.Wait()
	if g.h3conn != nil {
		g.h3conn.Close() // http3's Shutdown leaves a socket it was given open
	}
	g.reloadMu.Lock() // no reload may start a generation behind our back
	defer g.reloadMu.Unlock()
	g.draining.Wait()
	if t := g.routes.Load(); t != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		t.drain(stopCtx, pool.ReasonShutdown)
	}
	g.pipesMu.Lock()
	if g.pipes != nil {
		g.pipes.Close() // the requests are done: every pipe is back
	}
	g.pipesMu.Unlock()
	if ds := g.daemons.Load(); ds != nil {
		// After the apps drained: the last requests may still queue work
		// (a celery task) that the workers should take before they stop.
		// Each daemon's stop_timeout bounds its stop.
		ds.Stop(context.Background())
	}
	if g.acme != nil {
		g.acme.Stop()
	}
	g.removeRuntime()
	g.closeAdmin()
	return errors.Join(errs...)
}

// Pools returns the current generation's app pools in route order (for
// tests and stats).
func (g *Gateway) Pools() []*pool.Pool {
	t := g.routes.Load()
	if t == nil {
		return nil
	}
	out := make([]*pool.Pool, len(t.routes))
	for i, r := range t.routes {
		out[i] = r.pool
	}
	return out
}
