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

func (g *Gateway) listen() error {
	for _, a := range []config.Addr{g.cfg.Listen.HTTP} {
		if a.IsZero() {
			continue
		}
		ln, err := listen(a, os.FileMode(g.cfg.Listen.ChmodSocket))
		if err != nil {
			g.closeListeners()
			return err
		}
		g.lns = append(g.lns, ln)
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
