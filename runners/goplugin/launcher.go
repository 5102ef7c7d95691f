package goplugin

import (
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"

	"github.com/gwhq/gw/internal/hostenv"
	"github.com/gwhq/gw/proto/pluginpb"
	"github.com/gwhq/gw/runners/goplugin/internal/wire"
	"github.com/gwhq/gw/runners/lifecycle"
	"github.com/gwhq/gw/runners/pool"
	"github.com/gwhq/gw/runners/proc"
)

// Launcher starts plugin processes for one app: each Launch is one process,
// one pool.Worker serving up to Slots requests at once.
type Launcher struct {
	App  string
	Path string // the plugin binary
	// Env is the plugin's whole environment (nil: gw's own). go-plugin
	// adds its handshake variables.
	Env []string
	// Slots is how many requests one process serves at once (default 32).
	Slots int
	// Checksum, when set, is the sha256 the binary must have; it is
	// checked before every start. The file could still change between
	// the check and the exec: keep it where only its owner can write.
	Checksum []byte
	// StartTimeout bounds the start up to the first health check
	// (default 10s). A binary that exits early fails at once.
	StartTimeout time.Duration
	PingEvery    time.Duration // default 5s
	PingTimeout  time.Duration // default 10s
	// SockDir is where go-plugin makes each plugin's socket directory
	// ("" = the system temp dir). With Cred, Cred's user must be able to
	// enter it.
	SockDir string
	Dir     string              // working directory ("" = gw's)
	Cred    *syscall.Credential // user and groups to run as (proc.LookupCredential); nil = gw's
	Log     *slog.Logger
}

var (
	_ pool.Launcher    = (*Launcher)(nil)
	_ pool.Worker      = (*worker)(nil)
	_ pool.StackDumper = (*worker)(nil)
)

func (l *Launcher) slots() int                  { return orDefault(l.Slots, 32) }
func (l *Launcher) startTimeout() time.Duration { return orDefault(l.StartTimeout, 10*time.Second) }
func (l *Launcher) pingEvery() time.Duration    { return orDefault(l.PingEvery, 5*time.Second) }
func (l *Launcher) pingTimeout() time.Duration  { return orDefault(l.PingTimeout, 10*time.Second) }

func orDefault[T int | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// Launch starts one plugin process and returns once it has completed the
// go-plugin handshake and answered a health check. Failures are
// *proc.SpawnError.
func (l *Launcher) Launch(ctx context.Context, id int) (pool.Worker, error) {
	log := l.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("app", l.App, "worker", id)
	fail := func(stage proc.Stage, err error, detail string) error {
		return &proc.SpawnError{App: l.App, Worker: id, Stage: stage, Err: err, Detail: detail}
	}
	// Absolute, so a bare "myplugin" means the file here, as the checks
	// below take it, and not a search of PATH.
	path, err := filepath.Abs(l.Path)
	if err != nil {
		return nil, fail(proc.StageExec, fmt.Errorf("plugin binary: %w", err), "")
	}
	if stage, err := check(path, l.Checksum); err != nil {
		return nil, fail(stage, err, "")
	}
	environ := l.Env
	if environ == nil {
		environ = hostenv.Environ()
	}
	p := newProcess(path, append(environ[:len(environ):len(environ)], wire.SlotsEnv+"="+strconv.Itoa(l.slots())))
	p.dir, p.cred = l.Dir, l.Cred
	stdout, stderr := lineLogger(log, p.PID, "stdout"), lineLogger(log, p.PID, "stderr")
	t := &transport{path: path, proc: p, lines: []*lineWriter{stdout, stderr}, quit: make(chan struct{})}
	t.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake(),
		VersionedPlugins: wire.VersionedPlugins(plugin.PluginSet{wire.PluginName: hostPlugin{}}),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		RunnerFunc: func(_ hclog.Logger, cmd *exec.Cmd, sockDir string) (runner.Runner, error) {
			if err := p.prepare(cmd.Env, sockDir); err != nil {
				return nil, err
			}
			return p, nil
		},
		SkipHostEnv: true, // Env already is the whole environment
		// Only a backstop: the lifecycle's ready timeout, which covers
		// the first health check too, ends the start first.
		StartTimeout:     2 * l.startTimeout(),
		Stderr:           newLineWriter(p.tail.add),
		SyncStdout:       stdout,
		SyncStderr:       stderr,
		Logger:           newHCLogger(log, filepath.Base(path), p.PID),
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: l.SockDir},
	})
	run, err := lifecycle.Run(ctx, lifecycle.Options{
		App: l.App, Worker: id, Kind: "plugin", Awaits: "go-plugin handshake from " + path,
		ReadyTimeout: l.startTimeout(), PingEvery: l.pingEvery(), PingTimeout: l.pingTimeout(), Log: log,
	}, p, t)
	if err != nil {
		return nil, err
	}
	w := &worker{
		Runner: run, proc: p, handler: pluginpb.NewHandlerClient(t.conn),
		slots: l.slots(), aborts: make([]context.CancelCauseFunc, l.slots()),
	}
	if t.client.NegotiatedVersion() >= wire.RawVersion {
		w.raw = p.raw // a plugin built against an older SDK never reads it
	}
	log.Info("runner ready", "pid", w.PID(), "runtime", "go-plugin", "slots", w.slots, "protocol", t.client.NegotiatedVersion())
	return w, nil
}

