package gateway

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/gwhq/gw/internal/config"
)

// listener is a bound socket and the protocol spoken on it.
type listener struct {
	net.Listener
	proto string     // "http", "https", "uwsgi" or "fastcgi"
	name  string     // proto for the first of a kind, then proto.1, proto.2...
	certs certSource // the certificate of an "https" listener
}

// Protocols lists the names of the listeners cfg configures, in the order
// gw binds and reports them (and matches systemd's unnamed sockets to them).
func Protocols(l config.Listen) []string {
	var out []string
	for _, c := range Addrs(l) {
		out = append(out, c.Name)
	}
	return out
}

// ProtoAddr is one configured listener: its protocol, name and address.
type ProtoAddr struct {
	Proto string // "http", "https", "uwsgi", "fastcgi", "stats", "control"
	// Name is stable across restarts and upgrades of one config: the
	// protocol for the first listener of a kind, then "uwsgi.1",
	// "uwsgi.2"... in config order. Upgrades pass sockets by it and
	// systemd's FileDescriptorName= may use it.
	Name string
	Addr config.Addr
}

// Addrs lists the listeners l configures, the stats and control
// listeners last.
func Addrs(l config.Listen) []ProtoAddr {
	out := listenAddrs(l)
	if !l.Stats.IsZero() {
		out = append(out, ProtoAddr{"stats", "stats", l.Stats})
	}
	if !l.Control.IsZero() {
		out = append(out, ProtoAddr{"control", "control", l.Control})
	}
	return out
}

// listenAddrs lists the app listeners, each kind's together: its first,
// then the more of that kind in config order.
func listenAddrs(l config.Listen) []ProtoAddr {
	var out []ProtoAddr
	for _, c := range []ProtoAddr{{"http", "http", l.HTTP}, {"https", "https", l.HTTPS}, {"uwsgi", "uwsgi", l.UWSGI}, {"fastcgi", "fastcgi", l.FastCGI}} {
		if c.Addr.IsZero() {
			continue
		}
		out = append(out, c)
		n := 0
		for _, m := range l.More {
			if m.Proto == c.Proto {
				n++
				out = append(out, ProtoAddr{c.Proto, c.Proto + "." + strconv.Itoa(n), m.Addr})
			}
		}
	}
	return out
}

// Listen binds every configured listener, or takes the one of that
// protocol from activated (sockets passed by systemd, or by the gw this
// one upgrades, by protocol name) instead. Start calls it when the caller has not: calling it first lets
// gw drop root after binding a privileged port and before any runner or
// file of the runtime directory exists. On error nothing stays open.
func (g *Gateway) Listen(activated map[string]net.Listener) error {
	l := g.cfg.Listen
	for _, c := range listenAddrs(l) {
		ln := activated[c.Name]
		if ln == nil {
			var err error
			if ln, err = listen(c.Addr, os.FileMode(l.ChmodSocket), l.ChownSocket); err != nil {
				g.closeListeners()
				return err
			}
		}
		lis := listener{Listener: ln, proto: c.Proto, name: c.Name}
		if c.Proto == "https" && l.TLS.ACME == nil {
			// Loaded now, so a bad pair fails the start, not the first
			// client; through keyPair when gw is about to drop root. One
			// store for every HTTPS listener, so a SIGHUP reloads it once.
			if lis.certs = g.httpsCerts(); lis.certs == nil {
				certs, err := newCertStore(l.TLS.Cert, l.TLS.Key, g.keyPair)
				if err != nil {
					ln.Close()
					g.closeListeners()
					return err
				}
				lis.certs = certs
			}
		}
		g.lns = append(g.lns, lis)
	}
	if len(g.lns) == 0 {
		g.closeListeners()
		return errors.New("no listener configured")
	}
	if a := l.TLS.ACME; a != nil {
		// After the loop: the manager needs the HTTP listener's port too.
		m, err := g.newACME(a)
		if err != nil {
			g.closeListeners()
			return err
		}
		g.acme = m
		for i := range g.lns {
			if g.lns[i].proto == "https" {
				g.lns[i].certs = acmeCerts{m}
			}
		}
	}
	if !l.HTTP3.IsZero() {
		if err := g.bindHTTP3(g.inheritedPCs["http3"]); err != nil {
			g.closeListeners()
			return err
		}
	}
	// The stats listener is bound here too, with the others: while gw may
	// still be root (a privileged port) and from systemd when it passed one.
	if a := l.Stats; !a.IsZero() {
		ln := activated["stats"]
		if ln == nil {
			var err error
			if ln, err = listen(a, 0o600, config.Owner{}); err != nil {
				g.closeListeners()
				return err
			}
		}
		g.statsLn = ln
	}
	// The control socket: mode 0600, gw's owner, never --chown-socket (it
	// reloads and drains gw; the web server has no business there). A live
	// socket at the path is another gw's: refused, as any listener's is.
	// After an upgrade it is the old gw's socket, passed on: the path
	// stays the same for gw ctl.
	if a := l.Control; !a.IsZero() {
		ln := activated["control"]
		if ln == nil {
			var err error
			if ln, err = listen(a, 0o600, config.Owner{}); err != nil {
				g.closeListeners()
				return fmt.Errorf("control socket: %w", err)
			}
		}
		g.controlLn = ln
	}
	return nil
}

