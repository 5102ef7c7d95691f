package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// viaApp answers which nginx location sent the request (HTTP_X_VIA, set
// per location by uwsgi_param) and which gw's runner served it.
const viaApp = `import os
def application(environ, start_response):
    body = ("%s %d" % (environ.get("HTTP_X_VIA", "-"), os.getppid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

// TestTwoUwsgiSockets: listen.uwsgi as a list (uWSGI's two socket = lines)
// binds both, a unix socket and a TCP port; nginx's uwsgi_pass reaches the
// app through each; the "gw serving" line names them uwsgi and uwsgi.1;
// a SIGUSR2 upgrade passes both by those names, and the new gw answers on
// both.
func TestTwoUwsgiSockets(t *testing.T) {
	asSubreaper(t)
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	app, cfg := filepath.Join(dir, "via.py"), filepath.Join(dir, "gw.yaml")
	sock, port := filepath.Join(dir, "a.sock"), gwtest.FreePort(t)
	tcp := "127.0.0.1:" + strconv.Itoa(port)
	if err := os.WriteFile(app, []byte(viaApp), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`listen:
  http: "127.0.0.1:0"
  uwsgi:
    - "unix:%s"
    - "%s"
  chmod_socket: "0666"
limits:
  shutdown_timeout: 10s
apps:
  - name: via
    path: %s
    interpreter: %s
    workers: 1
`, sock, tcp, app, py)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGW(t, "-c", cfg)
	_, pid0, next := g.serving(t, 0, 0)
	line, _ := g.log.await(t, 0, 5*time.Second, "gw serving")
	for _, want := range []string{"uwsgi=unix:" + sock, "uwsgi.1=" + tcp} {
		if !strings.Contains(line, want) {
			t.Errorf("serving line lacks %s: %s", want, line)
		}
	}
	front := gwtest.StartNginx(t, "", fmt.Sprintf(`
		location /a/ { include /etc/nginx/uwsgi_params; uwsgi_param HTTP_X_VIA a; uwsgi_pass unix:%s; }
		location /b/ { include /etc/nginx/uwsgi_params; uwsgi_param HTTP_X_VIA b; uwsgi_pass %s; }`, sock, tcp))

	check := func(pid int) {
		t.Helper()
		for _, via := range []string{"a", "b"} {
			for range 3 {
				code, body := gwtest.Get(t, front+"/"+via+"/x")
				if want := fmt.Sprintf("%s %d", via, pid); code != 200 || body != want {
					t.Fatalf("GET /%s/x through nginx: %d %q, want 200 %q", via, code, body, want)
				}
			}
		}
	}
	check(pid0)

	syscall.Kill(pid0, syscall.SIGUSR2)
	_, pid1, _ := g.serving(t, next, 0)
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("old gw %d still running 30s after the new one served:\n%s", pid0, g.log)
	}
	if code := g.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("old gw exited %d, want 0", code)
	}
	check(pid1)
	if n := g.log.count("upgrade failed"); n != 0 {
		t.Errorf("%d failed upgrades logged:\n%s", n, g.log)
	}

	kids := gwtest.AllChildren(pid1)
	syscall.Kill(pid1, syscall.SIGTERM)
	if code := waitOrphan(t, pid1, 30*time.Second); code != 0 {
		t.Errorf("new gw exited %d at SIGTERM, want 0:\n%s", code, g.log)
	}
	gwtest.WaitGone(t, kids, 5*time.Second)
}
