package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gwhq/gw/gateway"
	"github.com/gwhq/gw/gateway/accesslog"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/logfile"
	"github.com/gwhq/gw/internal/privsep"
	"github.com/gwhq/gw/internal/systemd"
	"github.com/gwhq/gw/runners"
	"github.com/gwhq/gw/runners/proc"
)

func newRun(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [APP] [flags]",
		Short: "Serve one app (APP given) or every app of --config",
		Long: "Serve one app, given as APP (a file, a directory or module:callable), or every app " +
			"listed in the config file given by -c. Each flag can also be set as a GW_ variable " +
			"(--max-header is GW_MAX_HEADER) or in the file; a flag wins over a variable, a variable over the file.\n\n" +
			"With -c and no APP, the per-app flags (--workers, --timeout, ...) fill in what an entry of apps: leaves out.",
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return run(cmd, a, e)
		},
	}
	config.RegisterFlags(cmd.Flags())
	return cmd
}

func run(cmd *cobra.Command, a []string, e env) error {
	file, err := cmd.Flags().GetString("config")
	if err != nil {
		return fmt.Errorf("read --config: %w", err)
	}
	cfg, err := config.Load(config.Sources{Flags: cmd.Flags(), Environ: e.environ, File: file, Args: a})
	if err != nil {
		return reportLoad(e, err)
	}
	refuseUsers(cfg)
	// gw's log goes to stderr, or to log.file (uWSGI's logto): the
	// runners' and daemons' output with it, as gw logs their lines.
	logOut := e.stderr
	var logFile *logfile.File
	if cfg.Log.File != "" {
		if logFile, err = logfile.Open(cfg.Log.File); err != nil {
			return &exitError{code: exitFailure, err: fmt.Errorf("log file: %w", err)}
		}
		// Closed last (deferred first): gw logs until run returns.
		defer logFile.Close()
		logOut = logFile
		fmt.Fprintf(e.stderr, "gw: logging to %s\n", cfg.Log.File)
	}
	log := newLogger(logOut, cfg.Log.Format)
	// "-" puts the access log with gw's log, wherever that goes.
	access, err := accesslog.Open(cfg.Log.Access, cfg.Log.Format, logOut)
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	defer access.Close()
	log = accesslog.Attach(log, access)
	// A start failure is printed on stderr; with a log file, logged there too.
	failStart := func(err error) {
		reportStart(e, err)
		if logFile != nil {
			log.Error("gw could not start", startAttrs(err)...)
		}
	}

	// The first SIGTERM or SIGINT cancels ctx; stop() then restores the
	// default action, so a second one kills gw if draining hangs.
	sigCtx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// A successful upgrade (SIGUSR2) ends this gw too: handOver records
	// the new gw's pid and cancels ctx.
	ctx, cancel := context.WithCancel(sigCtx)
	defer cancel()
	var handedTo atomic.Int64
	handOver := func(pid int) { handedTo.Store(int64(pid)); cancel() }
	// SIGHUP's default action would kill gw: catch it before any app
	// starts, so no HUP can slip in between. It reloads once gw serves.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var wg sync.WaitGroup
	defer wg.Wait()
	hupCtx, hupDone := context.WithCancel(context.Background())
	defer hupDone()
	// SIGUSR1 reopens the log files (logrotate renamed them). It is
	// caught even with no file to reopen: its default action kills gw.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	wg.Add(1)
	// Ended by hupDone when run returns.
	go func() { defer wg.Done(); reopenOnUSR1(hupCtx, usr1, reopenable(logFile, access), log) }()
	// SIGUSR2 (upgrade) would kill gw too: caught from the start, acted on
	// once gw serves.
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)

	// version(), as `gw version` prints it, so /stats agrees with it.
	gateway.Version = version()
	// Read (and unset, so no runner inherits them) before any runner exists.
	notify := systemd.NewNotifier()
	activated, err := activatedListeners(cfg)
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	// A gw started by an upgrade takes the old one's sockets instead.
	upg, in, err := inherit(cfg)
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	if upg != nil {
		activated, notify = in.lns, in.notify
	}
	starter := os.Geteuid() // before any drop: who may use the control socket
	drop, err := runnerUsers(cfg)
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	g, err := gateway.New(cfg, log)
	if err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("gateway: %w", err)}
	}
	g.InheritPacketConns(in.pcs)
	g.InheritUwsgiLocks(in.locks)
	helper, err := listenAs(g, activated, drop, cfg, log)
	if err != nil {
		failStart(err)
		return &exitError{code: exitFailure}
	}
	// On return, so after the gateway's shutdown: the helper removes the
	// runtime directory that gw, no longer root, may not.
	defer closeHelper(helper, log)
	if err := g.Start(ctx); err != nil {
		// Shutdown releases whatever Start got up before it failed, so no
		// runner outlives gw even if Start left one behind.
		shutdown(g, cfg, log)
		if ctx.Err() != nil {
			return nil // interrupted while starting: a clean stop
		}
		failStart(err)
		return &exitError{code: exitFailure}
	}
	// A HUP that came while starting is moot (the config just loaded is
	// the one serving); drop it before saying we serve, so a HUP sent after
	// the "gw serving" line always reloads.
	select {
	case <-hup:
		log.Warn("SIGHUP during start-up ignored: the config just loaded is the one serving")
	default:
	}
	// Reload on change (--reload, touch_reload): started once the apps
	// serve, stopped first when gw stops or hands over to a new gw.
	sw := newSourceWatch(g, log)
	defer sw.stop()
	load := func(serving []string) (*config.Config, error) {
		cfg, err := config.Load(config.Sources{Flags: cmd.Flags(), Environ: e.environ, File: file, Args: a, Serving: serving})
		if err != nil {
			return nil, err
		}
		refuseUsers(cfg)
		if _, err := runnerUsers(cfg); err != nil {
			return nil, err
		}
		return cfg, nil
	}
	// The apps directory (apps_dir:): watched from now on, like the sources.
	dw := newAppsDirWatch(g, log, load, sw.update)
	defer dw.stop()
	rl := &reloader{g: g, log: log, notify: notify, watch: sw, dir: dw,
		load: func() (*config.Config, error) { return load(dw.serving()) }}
	ctl := serveControl(g, rl, starter, log, &wg)
	ups := &upgrades{u: upg, g: g, listen: cfg.Listen, notify: notify, log: log, pidFile: cfg.PIDFile,
		parentWait: cfg.Limits.ShutdownTimeout + 5*time.Second}
	if helper != nil {
		ups.refuse = "gw dropped root (--uid) after binding; a new gw started by it could neither keep the " +
			"runners' shims root's nor read the TLS key: restart gw instead (docs/design/upgrade.md)"
	}
	defer ups.stop()
	// Watching before the "gw serving" line and before an upgrade's old gw
	// hands over: an edit is never missed between the two gws (one made
	// in the moment both watch reloads in both, harmlessly).
	sw.update()
	dw.reset(cfg)
	if err := ups.serving(); err != nil {
		// Serving is fine; a pid file or handshake that failed is not:
		// the old gw of an upgrade goes on serving when this one exits.
		log.Error("gw cannot report it serves", "err", err)
		sw.stop()
		dw.stop()
		shutdown(g, cfg, log)
		return &exitError{code: exitFailure}
	}
	log.Info("gw serving", append(servingAttrs(cfg, g.Listeners()), "pid", os.Getpid())...)
	if upg == nil {
		// After an upgrade the old gw tells systemd, with MAINPID.
		notifyOrWarn(notify, log, systemd.Ready)
	}
	wg.Add(1)
	// Ended by hupDone when run returns, or by a successful upgrade.
	go func() { defer wg.Done(); ups.run(hupCtx, usr2, handOver) }()
	wg.Add(1)
	// Ended by hupDone when run returns.
	go func() { defer wg.Done(); reloadOnHUP(hupCtx, hup, rl) }()

	<-ctx.Done()
	stop()
	sw.stop()
	dw.stop()
	if pid := handedTo.Load(); pid != 0 {
		// The new gw accepts on the same sockets already: no delay, no
		// STOPPING (systemd follows the new main pid), and the unix
		// socket paths and the pid file are the new gw's now.
		g.HandOver()
		stopControl(ctl, log)
		log.Info("gw draining after the upgrade", "new_pid", pid, "timeout", cfg.Limits.ShutdownTimeout)
		if err := shutdown(g, cfg, log); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return &exitError{code: exitFailure}
		}
		return nil
	}
	ups.stop()
	defer ups.removePIDFile()
	stopControl(ctl, log)
	notifyOrWarn(notify, log, systemd.Stopping)
	// Load balancers and Kubernetes take a while to notice /readyz; until
	// they have, new requests still arrive and must be served.
	g.SetUnready()
	if d := cfg.Limits.ShutdownDelay; d > 0 {
		log.Info("gw unready, still serving", "delay", d)
		time.Sleep(d)
	}
	log.Info("gw stopping", "timeout", cfg.Limits.ShutdownTimeout)
	if err := shutdown(g, cfg, log); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return &exitError{code: exitFailure}
	}
	return nil
}