// ControlListener is the bound control socket (listen.control), nil when
// none is configured; the caller serves it (gateway/control) and closes it.
func (g *Gateway) ControlListener() net.Listener { return g.controlLn }

// listen binds the listeners unless Listen already has.
func (g *Gateway) listen() error {
	if len(g.lns) > 0 {
		return nil
	}
	return g.Listen(nil)
}

// httpsCerts is the certificate store of an HTTPS listener bound
// already, nil before the first.
func (g *Gateway) httpsCerts() certSource {
	for _, ln := range g.lns {
		if ln.proto == "https" && ln.certs != nil {
			return ln.certs
		}
	}
	return nil
}

// Sockets returns the open listeners by name (ProtoAddr.Name; the stats
// listener as "stats"), to hand to the gw of an upgrade.
func (g *Gateway) Sockets() map[string]net.Listener {
	out := make(map[string]net.Listener, len(g.lns)+1)
	for _, ln := range g.lns {
		out[ln.name] = ln.Listener
	}
	if g.statsLn != nil {
		out["stats"] = g.statsLn
	}
	if g.controlLn != nil {
		out["control"] = g.controlLn
	}
	return out
}

// HandOver keeps the paths of unix-socket listeners when they close: a new
// gw (an upgrade) serves the same sockets, so the path must stay. Call it
// before Shutdown. Without it, a socket gw bound itself is removed at
// Shutdown (Go's UnixListener unlinks what it bound); one it was passed
// (systemd, an upgrade) never is: its path is not this gw's to remove.
func (g *Gateway) HandOver() {
	for _, ln := range g.Sockets() {
		if ul, ok := ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
	}
}

// CloseListeners closes the listeners of a gateway that was never started
// (Start and Shutdown close them otherwise).
func (g *Gateway) CloseListeners() { g.closeListeners() }

func (g *Gateway) closeListeners() {
	for _, ln := range g.lns {
		ln.Close()
	}
	g.lns = nil
	if g.h3conn != nil {
		g.h3conn.Close()
		g.h3conn, g.h3altSvc = nil, nil
	}
	if g.statsLn != nil {
		g.statsLn.Close()
		g.statsLn = nil
	}
	if g.controlLn != nil {
		g.controlLn.Close()
		g.controlLn = nil
	}
	if g.acme != nil {
		// Made by listen, and its certificate cache's goroutine runs
		// from then: a gateway that never serves stops it here.
		g.acme.Stop()
		g.acme = nil
	}
}

// listen binds a TCP address or a unix socket. A unix socket gets mode
// (0660 when 0) and, when owner is set, that owner, so a web server in
// another group can connect without mode 0666 (uWSGI's chown-socket,
// php-fpm's listen.owner and listen.group).
func listen(a config.Addr, mode os.FileMode, owner config.Owner) (net.Listener, error) {
	if a.Network != "unix" {
		ln, err := net.Listen("tcp", a.Address)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", a, err)
		}
		return ln, nil
	}
	// Resolved before binding, so an unknown user leaves no socket behind.
	uid, gid, err := ownerIDs(owner)
	if err != nil {
		return nil, fmt.Errorf("listen %s: socket owner: %w", a, err)
	}
	if err := removeStaleSocket(a.Address); err != nil {
		return nil, fmt.Errorf("listen %s: %w", a, err)
	}
	ln, err := net.Listen("unix", a.Address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", a, err)
	}
	if mode == 0 {
		mode = 0o660
	}
	if err := os.Chmod(a.Address, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", a, err)
	}
	if uid != -1 || gid != -1 {
		if err := os.Lchown(a.Address, uid, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("chown %s to %s: %w", a, ownerString(owner), err)
		}
	}
	return ln, nil
}

// removeStaleSocket clears the way for a unix socket at path. A socket left
// by a dead process is removed; one a live process still answers on is
// not, and neither is anything that is not a socket (a file, a directory, a
// symlink): a mistyped path must not delete a file, as gunicorn refuses
// too ("is not a socket", gunicorn/sock.py UnixSocket).
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket (mode %v); not replacing it: remove it or choose another path",
			path, fi.Mode())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return errors.New("another process is serving on it")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return err
	}
	return os.Remove(path)
}

// ownerIDs resolves o for chown: -1 leaves that id as it is.
func ownerIDs(o config.Owner) (uid, gid int, err error) {
	uid, err = lookupID("user", o.User, func(s string) (string, error) {
		u, err := user.Lookup(s)
		if err != nil {
			return "", err
		}
		return u.Uid, nil
	})
	if err != nil {
		return 0, 0, err
	}
	gid, err = lookupID("group", o.Group, func(s string) (string, error) {
		g, err := user.LookupGroup(s)
		if err != nil {
			return "", err
		}
		return g.Gid, nil
	})
	return uid, gid, err
}

// lookupID is -1 for "", a number as it is (containers often have no
// passwd or group entry for it), or the id lookup finds for a name.
func lookupID(kind, name string, lookup func(string) (string, error)) (int, error) {
	if name == "" {
		return -1, nil
	}
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	id, err := lookup(name)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	return strconv.Atoi(id)
}

func ownerString(o config.Owner) string {
	if o.Group == "" {
		return o.User
	}
	return o.User + ":" + o.Group
}
