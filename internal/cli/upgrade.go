package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gwhq/gw/gateway"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/systemd"
	"github.com/gwhq/gw/internal/upgrade"
	"github.com/gwhq/gw/runners"
)

// upgradeTimeout bounds how long the old gw waits for the new one to be
// ready: its runners' own bound plus time to load the config and bind.
const upgradeTimeout = runners.ReadyTimeout + 30*time.Second

// notifyKey is the name the systemd notification socket is passed under.
const notifyKey = "systemd-notify"

// upgrades carries out SIGUSR2 (docs/design/upgrade.md) for one gw. It
// owns the process's Upgrader: made at start by a gw an upgrade started
// (it holds the old gw's sockets), else once gw serves.
type upgrades struct {
	u       *upgrade.Upgrader
	g       *gateway.Gateway
	listen  config.Listen // the addresses the sockets are known by
	notify  *systemd.Notifier
	log     *slog.Logger
	pidFile string
	refuse  string // why this gw cannot upgrade ("" = it can)
	// parentWait bounds the wait for the gw this one replaced to finish
	// draining, when a SIGUSR2 comes before it has (its drain bound).
	parentWait time.Duration
}

// inherited is what a gw an upgrade started takes from the old one.
type inherited struct {
	lns    map[string]net.Listener
	pcs    map[string]net.PacketConn // the HTTP/3 listener's UDP socket
	notify *systemd.Notifier
	locks  map[string]*os.File // Python apps' uwsgi lock files, by app name
}

// uwsgiLockKey names a Python app's uwsgi lock file among the passed files.
func uwsgiLockKey(app string) string { return "uwsgi-lock/" + app }

// inherit is the start of a gw an upgrade started: it takes the old gw's
// sockets, by listener name and configured address, and its systemd
// notification socket. It returns a nil Upgrader otherwise.
func inherit(cfg *config.Config) (*upgrade.Upgrader, inherited, error) {
	var in inherited
	if !upgrade.Started() {
		return nil, in, nil
	}
	u, err := upgrade.New(upgradeTimeout)
	if err != nil {
		return nil, in, err
	}
	in.lns = map[string]net.Listener{}
	for _, a := range gateway.Addrs(cfg.Listen) {
		ln, err := u.Listener(a.Name, a.Addr.String())
		if err != nil {
			return nil, in, err
		}
		if ln != nil {
			in.lns[a.Name] = ln
		}
	}
	if a := cfg.Listen.HTTP3; !a.IsZero() {
		pc, err := u.PacketConn("http3", a.String())
		if err != nil {
			return nil, in, err
		}
		if pc != nil {
			in.pcs = map[string]net.PacketConn{"http3": pc}
		}
	}
	for _, app := range cfg.Apps {
		f, err := u.File(uwsgiLockKey(app.Name))
		if err != nil {
			return nil, in, err
		}
		if f != nil {
			if in.locks == nil {
				in.locks = map[string]*os.File{}
			}
			in.locks[app.Name] = f
		}
	}
	f, err := u.File(notifyKey)
	if err != nil {
		return nil, in, err
	}
	if f != nil {
		if in.notify, err = systemd.NotifierFromFile(f); err != nil {
			return nil, in, err
		}
	}
	return u, in, nil
}

// serving is called once gw serves: it makes the sockets passable to a
// next gw, writes the pid file and, in a gw an upgrade started, tells the
// old gw to go. Ready comes here, long before a SIGUSR2 can ask for an
// Upgrade: tableflip refuses one that races its Ready.
func (s *upgrades) serving() error {
	if s.u == nil && s.refuse == "" {
		u, err := upgrade.New(upgradeTimeout)
		if err != nil {
			// gw serves without; only a second gw run in one process
			// (tests) gets here: tableflip allows one Upgrader per process.
			s.refuse = err.Error()
			s.log.Warn("upgrades (SIGUSR2) unavailable", "err", err)
		}
		s.u = u
	}
	if s.u != nil {
		if err := s.pass(); err != nil {
			return err
		}
	}
	if s.pidFile != "" {
		if err := writePIDFile(s.pidFile); err != nil {
			return err
		}
	}
	if s.u != nil {
		return s.u.Ready()
	}
	return nil
}

// pass registers every socket (and the systemd one) for the next gw.
func (s *upgrades) pass() error {
	socks := s.g.Sockets()
	for _, a := range gateway.Addrs(s.listen) {
		if ln := socks[a.Name]; ln != nil {
			if err := s.u.Pass(a.Name, a.Addr.String(), ln); err != nil {
				return err
			}
		}
	}
	if pc := s.g.PacketConns()["http3"]; pc != nil {
		if err := s.u.PassPacketConn("http3", s.listen.HTTP3.String(), pc); err != nil {
			return err
		}
	}
	if s.notify == nil {
		return nil
	}
	f, err := s.notify.File()
	if err != nil {
		return err
	}
	defer f.Close()
	return s.u.PassFile(notifyKey, f)
}

// run upgrades gw at each SIGUSR2 until one succeeds (then it calls
// handOver with the new gw's pid and returns) or ctx ends.
func (s *upgrades) run(ctx context.Context, usr2 <-chan os.Signal, handOver func(pid int)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-usr2:
		}
		if s.refuse != "" {
			s.log.Error("SIGUSR2: upgrade refused; this gw keeps serving", "reason", s.refuse)
			continue
		}
		s.log.Info("SIGUSR2: upgrading: starting a new gw on the same sockets", "exe", os.Args[0])
		pid, err := s.upgrade()
		if err != nil {
			s.log.Error("upgrade failed; this gw keeps serving", "err", err)
			continue
		}
		s.log.Info("upgrade: the new gw serves; this one stops accepting and drains", "new_pid", pid)
		handOver(pid)
		return
	}
}

func (s *upgrades) upgrade() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.parentWait)
	defer cancel()
	if err := s.u.WaitForParent(ctx); err != nil {
		return 0, err
	}
	// Now, not at serving: apps a reload added since have lock files too.
	for app, f := range s.g.UwsgiLocks() {
		if err := s.u.PassFile(uwsgiLockKey(app), f); err != nil {
			return 0, err
		}
	}
	notifyOrWarn(s.notify, s.log, systemd.Reloading()...)
	pid, err := s.u.Upgrade()
	if err != nil {
		notifyOrWarn(s.notify, s.log, systemd.Ready)
		return 0, err
	}
	// Only the main process may say so (NotifyAccess=main); the new gw is
	// main once systemd has this.
	notifyOrWarn(s.notify, s.log, systemd.MainPID(pid), systemd.Ready)
	return pid, nil
}

// stop abandons an upgrade in progress (its new gw is killed) at a stop.
func (s *upgrades) stop() {
	if s.u != nil {
		s.u.Stop()
	}
}

// removePIDFile removes the pid file at a stop, unless it names another
// process by now.
func (s *upgrades) removePIDFile() {
	if s.pidFile == "" {
		return
	}
	b, err := os.ReadFile(s.pidFile)
	if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(s.pidFile)
	}
}

// writePIDFile writes this process's pid to path whole or not at all (a
// temporary file renamed over it), so a reader never sees it half written.
func writePIDFile(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	defer os.Remove(f.Name()) // gone after the rename; left only on error
	_, err = fmt.Fprintf(f, "%d\n", os.Getpid())
	err = errors.Join(err, f.Chmod(0o644), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}
