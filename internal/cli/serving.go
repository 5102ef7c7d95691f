package cli

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/gwhq/gw/gateway"
	"github.com/gwhq/gw/internal/config"
)

// servingAttrs describes what gw serves, for the "gw serving" log line:
// one attribute per listener with the address actually bound
// (http=127.0.0.1:8080, uwsgi=unix:/run/gw.sock, uwsgi.1=... for a second
// one) and the apps. Scripts and
// internal/gwtest read the http= attribute to learn the port.
func servingAttrs(cfg *config.Config, bound []gateway.Bound) []any {
	var attrs []any
	for _, b := range bound {
		addr := b.Addr.String()
		if b.Addr.Network() == "unix" {
			addr = "unix:" + addr
		}
		attrs = append(attrs, slog.String(b.Name, addr))
	}
	apps := make([]string, len(cfg.Apps))
	for i, a := range cfg.Apps {
		apps[i] = fmt.Sprintf("%s(%s %s%s)", a.Name, a.Lang, a.Host, a.Mount)
	}
	return append(attrs, slog.String("apps", strings.Join(apps, ",")))
}
