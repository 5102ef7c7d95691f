package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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

// Raw connections (docs/design/websocket.md, "Raw connections"): Rack and
// PSGI apps take the client's connection (rack.hijack, psgix.io) and do
// their own framing; gw relays bytes.

// startHijack serves app (a testdata path) with the YAML app keys in extra
// and top-level keys in top; tls adds an HTTPS listener. LOG is where the
// app writes what it saw.
func startHijack(t *testing.T, interp, app, extra, top string, tlsOn bool) (*gwtest.Server, string, *x509.Certificate) {
	t.Helper()
	logPath := writeFile(t, "events.log", "")
	listen := "  http: \"127.0.0.1:0\"\n  stats: \"127.0.0.1:0\"\n"
	var cert *x509.Certificate
	if tlsOn {
		dir := t.TempDir()
		certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		cert = writeCert(t, certFile, keyFile, 1)
		listen += fmt.Sprintf("  https: \"127.0.0.1:0\"\n  tls: { cert: %s, key: %s }\n", certFile, keyFile)
	}
	cfg := fmt.Sprintf("listen:\n%s%s\napps:\n  - name: raw\n    path: %s\n    interpreter: %s\n    workers: 1\n    env: { LOG: %s }\n%s",
		listen, top, suitePath(app), interp, logPath, extra)
	return gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg)), logPath, cert
}

// rawDial sends an upgrade request for path and reads the 101 head.
func rawDial(t *testing.T, addr string, cert *x509.Certificate, path string) (net.Conn, *bufio.Reader) {
	return rawDialFirst(t, addr, cert, path, "first")
}

// rawDialFirst is rawDial with first as the bytes sent with the head.
func rawDialFirst(t *testing.T, addr string, cert *x509.Certificate, path, first string) (net.Conn, *bufio.Reader) {
	t.Helper()
	var c net.Conn
	var err error
	if cert != nil {
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		c, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	// The first bytes ride with the head: gw must hand over what it read past it.
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n%s", path, first)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "echo" {
		t.Fatalf("%s: %s %v, want 101 with Upgrade: echo", path, resp.Status, resp.Header)
	}
	got := make([]byte, len(first))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != first {
		t.Fatalf("%s: first bytes came back as %q (%v)", path, got, err)
	}
	return c, br
}

