package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gwhq/gw/gateway"
	"github.com/gwhq/gw/gateway/control"
)

// The server side: gw run serves its control socket.

// controlled is the gateway as the control socket drives it: reloads read
// the config file again, as SIGHUP's do.
type controlled struct {
	g  *gateway.Gateway
	rl *reloader
}

// Status is the gateway's, with the apps directory's file of each app.
func (c controlled) Status() control.Status {
	s := c.g.Status()
	if c.rl.dir != nil {
		files := c.rl.dir.fileNames()
		for i := range s.Apps {
			s.Apps[i].File = files[s.Apps[i].Name]
		}
	}
	return s
}

func (c controlled) Reload(ctx context.Context) error { return c.rl.reload(ctx) }
func (c controlled) RestartApp(ctx context.Context, name string) error {
	return c.g.RestartApp(ctx, name)
}
func (c controlled) DrainApp(ctx context.Context, name string) error { return c.g.DrainApp(ctx, name) }
func (c controlled) ScaleApp(ctx context.Context, name string, n int) error {
	return c.g.ScaleApp(ctx, name, n)
}

func (c controlled) ReloadApp(ctx context.Context, name string) error {
	cfg, err := c.rl.load()
	if err != nil {
		return fmt.Errorf("config rejected, the running app keeps serving: %w", err)
	}
	c.rl.dir.keep(cfg, c.g.Config()) // an app whose file is refused reloads as it runs
	if err := c.g.ReloadApp(ctx, cfg, name); err != nil {
		return err
	}
	c.rl.watch.update() // its touch_reload or reload: may have changed
	return nil
}

var _ control.Controller = controlled{}

// serveControl serves g's control socket, if it has one, until
// stopControl; wg waits for it. owner is the uid gw started as, which
// bound the socket: with root it may use it, not the user gw dropped to.
func serveControl(g *gateway.Gateway, rl *reloader, owner int, log *slog.Logger, wg *sync.WaitGroup) *control.Server {
	ln := g.ControlListener()
	if ln == nil {
		return nil
	}
	srv := control.New(controlled{g, rl}, owner, gateway.Version, log)
	wg.Add(1)
	// Serve returns at stopControl.
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket failed", "err", err)
		}
	}()
	return srv
}

// stopControl closes the control socket first at a stop, so no reload or
// restart starts while gw drains.
func stopControl(srv *control.Server, log *slog.Logger) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("control socket: an action was still running at the stop", "err", err)
	}
}

// The client side: gw ctl.

// defaultControl is where gw ctl looks when neither --socket nor
// GW_CONTROL says (the path shared/spec/interface.md shows).
const defaultControl = "/run/gw/control.sock"

func newCtl(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ctl [--socket PATH] status [APP] | reload [APP] | restart APP | scale APP N | drain APP | stop APP",
		Short: "Control a running gw through its control socket (listen.control)",
		Long: "Control a running gw through its control socket, the unix socket given by listen.control " +
			"(--control) to gw run. Only root and the user gw runs as may use it.\n\n" +
			"  status [APP]    every app (or APP), its runners and their state (--json for the raw answer)\n" +
			"  reload          re-read the config file and start a new generation, as SIGHUP does\n" +
			"  reload APP      re-read the config file and rebuild only APP's runners\n" +
			"  restart APP     replace APP's runners one by one, config unchanged (boots a drained APP)\n" +
			"  scale APP N     run N runners for APP\n" +
			"  drain APP       APP takes no new requests (503), finishes the running ones, its runners stop\n" +
			"  stop APP        the same as drain APP",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(e.stderr)
			_ = cmd.Help()
			return &exitError{code: exitUsage}
		},
	}
	cmd.PersistentFlags().String("socket", "", "control socket `PATH` (default: $GW_CONTROL, else "+defaultControl+")")
	cmd.PersistentFlags().Duration("timeout", 2*time.Minute, "longest wait for an action (`DURATION`): booting runners takes a while")
	status := &cobra.Command{
		Use: "status [APP] [--json]", Short: "Show every app (or APP) and its runners", Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			asJSON, _ := cmd.Flags().GetBool("json")
			return ctlStatus(e, cmd, asJSON, a)
		},
	}
	status.Flags().Bool("json", false, "print the raw JSON answer")
	cmd.AddCommand(status,
		ctlAction(e, "reload [APP]", "Reload the config (every app, or only APP)", cobra.MaximumNArgs(1)),
		ctlAction(e, "restart APP", "Replace APP's runners one by one", cobra.ExactArgs(1)),
		ctlAction(e, "scale APP N", "Run N runners for APP", cobra.ExactArgs(2)),
		ctlAction(e, "drain APP", "Stop APP: no new requests, runners stop", cobra.ExactArgs(1)),
	)
	if drain, _, err := cmd.Find([]string{"drain"}); err == nil {
		drain.Aliases = []string{"stop"}
	}
	return cmd
}

