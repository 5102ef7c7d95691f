// Package upgrade replaces a running gw by a new one, possibly a new binary,
// without closing a listening socket: the old gw starts the new one with
// its sockets inherited, waits until the new one serves, then drains and
// exits (SIGUSR2; docs/design/upgrade.md).
//
// The fd passing, the readiness handshake and the parent-exit signal are
// cloudflare/tableflip's; this package adds what gw needs on top: sockets
// keyed by gw's listener name and address, and the new gw's process id
// reported back to the old one (systemd must be told the new MAINPID, and
// only the old, main, process may tell it).
package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/cloudflare/tableflip"
)

// sentinel is the variable tableflip (v1.2.3, parent.go) sets for the
// process it starts. Started reads it so that a gw not started by an
// upgrade makes no Upgrader until it needs one (tableflip allows one per
// process, ever).
const sentinel = "TABLEFLIP_HAS_PARENT_7DIU3"

// reportKey names the socket each new gw sends its pid on.
const reportKey = "gw-upgrade-report"

// Started reports whether this process was started by an upgrade: a gw
// that hands its sockets over and waits for Ready.
func Started() bool { return os.Getenv(sentinel) != "" }

// Upgrader is this process's end of upgrades: the sockets it took over
// and will hand over. One per process (tableflip's rule).
type Upgrader struct {
	tf     *tableflip.Upgrader
	report *net.UnixConn // ours: new gws send their pid here
	parent *os.File      // the old gw's report socket (nil without one)
}

