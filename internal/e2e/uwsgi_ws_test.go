package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gwhq/gw/internal/gwtest"
)

// uWSGI's WebSocket API for WSGI apps (docs/design/websocket.md): the same
// Flask app (testdata/python/uwsgi_ws_app.py) under gw and under uWSGI.

// startUwsgiWS serves uwsgi_ws_app.py at /u (WSGI) and ws_app.py at /
// (ASGI) on one gw; env is YAML for the WSGI app's env map.
func startUwsgiWS(t *testing.T, threads int, env, top string) (s *gwtest.Server, base, logPath, cfg string) {
	py := requireModules(t, "flask", "fastapi")
	logPath = writeFile(t, "events.log", "")
	cfg = writeFile(t, "gw.yaml", fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
  stats: "127.0.0.1:0"
%s
apps:
  - name: uws
    path: uwsgi_ws_app:app
    mount: /u
    dir: %[2]s
    interpreter: %[3]s
    workers: 1
    threads: %[4]d
    env: { LOG: %[5]s%[6]s }
  - name: ws
    path: asgi.ws_app:app
    dir: %[2]s
    interpreter: %[3]s
    workers: 1
    env: { LOG: %[5]s }
`, top, testdataDir(t), py, threads, logPath, env))
	s = gwtest.Start(t, "-c", cfg)
	return s, "ws://" + s.Addr("http"), logPath, cfg
}

// checkUwsgiEcho: 1,000 messages, text on /echo (websocket_send) and
// binary on /echo-binary (websocket_send_binary), up to 1 MiB, come back
// whole; recv_nb gives b” when nothing came; recv gives bytes for text.
func checkUwsgiEcho(t *testing.T, base string, logf func() string) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	text, bin := dialWSPlain(t, ctx, base+"/echo"), dialWSPlain(t, ctx, base+"/echo-binary")
	defer text.CloseNow()
	defer bin.CloseNow()
	defer func() {
		if t.Failed() {
			t.Log(logf())
		}
	}()
	wsEcho(t, ctx, text, bin)

	nb := dialWSPlain(t, ctx, base+"/nb")
	defer nb.CloseNow()
	if _, p, err := nb.Read(ctx); err != nil || string(p) != "idle b''" {
		t.Errorf("recv_nb with nothing sent: %q %v, want \"idle b''\"", p, err)
	}
	nb.Write(ctx, websocket.MessageText, []byte("x"))
	if _, p, err := nb.Read(ctx); err != nil || string(p) != "got x" {
		t.Errorf("recv_nb after a message: %q %v, want \"got x\"", p, err)
	}
	// Returning from the WSGI callable ends the session.
	if _, _, err := nb.Read(ctx); err == nil {
		t.Errorf("/nb returned, yet the session goes on")
	}

	ty := dialWSPlain(t, ctx, base+"/types")
	defer ty.CloseNow()
	ty.Write(ctx, websocket.MessageText, []byte("hello"))
	if _, p, err := ty.Read(ctx); err != nil || string(p) != "bytes dict" {
		t.Errorf("websocket_recv of a text message, uwsgi.opt: %q %v, want \"bytes dict\"", p, err)
	}

	// No handshake: the app's answer goes to the client.
	if _, resp, err := websocket.Dial(ctx, base+"/refuse", nil); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("handshake the app refused: %v %v, want 403", err, resp)
	}
}

func dialWSPlain(t *testing.T, ctx context.Context, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(4 << 20)
	return c
}

// TestUwsgiWebSocketEcho: the uWSGI-API app echoes through gw.
func TestUwsgiWebSocketEcho(t *testing.T) {
	s, base, _, _ := startUwsgiWS(t, 2, "", "")
	checkUwsgiEcho(t, base+"/u", s.Log)
}

// TestUwsgiWebSocketUnderUwsgi: the same app and client test under uWSGI
// itself (python3 plugin): the app runs unchanged.
func TestUwsgiWebSocketUnderUwsgi(t *testing.T) {
	addr := startUwsgi(t, "uwsgi_ws_app.py", 1, 4)
	checkUwsgiEcho(t, "ws://"+addr, func() string { return "" })
}

// startUwsgi runs uwsgi --http-socket with the python3 plugin on a free
// port, or skips when either is missing (fails under GW_REQUIRE_RUNTIMES=1).
// env is added to the app's environment.
func startUwsgi(t testing.TB, file string, processes, threads int, env ...string) string {
	t.Helper()
	bin, err := exec.LookPath("uwsgi")
	if err == nil {
		if _, err = os.Stat("/usr/lib/uwsgi/plugins/python3_plugin.so"); err != nil {
			err = fmt.Errorf("no python3 plugin: %w", err)
		}
	}
	if err != nil {
		msg := fmt.Sprintf("uwsgi: %v; apt-get install uwsgi uwsgi-plugin-python3", err)
		if os.Getenv("GW_REQUIRE_RUNTIMES") == "1" {
			t.Fatal(msg + " (GW_REQUIRE_RUNTIMES=1)")
		}
		t.Skip(msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := filepath.Join(gwtest.RepoRoot(), "internal", "e2e", "testdata", "python")
	var out bytes.Buffer
	cmd := exec.Command(bin, "--plugin", "python3", "--http-socket", addr, "--chdir", dir,
		"--wsgi-file", file, "--callable", "app", "--master", "--processes", fmt.Sprint(processes),
		"--threads", fmt.Sprint(threads), "--die-on-term", "--disable-logging")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("uwsgi never listened on %s:\n%s", addr, out.String())
		}
	}
}

// TestUwsgiWebSocketSessions: a session does not hold the slot (threads:
// 1 serves HTTP with sessions open); a client that vanishes makes
// websocket_recv raise and the app's thread return; the runner's session
// cap (GW_WSGI_MAX_SESSIONS) answers 503.
func TestUwsgiWebSocketSessions(t *testing.T) {
	s, base, logPath, _ := startUwsgiWS(t, 1, ", GW_WSGI_MAX_SESSIONS: 2", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	get := func(what string) {
		t.Helper()
		if code, body := gwtest.Get(t, "http://"+s.Addr("http")+"/u/http"); code != 200 || !strings.HasPrefix(body, "ok") {
			t.Errorf("GET /u/http %s: %d %q", what, code, body)
		}
	}
	a := dialWSPlain(t, ctx, base+"/u/echo")
	defer a.CloseNow()
	get("with a session open on the only slot's thread")

	b := dialWSPlain(t, ctx, base+"/u/echo")
	b.Write(ctx, websocket.MessageText, []byte("x"))
	if _, p, err := b.Read(ctx); err != nil || string(p) != "x" {
		t.Fatalf("echo: %q %v", p, err)
	}
	_, resp, err := websocket.Dial(ctx, base+"/u/echo", nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("third session with GW_WSGI_MAX_SESSIONS 2: %v %v, want 503", err, resp)
	}
	b.CloseNow() // vanish
	waitAppLog(t, logPath, "gone /echo unable to receive websocket message")
	get("after a vanished client")
	c := dialWSPlain(t, ctx, base+"/u/echo") // b's place is free again
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "y" {
		t.Errorf("echo after the vanished one left: %q %v", p, err)
	}
}

// TestWebSocketReload: a reload (SIGHUP) closes the old generation's open
// sessions, ASGI and WSGI, with 1001 (going away); the apps hear it, and
// new sessions open on the new generation.
func TestWebSocketReload(t *testing.T) {
	s, base, logPath, _ := startUwsgiWS(t, 2, "", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conns := []*websocket.Conn{dialWS(t, ctx, base+"/echo"), dialWSPlain(t, ctx, base+"/u/echo")}
	done := make(chan error, len(conns))
	for _, c := range conns {
		defer c.CloseNow()
		c.Write(ctx, websocket.MessageText, []byte("hi"))
		if _, p, err := c.Read(ctx); err != nil || string(p) != "hi" {
			t.Fatalf("echo before the reload: %q %v", p, err)
		}
		go func() { _, _, err := c.Read(ctx); done <- err }()
	}
	syscall.Kill(s.PID(), syscall.SIGHUP)
	for range conns {
		if err := <-done; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("at reload: %v, want close 1001", err)
		}
	}
	waitAppLog(t, logPath, "disconnect /echo 1001")
	waitAppLog(t, logPath, "gone /echo unable to receive websocket message")
	for _, url := range []string{base + "/echo", base + "/u/echo"} {
		c := dialWSPlain(t, ctx, url)
		c.Write(ctx, websocket.MessageText, []byte("again"))
		if _, p, err := c.Read(ctx); err != nil || string(p) != "again" {
			t.Errorf("%s after the reload: %q %v", url, p, err)
		}
		c.CloseNow()
	}
}