// newLogger makes gw's own log, in the --log-format format.
func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// logReopener is a log file SIGUSR1 reopens at its path.
type logReopener interface {
	Reopen() error
	Path() string
}

// namedLog is a log file and what gw's log calls it.
type namedLog struct {
	name string // "log", "access log"
	f    logReopener
}

// reopenable lists the log files gw writes to: gw's own (nil when it
// logs to stderr) and the access log's own file, if any.
func reopenable(logFile *logfile.File, access *accesslog.Logger) []namedLog {
	var out []namedLog
	if logFile != nil {
		out = append(out, namedLog{"log", logFile})
	}
	if access.Path() != "" {
		out = append(out, namedLog{"access log", access})
	}
	return out
}

// reopenOnUSR1 reopens the log files at each SIGUSR1 until ctx ends. Each
// file's line is logged after its reopen: in the new file for gw's log.
func reopenOnUSR1(ctx context.Context, usr1 <-chan os.Signal, logs []namedLog, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-usr1:
		}
		if len(logs) == 0 {
			log.Info("SIGUSR1: no log file to reopen")
			continue
		}
		for _, l := range logs {
			if err := l.f.Reopen(); err != nil {
				log.Error("SIGUSR1: "+l.name+" not reopened; still writing to the old file", "path", l.f.Path(), "err", err)
				continue
			}
			log.Info("SIGUSR1: "+l.name+" reopened", "path", l.f.Path())
		}
	}
}

