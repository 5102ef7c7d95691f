package cli

import (
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/gwhq/gw/internal/config"
)

// servingAttrs describes what gw serves, for the "gw serving" log line:
// one attribute per listener (http=127.0.0.1:8080) and the apps. Scripts and
// internal/gwtest read the http= attribute to learn the port.
func servingAttrs(cfg *config.Config, bound []net.Addr) []any {
	var attrs []any
	for _, l := range boundListeners(cfg, bound) {
		attrs = append(attrs, slog.String(l.name, l.addr))
	}
	apps := make([]string, len(cfg.Apps))
	for i, a := range cfg.Apps {
		apps[i] = fmt.Sprintf("%s(%s %s%s)", a.Name, a.Lang, a.Host, a.Mount)
	}
	return append(attrs, slog.String("apps", strings.Join(apps, ",")))
}

type listener struct{ name, addr string }

// boundListeners pairs each configured listener with the address the
// gateway bound for it, so ":0" is logged as the port the kernel chose.
// Fixed ports and unix paths are matched first, then port-0 listeners take
// the remaining bound addresses in order. Without bound addresses the
// configured ones are used.
func boundListeners(cfg *config.Config, bound []net.Addr) []listener {
	var out []listener
	var zero []int // indexes into out of tcp listeners asking for port 0
	taken := make([]bool, len(bound))
	for _, l := range []struct {
		name string
		addr config.Addr
	}{
		{"http", cfg.Listen.HTTP}, {"https", cfg.Listen.HTTPS}, {"uwsgi", cfg.Listen.UWSGI},
		{"fastcgi", cfg.Listen.FastCGI}, {"stats", cfg.Listen.Stats},
	} {
		if l.addr.IsZero() {
			continue
		}
		out = append(out, listener{l.name, l.addr.String()})
		_, port, _ := net.SplitHostPort(l.addr.Address)
		if l.addr.Network == "tcp" && port == "0" {
			zero = append(zero, len(out)-1)
			continue
		}
		for i, b := range bound {
			if !taken[i] && b.Network() == l.addr.Network && samePort(b, l.addr) {
				taken[i] = true
				out[len(out)-1].addr = addrString(b)
				break
			}
		}
	}
	for _, o := range zero {
		for i, b := range bound {
			if !taken[i] && b.Network() == "tcp" {
				taken[i] = true
				out[o].addr = b.String()
				break
			}
		}
	}
	return out
}

// samePort reports whether bound address b is the one configured as a: the
// same port for tcp (the host may be spelt differently), the same path for
// unix.
func samePort(b net.Addr, a config.Addr) bool {
	if a.Network == "unix" {
		return b.String() == a.Address
	}
	_, bp, err1 := net.SplitHostPort(b.String())
	_, ap, err2 := net.SplitHostPort(a.Address)
	return err1 == nil && err2 == nil && bp == ap
}

func addrString(b net.Addr) string {
	if b.Network() == "unix" {
		return "unix:" + b.String()
	}
	return b.String()
}