func ctlAction(e env, use, short string, n cobra.PositionalArgs) *cobra.Command {
	action, _, _ := strings.Cut(use, " ")
	return &cobra.Command{
		Use: use, Short: short, Args: args(n),
		RunE: func(cmd *cobra.Command, a []string) error {
			path, body := "/v1/reload", []byte(nil)
			if len(a) > 0 {
				path = "/v1/apps/" + a[0] + "/" + action
			}
			if action == "scale" {
				n, err := strconv.Atoi(a[1])
				if err != nil || n < 0 {
					return usageError(fmt.Errorf("scale: N must be a whole number >= 0, got %q", a[1]))
				}
				body, _ = json.Marshal(control.Scale{Workers: &n})
			}
			c, err := dialCtl(e, cmd)
			if err != nil {
				return ctlFail(e, err)
			}
			var res control.Result
			if err := c.call(context.Background(), http.MethodPost, path, body, &res); err != nil {
				return ctlFail(e, err)
			}
			fmt.Fprintln(e.stdout, res.Message)
			return nil
		},
	}
}

func ctlStatus(e env, cmd *cobra.Command, asJSON bool, app []string) error {
	c, err := dialCtl(e, cmd)
	if err != nil {
		return ctlFail(e, err)
	}
	path := "/v1/status"
	if len(app) == 1 {
		path = "/v1/apps/" + app[0]
	}
	var raw json.RawMessage
	if err := c.call(context.Background(), http.MethodGet, path, nil, &raw); err != nil {
		return ctlFail(e, err)
	}
	if asJSON {
		e.stdout.Write(append(raw, '\n'))
		return nil
	}
	if len(app) == 1 {
		var a control.AppStatus
		if err := json.Unmarshal(raw, &a); err != nil {
			return ctlFail(e, fmt.Errorf("%s: bad status answer: %w", c.path, err))
		}
		printApps(e.stdout, []control.AppStatus{a})
		return nil
	}
	var s control.Status
	if err := json.Unmarshal(raw, &s); err != nil {
		return ctlFail(e, fmt.Errorf("%s: bad status answer: %w", c.path, err))
	}
	fmt.Fprintf(e.stdout, "gw %s  pid %d  up %s  generation %d\n\n", s.Version, s.PID,
		time.Duration(s.Uptime*float64(time.Second)).Round(time.Second), s.Generation)
	printApps(e.stdout, s.Apps)
	return nil
}

// ctlFail reports err on one line: exit 1.
func ctlFail(e env, err error) error {
	fmt.Fprintf(e.stderr, "gw ctl: %v\n", err)
	return &exitError{code: exitFailure}
}

// ctlClient talks to one control socket.
type ctlClient struct {
	path    string
	http    *http.Client
	timeout time.Duration
}

// pingTimeout bounds the first exchange, which tells gw from a stale
// socket or another server: gw answers it at once.
const pingTimeout = 5 * time.Second

// dialCtl finds the control socket and checks that gw answers on it.
func dialCtl(e env, cmd *cobra.Command) (*ctlClient, error) {
	path, _ := cmd.Flags().GetString("socket")
	if path == "" {
		path = lookupEnv(e.environ, "GW_CONTROL")
	}
	if path == "" {
		path = defaultControl
	}
	path = strings.TrimPrefix(path, "unix:")
	timeout, _ := cmd.Flags().GetDuration("timeout")
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("no control socket at %s: is gw running with listen.control (--control unix:%s)?", path, path)
	case err != nil:
		return nil, err
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("%s is not a socket (mode %v)", path, fi.Mode())
	}
	c := &ctlClient{path: path, timeout: timeout, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	var p control.Ping
	if err := c.do(ctx, http.MethodGet, "/v1/ping", nil, &p); err != nil {
		return nil, err
	}
	return c, nil
}

// call makes one request within the client's timeout.
func (c *ctlClient) call(ctx context.Context, method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.do(ctx, method, path, body, out)
}

func (c *ctlClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://gw"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.dialError(ctx, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s: reading the answer: %w", c.path, err)
	}
	if resp.Header.Get(control.Header) == "" {
		return fmt.Errorf("%s is not gw's control socket: it answered %q without the %s header", c.path, resp.Status, control.Header)
	}
	if resp.StatusCode != http.StatusOK {
		var e control.Error
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			return fmt.Errorf("%s: %s", c.path, resp.Status)
		}
		return errors.New(e.Error)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: bad answer: %w", c.path, err)
	}
	return nil
}

// dialError says in user's terms why a request got no answer.
func (c *ctlClient) dialError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nobody is listening on %s: a stale socket, gw is not running", c.path)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s: permission denied: only root and the user gw runs as may use the control socket", c.path)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: no answer within %v: not gw's control socket, or gw is stuck", c.path, context.Cause(ctx))
	}
	return fmt.Errorf("%s does not speak gw's control protocol: %w", c.path, err)
}

func lookupEnv(environ []string, key string) string {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// printApps renders apps' status as readable tables.
func printApps(w io.Writer, apps []control.AppStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tLANG\tHOST/MOUNT\tSTATE\tRUNNERS\tMIN/MAX\tQUEUE\tEXITS\tFILE")
	for _, a := range apps {
		live := 0
		for _, r := range a.Runners {
			if r.State != "draining" {
				live++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s\t%s\t%d/%d\t%d/%d\t%d\t%s\t%s\n", a.Name, a.Lang, a.Host, a.Mount, a.State,
			live, a.Target, a.MinWorkers, a.MaxWorkers, a.Queue, exits(a.Exits), dash(a.File))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tRUNNER\tPID\tSTATE\tREQUESTS\tRSS")
	for _, a := range apps {
		for _, r := range a.Runners {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%s\n", a.Name, r.ID, r.PID, r.State, r.Requests, mib(uint64(r.RSS)))
		}
	}
	tw.Flush()
}

func exits(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return dash(strings.Join(parts, " "))
}