// shutdown drains g within the configured bound. Running out of time is
// the bound doing its job, so it is logged but is still a clean stop.
func shutdown(g *gateway.Gateway, cfg *config.Config, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.ShutdownTimeout)
	defer cancel()
	err := g.Shutdown(ctx)
	if err != nil {
		log.Error("shutdown", "err", err)
	}
	return err
}

// reloadOnHUP reloads gw at each SIGHUP until ctx ends.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, rl *reloader) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		rl.log.Info("SIGHUP: reloading")
		rl.reload(ctx)
	}
}

// reloader reloads gw: at SIGHUP and at gw ctl reload, the same way.
type reloader struct {
	g      *gateway.Gateway
	log    *slog.Logger
	notify *systemd.Notifier
	load   func() (*config.Config, error) // the config, read again from the same sources
	watch  *sourceWatch                   // rebuilt after each reload: the apps may have changed
	dir    *appsDirWatch                  // takes the reload's apps directory as applied
}

// reload reads the config again and boots a new generation from it. A
// config with problems is rejected and the running generation keeps
// serving, as it does when the new generation fails to start; the error
// says why.
func (rl *reloader) reload(ctx context.Context) error {
	notifyOrWarn(rl.notify, rl.log, systemd.Reloading()...)
	// Ready again either way: a failed reload leaves the running
	// generation serving.
	defer notifyOrWarn(rl.notify, rl.log, systemd.Ready)
	cfg, err := rl.load()
	if err != nil {
		rl.log.Error("reload: config rejected; the running generation keeps serving", "err", err)
		return fmt.Errorf("config rejected, the running generation keeps serving: %w", err)
	}
	rl.dir.keep(cfg, rl.g.Config())
	if err := rl.g.Reload(ctx, cfg); err != nil {
		rl.log.Error("reload failed", startAttrs(err)...)
		return err
	}
	rl.watch.update()
	if rl.dir != nil {
		rl.dir.reset(cfg)
	}
	return nil
}

