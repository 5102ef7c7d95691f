package gateway

import (
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"github.com/gwhq/gw/internal/config"
)

// TestListenTakesActivated: a listener passed in (socket activation) is
// used as is, and only the others are bound.
func TestListenTakesActivated(t *testing.T) {
	passed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "uwsgi.sock")
	cfg := &config.Config{Listen: config.Listen{
		// Already bound by passed: binding it again would fail.
		HTTP:  config.Addr{Network: "tcp", Address: passed.Addr().String()},
		UWSGI: config.Addr{Network: "unix", Address: sock},
	}}
	g := &Gateway{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := g.Listen(map[string]net.Listener{"http": passed}); err != nil {
		t.Fatal(err)
	}
	defer g.CloseListeners()
	got := g.Listeners()
	if len(got) != 2 || got[0].Proto != "http" || got[0].Addr.String() != passed.Addr().String() ||
		got[1].Proto != "uwsgi" || got[1].Addr.String() != sock {
		t.Errorf("listeners %v", got)
	}
	if err := g.listen(); err != nil || len(g.lns) != 2 {
		t.Errorf("Start's listen after Listen: %v, %d listeners; want a no-op", err, len(g.lns))
	}
	if p := Protocols(cfg.Listen); len(p) != 2 || p[0] != "http" || p[1] != "uwsgi" {
		t.Errorf("Protocols = %v", p)
	}
}

// TestListenHTTPSNeedsLoadableCert: a bad certificate fails Listen, and
// nothing stays bound.
func TestListenHTTPSNeedsLoadableCert(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{Listen: config.Listen{
		HTTP:  config.Addr{Network: "tcp", Address: "127.0.0.1:0"},
		HTTPS: config.Addr{Network: "tcp", Address: "127.0.0.1:0"},
		TLS:   config.TLS{Cert: filepath.Join(dir, "none.pem"), Key: filepath.Join(dir, "none.key")},
	}}
	g := &Gateway{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := g.Listen(nil); err == nil {
		t.Fatal("Listen with a missing certificate succeeded")
	}
	if len(g.lns) != 0 {
		t.Errorf("%d listeners left open", len(g.lns))
	}
}
