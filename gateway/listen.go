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
	proto string // "http", "uwsgi" or "fastcgi"
}

func (g *Gateway) listen() error {
	l := g.cfg.Listen
	for _, c := range []struct {
		proto string
		addr  config.Addr
	}{{"http", l.HTTP}, {"uwsgi", l.UWSGI}, {"fastcgi", l.FastCGI}} {
		if c.addr.IsZero() {
			continue
		}
		ln, err := listen(c.addr, os.FileMode(l.ChmodSocket))
		if err != nil {
			g.closeListeners()
			return err
		}
		g.lns = append(g.lns, listener{ln, c.proto})
	}
	if len(g.lns) == 0 {
		return errors.New("no listener configured")
	}
	return nil
}

func (g *Gateway) closeListeners() {
	for _, ln := range g.lns {
		ln.Close()
	}
	g.lns = nil
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
