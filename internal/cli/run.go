package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gwhq/gw/gateway"
	"github.com/gwhq/gw/internal/config"
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
	log := slog.New(slog.NewTextHandler(e.stderr, nil))

	// The first SIGTERM or SIGINT cancels ctx; stop() then restores the
	// default action, so a second one kills gw if draining hangs.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP's default action would kill gw: catch it before any app
	// starts, so no HUP can slip in between. It reloads once gw serves.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var wg sync.WaitGroup
	defer wg.Wait()
	hupCtx, hupDone := context.WithCancel(context.Background())
	defer hupDone()

	gateway.Version = Version
	g, err := gateway.New(cfg, log)
	if err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("gateway: %w", err)}
	}
	if err := g.Start(ctx); err != nil {
		// Shutdown releases whatever Start got up before it failed, so no
		// runner outlives gw even if Start left one behind.
		shutdown(g, cfg, log)
		if ctx.Err() != nil {
			return nil // interrupted while starting: a clean stop
		}
		reportStart(e, err)
		return &exitError{code: exitFailure}
	}
	log.Info("gw serving", servingAttrs(cfg, g.Listeners())...)
	select {
	case <-hup:
		log.Warn("SIGHUP during start-up ignored: the config just loaded is the one serving")
	default:
	}
	wg.Add(1)
	// Ended by hupDone when run returns.
	go func() {
		defer wg.Done()
		reloadOnHUP(hupCtx, hup, g, log, func() (*config.Config, error) {
			return config.Load(config.Sources{Flags: cmd.Flags(), Environ: e.environ, File: file, Args: a})
		})
	}()

	<-ctx.Done()
	stop()
	log.Info("gw stopping", "timeout", cfg.Limits.ShutdownTimeout)
	if err := shutdown(g, cfg, log); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return &exitError{code: exitFailure}
	}
	return nil
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

// reloadOnHUP reloads gw at each SIGHUP until ctx ends: the config is read
// again from the same sources; one with problems is rejected and the
// running generation keeps serving, as it does when the new generation
// fails to start.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, g *gateway.Gateway, log *slog.Logger,
	load func() (*config.Config, error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		log.Info("SIGHUP: reloading")
		cfg, err := load()
		if err != nil {
			log.Error("reload: config rejected; the running generation keeps serving", "err", err)
			continue
		}
		if err := g.Reload(ctx, cfg); err != nil {
			attrs := []any{"err", err}
			var se *proc.SpawnError
			if errors.As(err, &se) && se.Detail != "" {
				attrs = append(attrs, "detail", se.Detail)
			}
			log.Error("reload failed", attrs...)
		}
	}
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