// notifyOrWarn tells systemd (when gw runs under it) about a state change.
// A lost message is worth a warning, not a stop: gw serves either way.
func notifyOrWarn(n *systemd.Notifier, log *slog.Logger, state ...string) {
	if err := n.Notify(state...); err != nil {
		log.Warn("systemd notify", "state", state, "err", err)
	}
}

// activatedListeners returns the sockets systemd passed (socket
// activation), by the name of the listener each one stands for.
func activatedListeners(cfg *config.Config) (map[string]net.Listener, error) {
	ls, err := systemd.Listeners()
	if err != nil || len(ls) == 0 {
		return nil, err
	}
	return systemd.Match(ls, gateway.Protocols(cfg.Listen))
}

// listenAs binds g's listeners, then, when drop is set, makes gw that user
// for good: after binding, so privileged ports work, and before any runner
// starts. Gw drops so that the code handling client bytes (HTTP parsing,
// static files) never runs as root; nginx's workers drop for the same
// reason. What gw still needs root for afterwards is prepared first: the
// runtime directory with the shims, root's so the app's user (now gw's
// too) cannot rewrite them, and the privileged helper that re-reads the
// HTTPS key at SIGHUP and removes that directory at the end.
func listenAs(g *gateway.Gateway, activated map[string]net.Listener, drop *syscall.Credential,
	cfg *config.Config, log *slog.Logger) (*privsep.Helper, error) {
	var helper *privsep.Helper
	if drop != nil {
		var err error
		if helper, err = keepPrivileged(g, drop, cfg); err != nil {
			return nil, err
		}
		// Before Listen, which makes the directory as root otherwise.
		if err := acmeStorageFor(cfg.Listen.TLS.ACME, drop); err != nil {
			closeHelper(helper, log)
			return nil, err
		}
	}
	if err := g.Listen(activated); err != nil {
		closeHelper(helper, log)
		return nil, err
	}
	if drop == nil {
		if os.Geteuid() == 0 && cfg.User != "" {
			log.Info("gw keeps root: not every app's runners run as --uid/--gid, and only root can start runners as other users")
		}
		return nil, nil
	}
	if err := proc.Drop(drop); err != nil {
		g.CloseListeners()
		closeHelper(helper, log)
		return nil, fmt.Errorf("run as %s: %w", cfg.User, err)
	}
	log.Info("gw dropped root", "uid", drop.Uid, "gid", drop.Gid, "helper", helper.PID())
	return helper, nil
}

// acmeStorageFor makes the ACME storage directory, when it does not exist
// yet, owned by the user gw drops to: renewal runs as that user. One that
// exists is left as it is (it may be shared, or the user's own choice).
func acmeStorageFor(a *config.ACME, drop *syscall.Credential) error {
	if a == nil {
		return nil
	}
	if _, err := os.Stat(a.Storage); err == nil {
		return nil
	}
	if err := os.MkdirAll(a.Storage, 0o700); err != nil {
		return fmt.Errorf("acme storage: %w", err)
	}
	if err := os.Chown(a.Storage, int(drop.Uid), int(drop.Gid)); err != nil {
		return fmt.Errorf("acme storage: %w", err)
	}
	return nil
}

// keepPrivileged makes, while gw is root, the runtime directory and the
// helper that keeps root, and hands both to g.
func keepPrivileged(g *gateway.Gateway, drop *syscall.Credential, cfg *config.Config) (*privsep.Helper, error) {
	rt, err := runners.NewRuntime(drop)
	if err != nil {
		return nil, err
	}
	// The running binary, even if replaced on disk since it started.
	helper, err := privsep.Start("/proc/self/exe", privsepCommand, privsep.Paths{
		Cert: cfg.Listen.TLS.Cert, Key: cfg.Listen.TLS.Key, RuntimeDir: rt.Dir,
	})
	if err != nil {
		rt.Remove()
		return nil, err
	}
	g.KeepPrivileged(rt, helper.KeyPair)
	return helper, nil
}

func closeHelper(h *privsep.Helper, log *slog.Logger) {
	if err := h.Close(); err != nil {
		log.Warn("privileged helper", "err", err)
	}
}

