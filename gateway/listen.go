package gateway

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/gwhq/gw/internal/config"
)

// listener is a bound socket and the protocol spoken on it.
type listener struct {
	net.Listener
	proto string     // "http", "https", "uwsgi" or "fastcgi"
	certs *certStore // the certificate of an "https" listener
}

// Protocols lists the listeners cfg configures, in the order gw binds and
// reports them (and matches systemd's unnamed sockets to them).
func Protocols(l config.Listen) []string {
	var out []string
	for _, c := range listenAddrs(l) {
		out = append(out, c.proto)
	}
	if !l.Stats.IsZero() {
		out = append(out, "stats")
	}
	return out
}

type protoAddr struct {
	proto string
	addr  config.Addr
}

func listenAddrs(l config.Listen) []protoAddr {
	var out []protoAddr
	for _, c := range []protoAddr{{"http", l.HTTP}, {"https", l.HTTPS}, {"uwsgi", l.UWSGI}, {"fastcgi", l.FastCGI}} {
		if !c.addr.IsZero() {
			out = append(out, c)
		}
	}
	return out
}

// Listen binds every configured listener, or takes the one of that
// protocol from activated (sockets passed by systemd, by protocol name)
// instead. Start calls it when the caller has not: calling it first lets
// gw drop root after binding a privileged port and before any runner or
// file of the runtime directory exists. On error nothing stays open.
func (g *Gateway) Listen(activated map[string]net.Listener) error {
	l := g.cfg.Listen
	for _, c := range listenAddrs(l) {
		ln := activated[c.proto]
		if ln == nil {
			var err error
			if ln, err = listen(c.addr, os.FileMode(l.ChmodSocket)); err != nil {
				g.closeListeners()
				return err
			}
		}
		lis := listener{Listener: ln, proto: c.proto}
		if c.proto == "https" {
			// Loaded now, while gw may still be root and the key readable
			// only by root; a bad pair fails the start, not the first client.
			certs, err := newCertStore(l.TLS.Cert, l.TLS.Key)
			if err != nil {
				ln.Close()
				g.closeListeners()
				return err
			}
			lis.certs = certs
		}
		g.lns = append(g.lns, lis)
	}
	if len(g.lns) == 0 {
		g.closeListeners()
		return errors.New("no listener configured")
	}
	// The stats listener is bound here too, with the others: while gw may
	// still be root (a privileged port) and from systemd when it passed one.
	if a := l.Stats; !a.IsZero() {
		ln := activated["stats"]
		if ln == nil {
			var err error
			if ln, err = listen(a, 0o600); err != nil {
				g.closeListeners()
				return err
			}
		}
		g.statsLn = ln
	}
	return nil
}

// listen binds the listeners unless Listen already has.
func (g *Gateway) listen() error {
	if len(g.lns) > 0 {
		return nil
	}
	return g.Listen(nil)
}

// CloseListeners closes the listeners of a gateway that was never started
// (Start and Shutdown close them otherwise).
func (g *Gateway) CloseListeners() { g.closeListeners() }

func (g *Gateway) closeListeners() {
	for _, ln := range g.lns {
		ln.Close()
	}
	g.lns = nil
	if g.statsLn != nil {
		g.statsLn.Close()
		g.statsLn = nil
	}
}

// listen binds a TCP address or a unix socket. A unix socket file left by a
// dead process is removed; one that a live process still answers on is not.
func listen(a config.Addr, mode os.FileMode) (net.Listener, error) {
	if a.Network != "unix" {
		ln, err := net.Listen("tcp", a.Address)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", a, err)
		}
		return ln, nil
	}
	if _, err := os.Stat(a.Address); err == nil {
		c, err := net.DialTimeout("unix", a.Address, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: another process is serving on it", a)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("listen %s: %w", a, err)
		}
		os.Remove(a.Address)
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
	return ln, nil
}