// echoBytes writes n random bytes in one go and reads them back whole.
func echoBytes(t *testing.T, c net.Conn, br *bufio.Reader, n int) {
	t.Helper()
	msg := make([]byte, n)
	rand.Read(msg)
	errc := make(chan error, 1)
	go func() { _, err := c.Write(msg); errc <- err }()
	got := make([]byte, n)
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("echo of %d bytes: %v", n, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(msg) {
		t.Fatalf("echo of %d bytes came back different", n)
	}
}

func requireRuby(t *testing.T, libs ...string) string {
	t.Helper()
	ruby := gwtest.RequireInterpreter(t, "ruby")
	for _, lib := range libs {
		if out, err := exec.Command(ruby, "-e", "require '"+lib+"'").CombinedOutput(); err != nil {
			msg := fmt.Sprintf("ruby library %s not loadable (Debian: apt-get install -y ruby-%s): %s", lib, strings.ReplaceAll(lib, "/", "-"), bytes.TrimSpace(out))
			if os.Getenv("GW_REQUIRE_RUNTIMES") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return ruby
}

// TestRackHijackEcho: full hijack (echo in a thread, and inside the
// request) and partial hijack echo bytes over HTTP and HTTPS; the bytes
// sent with the head reach the app; the client's EOF reaches the app; an
// ordinary request has rack.hijack? false.
func TestRackHijackEcho(t *testing.T) {
	ruby := requireRuby(t)
	s, logPath, cert := startHijack(t, ruby, "ruby/hijack/config.ru", "    threads: 2\n", "", true)
	if code, body := gwtest.Get(t, "http://"+s.Addr("http")+"/info"); code != 200 || body != "hijack? false\n" {
		t.Errorf("ordinary request: %d %q", code, body)
	}
	for _, scheme := range []string{"http", "https"} {
		for _, path := range []string{"/raw", "/loop", "/partial", "/slow"} {
			t.Run(scheme+path, func(t *testing.T) {
				var ca *x509.Certificate
				if scheme == "https" {
					ca = cert
				}
				first := "first"
				if path == "/slow" {
					// Nothing sent past the head: gw's connection watch runs
					// while the app sleeps (its deadline must not stay).
					first = ""
				}
				c, br := rawDialFirst(t, s.Addr(scheme), ca, path, first)
				for _, n := range []int{1, 1000, 64 << 10, 1 << 20} {
					echoBytes(t, c, br, n)
				}
				// Half-close: the app reads EOF, closes, and so does gw.
				if cw, ok := c.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
				if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Errorf("after the app closed: %d bytes, %v; want EOF", n, err)
				}
				waitAppLog(t, logPath, "eof "+path)
			})
		}
	}
	st := waitRawClosed(t, s)
	if st.Total != 8 || st.Open != 0 || st.BytesIn < 8<<20 {
		t.Errorf("raw_connections stats %+v: want total 8, open 0, over 8 MiB in", st)
	}
	if _, m := gwtest.Get(t, "http://"+s.Addr("stats")+"/metrics"); !strings.Contains(m, `gw_raw_connections_total{app="raw"} 8`) {
		t.Errorf("/metrics lacks gw_raw_connections_total 8:\n%s", grepLines(m, "gw_raw"))
	}
}

// waitRawClosed waits until /stats shows no raw connection open (the
// handler counts a connection out just after the client saw it end).
func waitRawClosed(t *testing.T, s *gwtest.Server) rawStatsJSON {
	t.Helper()
	st := rawStats(t, s)
	for deadline := time.Now().Add(5 * time.Second); st.Open != 0 && time.Now().Before(deadline); st = rawStats(t, s) {
		time.Sleep(10 * time.Millisecond)
	}
	if st.Open != 0 {
		t.Fatalf("raw connections still open: %+v", st)
	}
	return st
}

type rawStatsJSON struct {
	Open     int64  `json:"open"`
	Total    uint64 `json:"total"`
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
}

func rawStats(t *testing.T, s *gwtest.Server) rawStatsJSON {
	t.Helper()
	code, body := gwtest.Get(t, "http://"+s.Addr("stats")+"/stats")
	var st struct {
		Apps []struct {
			Raw rawStatsJSON `json:"raw_connections"`
			WS  struct {
				Refused uint64 `json:"refused"`
			} `json:"websockets"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st.Apps) != 1 {
		t.Fatalf("/stats: %d %v %s", code, err, body)
	}
	return st.Apps[0].Raw
}

// wsEcho sends 1,000 messages, up to 1 MiB, and checks each comes back
// whole: text ones on text, binary ones on bin (one connection for an app
// that echoes both, two for one that echoes each on its own path).
func wsEcho(t *testing.T, ctx context.Context, text, bin *websocket.Conn) {
	t.Helper()
	text.SetReadLimit(4 << 20)
	bin.SetReadLimit(4 << 20)
	sizes := []int{0, 1, 125, 126, 65535, 65536, 100_000, 1 << 20}
	for i := range 1000 {
		n := sizes[i%len(sizes)]
		if i%97 != 0 && n > 100_000 {
			n = i // 1 MiB now and then keeps the test quick
		}
		c, typ, msg := bin, websocket.MessageBinary, make([]byte, n)
		rand.Read(msg)
		if i%2 == 0 {
			c, typ, msg = text, websocket.MessageText, []byte(strings.Repeat("é", n/2))
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		gt, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if gt != typ || sha256.Sum256(got) != sha256.Sum256(msg) {
			t.Fatalf("message %d (%v, %d bytes) came back as %v, %d bytes", i, typ, len(msg), gt, len(got))
		}
	}
}

// TestFayeWebSocketEcho: faye-websocket (its EventMachine reactor in a
// thread of its own) echoes 1,000 messages over HTTP and HTTPS, and hears
// the client's close code.
func TestFayeWebSocketEcho(t *testing.T) {
	ruby := requireRuby(t, "faye/websocket")
	s, logPath, cert := startHijack(t, ruby, "ruby/hijack/config.ru", "    threads: 2\n", "", true)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, url := range []string{"ws://" + s.Addr("http"), "wss://" + s.Addr("https")} {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		c, _, err := websocket.Dial(ctx, url+"/faye", &websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			t.Fatalf("dial %s: %v\n%s", url, err, s.Log())
		}
		wsEcho(t, ctx, c, c)
		c.Close(4001, "bye")
		cancel()
	}
	waitAppLog(t, logPath, "faye close 4001")
}

// TestPerlWebSocketEcho: a Protocol::WebSocket app on psgix.io echoes
// 1,000 messages over HTTP and HTTPS; a vanished client is EOF for the
// app and the runner's one slot serves the next request.
func TestPerlWebSocketEcho(t *testing.T) {
	perl := gwtest.RequireInterpreter(t, "perl")
	if out, err := exec.Command(perl, "-MProtocol::WebSocket", "-MIO::FDPass", "-e1").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("Protocol::WebSocket or IO::FDPass missing (Debian: libprotocol-websocket-perl libio-fdpass-perl): %s", out)
		if os.Getenv("GW_REQUIRE_RUNTIMES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s, logPath, cert := startHijack(t, perl, "perl/websocket.psgi", "", "", true)
	if code, body := gwtest.Get(t, "http://"+s.Addr("http")+"/"); code != 200 || body != "psgix.io: no\n" {
		t.Errorf("ordinary request: %d %q", code, body)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, url := range []string{"ws://" + s.Addr("http"), "wss://" + s.Addr("https")} {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		c, _, err := websocket.Dial(ctx, url+"/ws", &websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			t.Fatalf("dial %s: %v\n%s", url, err, s.Log())
		}
		wsEcho(t, ctx, c, c)
		c.Close(websocket.StatusNormalClosure, "")
		cancel()
	}
	waitAppLog(t, logPath, "close")
	// ws:// got the client's socket itself (the handover), wss:// a
	// socketpair end gw relays; the handed-over one ended (RAW_CLOSED).
	if countAppLog(logPath, "io IO::Socket::INET") != 1 || countAppLog(logPath, "io IO::Socket::UNIX") != 1 {
		b, _ := os.ReadFile(logPath)
		t.Errorf("sockets the app got, want one INET (ws) and one UNIX (wss):\n%s", b)
	}
	if st := waitRawClosed(t, s); st.Total != 2 || st.BytesIn == 0 || st.BytesOut == 0 {
		t.Errorf("raw_connections %+v: want total 2 with bytes counted", st)
	}
	// Vanish mid-stream: the TCP connection just goes.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+s.Addr("http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(ctx, websocket.MessageText, []byte("x"))
	c.Read(ctx)
	c.CloseNow()
	waitAppLog(t, logPath, "eof")
	if code, body := gwtest.Get(t, "http://"+s.Addr("http")+"/"); code != 200 || body != "psgix.io: no\n" {
		t.Errorf("after a vanished client: %d %q", code, body)
	}
	waitRawClosed(t, s)
}

// TestHijackLimits: a client that vanishes while the app echoes inside
// its request (threads: 1) is EOF for the app, and the slot serves the
// next request; hijacked connections count against max_websockets; an
// upgrade request the app answers as HTTP gets that answer; PHP says 501.
func TestHijackLimits(t *testing.T) {
	ruby := requireRuby(t)
	s, logPath, _ := startHijack(t, ruby, "ruby/hijack/config.ru", "    threads: 1\n    max_websockets: 1\n", "", false)
	addr := s.Addr("http")
	c, br := rawDial(t, addr, nil, "/loop")
	echoBytes(t, c, br, 100_000)
	c.(*net.TCPConn).SetLinger(0)
	c.Close() // a reset, mid-stream
	waitAppLog(t, logPath, "eof /loop")
	if code, body := gwtest.Get(t, "http://"+addr+"/info"); code != 200 || body != "hijack? false\n" {
		t.Errorf("after a vanished client: %d %q", code, body)
	}

	c, br = rawDial(t, addr, nil, "/raw") // holds the one place of max_websockets
	echoBytes(t, c, br, 10)
	code, body := upgradeRequest(t, addr, "/raw")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "max_websockets") {
		t.Errorf("second hijack beyond max_websockets: %d %q", code, body)
	}
	if st := rawStats(t, s); st.Open != 1 {
		t.Errorf("raw_connections open %d, want 1", st.Open)
	}
	c.Close()
	waitAppLog(t, logPath, "eof /raw")
	waitRawClosed(t, s)
	if code, body := upgradeRequest(t, addr, "/plain"); code != 426 || body != "no upgrade here: hijack? true\n" {
		t.Errorf("upgrade request answered as HTTP: %d %q", code, body)
	}
}

// upgradeRequest sends an upgrade request and returns the HTTP answer.
func upgradeRequest(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPHPUpgrade: php-cgi cannot hold a connection: 501 saying so.
func TestPHPUpgrade(t *testing.T) {
	gwtest.RequireInterpreter(t, "php-cgi")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.php"), []byte("<?php echo 'php';"), 0o644)
	s := gwtest.Start(t, "--lang", "php", dir)
	code, body := upgradeRequest(t, s.Addr("http"), "/")
	if code != http.StatusNotImplemented || !strings.Contains(body, "php-cgi cannot hold a connection") {
		t.Errorf("upgrade to PHP: %d %q, want 501", code, body)
	}
	if code, body := gwtest.Get(t, "http://"+s.Addr("http")+"/"); code != 200 || body != "php" {
		t.Errorf("GET: %d %q", code, body)
	}
}

// TestHijackShutdown: at SIGTERM a hijacked connection keeps working for
// the shutdown timeout, then gw closes it and exits.
func TestHijackShutdown(t *testing.T) {
	ruby := requireRuby(t)
	s, _, _ := startHijack(t, ruby, "ruby/hijack/config.ru", "    threads: 2\n", "limits:\n  shutdown_timeout: 2s\n", false)
	c, br := rawDial(t, s.Addr("http"), nil, "/raw")
	start := time.Now()
	syscall.Kill(s.PID(), syscall.SIGTERM)
	// Still served after the signal...
	time.Sleep(500 * time.Millisecond)
	echoBytes(t, c, br, 1000)
	// ...and cut at the timeout.
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the connection outlived shutdown")
	}
	if d := time.Since(start); d < 1500*time.Millisecond || d > 8*time.Second {
		t.Errorf("closed %v after SIGTERM, want about the 2s shutdown timeout", d)
	}
	select {
	case <-s.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("gw did not exit")
	}
}

// TestActionCable: ActionCable 6.1 (async adapter, no Rails) over gw: the
// welcome, a subscription, and a broadcast back to the subscriber.
func TestActionCable(t *testing.T) {
	ruby := requireRuby(t, "action_cable")
	s, _, _ := startHijack(t, ruby, "ruby/cable/config.ru", "    threads: 4\n", "", false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+s.Addr("http")+"/", &websocket.DialOptions{Subprotocols: []string{"actioncable-v1-json"}})
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, s.Log())
	}
	defer c.CloseNow()
	// next returns the next message that is not a ping.
	next := func() map[string]any {
		t.Helper()
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("read: %v\n%s", err, s.Log())
			}
			var m map[string]any
			if err := json.Unmarshal(p, &m); err != nil {
				t.Fatalf("%q: %v", p, err)
			}
			if m["type"] != "ping" {
				return m
			}
		}
	}
	if m := next(); m["type"] != "welcome" {
		t.Fatalf("first message %v, want welcome", m)
	}
	id := `{"channel":"EchoChannel"}`
	send := func(v map[string]string) {
		b, _ := json.Marshal(v)
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	send(map[string]string{"command": "subscribe", "identifier": id})
	if m := next(); m["type"] != "confirm_subscription" {
		t.Fatalf("after subscribe: %v", m)
	}
	send(map[string]string{"command": "message", "identifier": id, "data": `{"action":"speak","text":"héllo"}`})
	m := next()
	if msg, _ := m["message"].(map[string]any); m["identifier"] != id || msg["text"] != "héllo" {
		t.Fatalf("broadcast: %v", m)
	}
}

// TestHijackReload: a reload leaves a taken connection working until the
// shutdown timeout, then closes it, while the new generation serves; a
// runner that dies takes its connections with it.
func TestHijackReload(t *testing.T) {
	ruby := requireRuby(t)
	// Relayed (bytes sent with the head) and handed over (none).
	for _, first := range []string{"first", ""} {
		name := map[string]string{"first": "relay", "": "handover"}[first]
		t.Run(name, func(t *testing.T) { hijackReload(t, ruby, first) })
	}
}

func hijackReload(t *testing.T, ruby, first string) {
	s, _, _ := startHijack(t, ruby, "ruby/hijack/config.ru", "    threads: 2\n", "limits:\n  shutdown_timeout: 2s\n", false)
	addr := s.Addr("http")
	c, br := rawDialFirst(t, addr, nil, "/raw", first)
	start := time.Now()
	syscall.Kill(s.PID(), syscall.SIGHUP)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(s.Log(), "reload: new generation serving"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload:\n%s", s.Log())
		}
	}
	if code, body := gwtest.Get(t, "http://"+addr+"/info"); code != 200 || body != "hijack? false\n" {
		t.Errorf("new generation: %d %q", code, body)
	}
	echoBytes(t, c, br, 1000) // the old generation's runner still serves it
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the connection outlived the reload's drain")
	}
	if d := time.Since(start); d < 1500*time.Millisecond || d > 10*time.Second {
		t.Errorf("closed %v after SIGHUP, want about the 2s shutdown timeout", d)
	}

	// The new generation's runner dies: its connection ends.
	c, br = rawDialFirst(t, addr, nil, "/raw", first)
	echoBytes(t, c, br, 10)
	for _, pid := range s.Children() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the connection outlived its runner")
	}
	waitRawClosed(t, s) // a handed-over one: the runner's exit ended gw's count
}