// New sets up upgrades for this process. When Started, it takes the old
// gw's sockets (Listener, File hand them out). timeout bounds how long
// Upgrade waits for a new gw to become ready before killing it.
func New(timeout time.Duration) (*Upgrader, error) {
	tf, err := tableflip.New(tableflip.Options{UpgradeTimeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	// Runners inherit gw's environment; none of them is tableflip's child.
	os.Unsetenv(sentinel)
	u := &Upgrader{tf: tf}
	if tf.HasParent() {
		if u.parent, err = tf.File(reportKey); err != nil {
			return nil, fmt.Errorf("upgrade: report socket: %w", err)
		}
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("upgrade: socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "report"), os.NewFile(uintptr(fds[1]), "report")
	defer theirs.Close() // AddFile keeps a copy for the new gw
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("upgrade: report socket: %w", err)
	}
	u.report = c.(*net.UnixConn)
	if err := tf.AddFile(reportKey, theirs); err != nil {
		return nil, fmt.Errorf("upgrade: report socket: %w", err)
	}
	return u, nil
}

// HasParent reports whether an old gw waits for this one's Ready.
func (u *Upgrader) HasParent() bool { return u.tf.HasParent() }

// key is how a listener is known across an upgrade: its gw name and the
// address configured for it. A new gw whose config moved a listener binds
// the new address; the old socket is closed at Ready.
func key(name, addr string) (network, address string) { return "gw-" + name, addr }

// Listener returns the socket the old gw passed for the listener name
// configured at addr, or nil (then bind one and Pass it). The key's
// network is never "unix", so tableflip never unlinks a socket path: gw
// decides that (gateway.HandOver).
func (u *Upgrader) Listener(name, addr string) (net.Listener, error) {
	return u.tf.Listener(key(name, addr))
}

// Pass registers ln, serving the listener name configured at addr, for
// the next gw. It passes a copy of the descriptor; ln itself is unchanged
// (a unix listener keeps removing its path at Close unless told not to).
func (u *Upgrader) Pass(name, addr string, ln net.Listener) error {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return fmt.Errorf("upgrade: %s listener %T has no descriptor", name, ln)
	}
	// fdOnly hides SetUnlinkOnClose, which tableflip would otherwise turn off.
	network, address := key(name, addr)
	return u.tf.AddListener(network, address, fdOnly{ln, sc})
}

// PacketConn returns the UDP socket the old gw passed for the listener
// name configured at addr (HTTP/3), or nil (then bind one and
// PassPacketConn it).
func (u *Upgrader) PacketConn(name, addr string) (net.PacketConn, error) {
	return u.tf.PacketConn(key(name, addr))
}

// PassPacketConn registers pc, serving the listener name configured at
// addr, for the next gw; like Pass, it passes a copy of the descriptor.
func (u *Upgrader) PassPacketConn(name, addr string, pc net.PacketConn) error {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return fmt.Errorf("upgrade: %s socket %T has no descriptor", name, pc)
	}
	network, address := key(name, addr)
	return u.tf.AddPacketConn(network, address, struct {
		net.PacketConn
		syscall.Conn
	}{pc, sc})
}

type fdOnly struct {
	net.Listener
	syscall.Conn
}

// File returns the file the old gw passed as name, or nil.
func (u *Upgrader) File(name string) (*os.File, error) { return u.tf.File(name) }

// PassFile registers a copy of f for the next gw, as name.
func (u *Upgrader) PassFile(name string, f *os.File) error { return u.tf.AddFile(name, f) }

// Ready says this gw serves: it reports its pid to the old gw (when
// Started), closes inherited sockets nobody took, and lets the old gw go.
// Upgrade needs it first, in every gw.
func (u *Upgrader) Ready() error {
	if u.parent != nil {
		_, err := u.parent.Write([]byte(strconv.Itoa(os.Getpid())))
		u.parent.Close()
		u.parent = nil
		if err != nil {
			return fmt.Errorf("upgrade: report to the old gw: %w", err)
		}
	}
	return u.tf.Ready()
}

// WaitForParent waits, until ctx ends, for the gw this one replaced to
// exit: an upgrade is refused while it still drains ("parent hasn't
// exited"), and its exit is seen a moment after it happens.
func (u *Upgrader) WaitForParent(ctx context.Context) error {
	if !u.tf.HasParent() {
		return nil
	}
	if err := u.tf.WaitForParent(ctx); err != nil {
		return fmt.Errorf("upgrade: the gw before this one has not exited: %w", err)
	}
	return nil
}

// Upgrade starts a new gw (this binary's path, os.Args[0], as it is on disk
// now, with the same arguments, environment and working directory), hands
// it every passed socket and waits until it is Ready. It returns the new
// gw's pid; from then on this gw must stop accepting and exit. On error
// (the new gw exited, or was not ready in time and was killed) this gw
// goes on as before and a later Upgrade may try again.
func (u *Upgrader) Upgrade() (pid int, err error) {
	u.drainReports()
	for try := 0; ; try++ {
		err = u.tf.Upgrade()
		// tableflip v1.2.3 learns of the parent's exit, and of Ready, in
		// its own loop, a moment after WaitForParent and Ready return (its
		// select may take the upgrade request first), so the first
		// request may still meet "parent hasn't exited" or "process is not
		// ready yet": ask again, briefly. gw asks only after Ready.
		if err == nil || !transient(err) || try == 20 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return 0, fmt.Errorf("upgrade: %w", err)
	}
	return u.readReport()
}

// transient reports whether err is one of tableflip's answers that its
// loop gives while it has not yet seen an event that already happened.
func transient(err error) bool {
	switch err.Error() {
	case "parent hasn't exited", "process is not ready yet":
		return true
	}
	return false
}

// drainReports drops what an earlier, failed new gw may have sent.
func (u *Upgrader) drainReports() {
	b := make([]byte, 32)
	u.report.SetReadDeadline(time.Now())
	for {
		if _, err := u.report.Read(b); err != nil {
			return
		}
	}
}

// readReport reads the pid the new gw sent before it said ready, so it is
// there already; the deadline only guards against a gw that did not.
func (u *Upgrader) readReport() (int, error) {
	b := make([]byte, 32)
	u.report.SetReadDeadline(time.Now().Add(time.Second))
	n, err := u.report.Read(b)
	if err != nil {
		return 0, fmt.Errorf("upgrade: the new gw is ready but sent no pid: %w", err)
	}
	pid, err := strconv.Atoi(string(b[:n]))
	if err != nil || pid <= 0 {
		return 0, errors.New("upgrade: the new gw sent a bad pid")
	}
	return pid, nil
}

// Stop ends upgrades: one in progress is abandoned (its new gw killed)
// and none may start. Call it when this gw stops without handing over.
func (u *Upgrader) Stop() { u.tf.Stop() }