// check refuses, before anything runs, a binary that cannot be a plugin:
// missing, not executable, the wrong checksum, or a Go program that does
// not even link go-plugin (which would otherwise cost StartTimeout).
func check(path string, checksum []byte) (proc.Stage, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return proc.StageExec, fmt.Errorf("plugin binary: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return proc.StageExec, fmt.Errorf("plugin binary %s is not an executable file (mode %v)", path, fi.Mode())
	}
	if len(checksum) > 0 {
		sc := &plugin.SecureConfig{Checksum: checksum, Hash: sha256.New()}
		ok, err := sc.Check(path)
		if err != nil {
			return proc.StageExec, fmt.Errorf("checksum of %s: %w", path, err)
		}
		if !ok {
			return proc.StageExec, fmt.Errorf("%s: %w with the configured sha256", path, plugin.ErrChecksumsDoNotMatch)
		}
	}
	if bi, err := buildinfo.ReadFile(path); err == nil && !linksGoPlugin(bi) {
		return proc.StageHandshake, fmt.Errorf("%s is a Go program built without github.com/hashicorp/go-plugin, so not a gw Go plugin "+
			"(its main must call sdk.Serve from github.com/gwhq/gw/runners/goplugin/sdk)", path)
	}
	return "", nil
}

func linksGoPlugin(bi *buildinfo.BuildInfo) bool {
	for _, d := range bi.Deps {
		if d.Path == "github.com/hashicorp/go-plugin" {
			return true
		}
	}
	return false
}

// notes describes the binary for a failed handshake, as go-plugin's
// Diagnose does, but in terms of what a gw plugin must be.
func notes(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("note: %s is not a Go executable; gw Go plugins are Go programs whose main calls sdk.Serve", path)
	}
	goarch := ""
	for _, s := range bi.Settings {
		if s.Key == "GOARCH" {
			goarch = s.Value
		}
	}
	if goarch != "" && goarch != runtime.GOARCH {
		return fmt.Sprintf("note: %s is built for GOARCH=%s, this machine is %s", path, goarch, runtime.GOARCH)
	}
	return fmt.Sprintf("note: %s is a Go program built with %s (module %s)", path, bi.GoVersion, bi.Main.Path)
}

// notesOnFailure adds notes where the binary itself is the likely cause.
func notesOnFailure(stage proc.Stage, path string) string {
	if stage == proc.StageHandshake || stage == proc.StageReadyTimeout {
		return notes(path)
	}
	return ""
}

// hostPlugin dispenses the gRPC connection itself: the worker makes its own
// Handler client and health checks on it.
type hostPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (hostPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("goplugin: the host serves no plugin")
}

func (hostPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}