// runnerUsers settles, in place, who each app's runners run as (an app
// without uid:/gid: takes --uid/--gid) and checks that gw may start them.
// Runners never run as root unless asked: by --allow-root, or by naming
// root. It returns the credential gw drops to after binding: --uid's, when
// every app's runners run as exactly that. A gw that must start runners as
// several users keeps root, since only root can.
func runnerUsers(cfg *config.Config) (drop *syscall.Credential, err error) {
	global, err := proc.LookupCredential(cfg.User, cfg.Group)
	if err != nil {
		return nil, err
	}
	euid := os.Geteuid()
	allSame := global != nil
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		if a.User == "" {
			a.User = cfg.User
			if a.Group == "" {
				a.Group = cfg.Group
			}
		}
		c, err := proc.LookupCredential(a.User, a.Group)
		if err != nil {
			return nil, fmt.Errorf("app %q: %w", a.Name, err)
		}
		uid := euid
		if c != nil {
			uid = int(c.Uid)
		}
		switch {
		case euid == 0 && uid == 0 && a.User == "" && !cfg.AllowRoot:
			return nil, fmt.Errorf("app %q: its runners would run as root; pass --uid USER (or uid: in its config) "+
				"to run them as another user, or --allow-root to run them as root", a.Name)
		case euid != 0 && uid != euid:
			return nil, fmt.Errorf("app %q: its runners are to run as uid %d, but gw runs as uid %d "+
				"(a gw that dropped root at start keeps the user it dropped to; restart it as root to change)", a.Name, uid, euid)
		}
		allSame = allSame && c != nil && c.Uid == global.Uid && c.Gid == global.Gid
	}
	// Daemons and cron jobs follow the same rules as an app's runners.
	for _, a := range attached(cfg) {
		p := a.p
		if p.User == "" {
			p.User = cfg.User
			if p.Group == "" {
				p.Group = cfg.Group
			}
		}
		c, err := proc.LookupCredential(p.User, p.Group)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", a.kind, p.Name, err)
		}
		uid := euid
		if c != nil {
			uid = int(c.Uid)
		}
		switch {
		case euid == 0 && uid == 0 && p.User == "" && !cfg.AllowRoot:
			return nil, fmt.Errorf("%s %q would run as root; pass --uid USER (or uid: in its entry), or --allow-root", a.kind, p.Name)
		case euid != 0 && uid != euid:
			return nil, fmt.Errorf("%s %q is to run as uid %d, but gw runs as uid %d", a.kind, p.Name, uid, euid)
		}
		allSame = allSame && c != nil && c.Uid == global.Uid && c.Gid == global.Gid
	}
	// An apps directory keeps root: its apps may come later, each with a
	// user of its own, as the Emperor's vassals do.
	if euid != 0 || !allSame || global.Uid == 0 || cfg.AppsDir != "" {
		return nil, nil
	}
	return global, nil
}

// attached returns the processes of cfg's daemons and cron jobs, to be
// settled in place, with their kind for errors.
func attached(cfg *config.Config) []attachedProc {
	var out []attachedProc
	for i := range cfg.Daemons {
		out = append(out, attachedProc{"daemon", &cfg.Daemons[i].Process})
	}
	for i := range cfg.Cron {
		out = append(out, attachedProc{"cron job", &cfg.Cron[i].Process})
	}
	return out
}

type attachedProc struct {
	kind string
	p    *config.Process
}

// reportLoad prints the problems of a config, one per line.
func reportLoad(e env, err error) error {
	var ps config.Problems
	if !errors.As(err, &ps) {
		return &exitError{code: exitFailure, err: fmt.Errorf("load config: %w", err)}
	}
	for _, p := range ps {
		fmt.Fprintln(e.stderr, p)
	}
	return &exitError{code: exitFailure}
}

// reportStart prints why an app could not start, and the language's own
// report (a Python traceback) when the runner gave one.
func reportStart(e env, err error) {
	fmt.Fprintf(e.stderr, "gw: %v\n", err)
	var se *proc.SpawnError
	if errors.As(err, &se) && se.Detail != "" {
		fmt.Fprintln(e.stderr, se.Detail)
	}
}

// startAttrs are reportStart's error and detail as log attributes.
func startAttrs(err error) []any {
	attrs := []any{"err", err}
	var se *proc.SpawnError
	if errors.As(err, &se) && se.Detail != "" {
		attrs = append(attrs, "detail", se.Detail)
	}
	return attrs
}
