package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gwhq/gw/gateway/admin"
	"github.com/gwhq/gw/internal/gwtest"
)

// startWS serves testdata/python/asgi/ws_app.py (FastAPI) with the YAML
// app keys in extra; LOG is where the app writes what it saw.
func startWS(t *testing.T, workers int, extra, top string) (*gwtest.Server, string, string) {
	py := requireModules(t, "fastapi")
	logPath := writeFile(t, "events.log", "")
	cfg := fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
  stats: "127.0.0.1:0"
%s
apps:
  - name: ws
    path: asgi.ws_app:app
    dir: %s
    interpreter: %s
    workers: %d
    env: { LOG: %s }
%s`, top, testdataDir(t), py, workers, logPath, extra)
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	return s, "ws://" + s.Addr("http"), logPath
}

func dialWS(t *testing.T, ctx context.Context, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"echo.v1"}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(4 << 20)
	return c
}

// waitLog waits until the app's log holds want.
func waitAppLog(t *testing.T, path, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), want) {
			return
		}
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("app log never showed %q:\n%s", want, b)
}

// TestWebSocketEcho: 1,000 messages, text and binary, up to 1 MiB, come
// back whole (sha256), with the subprotocol the app chose; then a client
// close reaches the app as websocket.disconnect with its code.
func TestWebSocketEcho(t *testing.T) {
	top, hc := wsTLS(t)
	s, base, logPath := startWS(t, 1, "", top)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := dialWS(t, ctx, base+"/echo")
	if c.Subprotocol() != "echo.v1" {
		t.Errorf("subprotocol %q, want echo.v1", c.Subprotocol())
	}
	defer func() {
		if t.Failed() {
			t.Log(s.Log())
		}
	}()
	wsEcho(t, ctx, c, c)
	c.Close(4001, "bye")
	waitAppLog(t, logPath, "disconnect /echo 4001")
	// The runner framed it on the client's socket (the handover), and its
	// RAW_CLOSED brought the message counts.
	ws := waitWSClosed(t, s)
	if ws.Handed != 1 || ws.MessagesIn != 1000 || ws.MessagesOut != 1000 {
		t.Errorf("/stats websockets %+v, want 1 handed, 1000 messages each way", ws)
	}
	// Over TLS gw terminates the session, as before the handover.
	tc, _, err := websocket.Dial(ctx, "wss://"+s.Addr("https")+"/echo", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	tc.SetReadLimit(4 << 20)
	wsEcho(t, ctx, tc, tc)
	tc.Close(4002, "bye")
	waitAppLog(t, logPath, "disconnect /echo 4002")
	if ws := waitWSClosed(t, s); ws.Total != 2 || ws.Handed != 1 || ws.MessagesIn != 2000 || ws.MessagesOut != 2000 {
		t.Errorf("/stats websockets %+v after wss, want 2 in all, 1 handed, 2000 messages each way", ws)
	}
}

// wsTLS is startWS's top for an HTTPS listener too, and a client that
// trusts its certificate.
func wsTLS(t *testing.T) (string, *http.Client) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := x509.NewCertPool()
	pool.AddCert(writeCert(t, certFile, keyFile, 1))
	top := fmt.Sprintf("  https: \"127.0.0.1:0\"\n  tls: { cert: %s, key: %s }\n", certFile, keyFile)
	return top, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// wsStats is the ws app's /stats websockets.
func wsStats(t *testing.T, s *gwtest.Server) admin.WebSocketStats {
	t.Helper()
	for _, a := range snapshot(t, "http://"+s.Addr("stats")).Apps {
		if a.Name == "ws" {
			return a.WebSockets
		}
	}
	t.Fatal("no app ws in /stats")
	return admin.WebSocketStats{}
}

// wsHanded waits (up to 5 s) for the ws app's count of handed-over
// WebSockets to reach n: the runner writes the 101 before gw hears
// WS_ACCEPT and counts the session, so the count may trail the client.
func wsHanded(t *testing.T, s *gwtest.Server, n uint64) admin.WebSocketStats {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ws := wsStats(t, s)
		if ws.Handed == n || time.Now().After(deadline) {
			return ws
		}
	}
}

// waitWSClosed waits until the ws app has no WebSocket open.
func waitWSClosed(t *testing.T, s *gwtest.Server) admin.WebSocketStats {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ws := wsStats(t, s)
		if ws.Open == 0 || time.Now().After(deadline) {
			return ws
		}
	}
}

// TestWebSocketLimits: a message over limits.websocket_max_message gets
// 1009 and the app hears it; a client that vanishes mid-session is a
// disconnect for the app and the slot serves on; a refusal before accept
// is 403; the app's own close code reaches the client; max_websockets
// refuses with 503; open sessions show in /metrics.
func TestWebSocketLimits(t *testing.T) {
	s, base, logPath := startWS(t, 1, "    threads: 1\n    max_websockets: 2", "limits:\n  websocket_max_message: 64KiB")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c := dialWS(t, ctx, base+"/echo")
	c.Write(ctx, websocket.MessageBinary, make([]byte, 64<<10+1))
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Errorf("over the limit: %v, want close 1009", err)
	}
	waitAppLog(t, logPath, "disconnect /echo 1009")

	// Vanish: close the TCP connection under the WebSocket.
	c2 := dialWS(t, ctx, base+"/echo")
	c2.Write(ctx, websocket.MessageText, []byte("x"))
	c2.Read(ctx)
	c2.CloseNow()
	waitAppLog(t, logPath, "disconnect /echo 1006")
	// One slot (threads: 1): it must be free for plain requests.
	if code, body := gwtest.Get(t, "http://"+s.Addr("http")+"/http"); code != 200 || !strings.HasPrefix(body, "ok") {
		t.Errorf("GET /http after a vanished client: %d %q", code, body)
	}

	if _, resp, err := websocket.Dial(ctx, base+"/deny", nil); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("denied handshake: %v %v, want 403", err, resp)
	}
	c3 := dialWS(t, ctx, base+"/bye")
	if _, p, _ := c3.Read(ctx); string(p) != "bye" {
		t.Errorf("bye: got %q", p)
	}
	if _, _, err := c3.Read(ctx); websocket.CloseStatus(err) != 4000 {
		t.Errorf("app's close: %v, want 4000", err)
	}

	a, b := dialWS(t, ctx, base+"/echo"), dialWS(t, ctx, base+"/echo")
	_, resp, err := websocket.Dial(ctx, base+"/echo", nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("third WebSocket with max_websockets 2: %v %v, want 503", err, resp)
	}
	// The runner writes the 101 before gw hears WS_ACCEPT and counts the
	// session, so the counts may trail the client's view briefly.
	var metrics string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, metrics = gwtest.Get(t, "http://"+s.Addr("stats")+"/metrics")
		if strings.Contains(metrics, `gw_websockets_open{app="ws"} 2`) && strings.Contains(metrics, `gw_websockets_refused_total{app="ws"} 1`) &&
			strings.Contains(metrics, `gw_websockets_handed_total{app="ws"} 5`) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("metrics lack the WebSocket counts:\n%s", grepLines(metrics, "websocket"))
			break
		}
	}
	// SIGTERM: open sessions get 1001 (going away) at once.
	done := make(chan error, 2)
	for _, c := range []*websocket.Conn{a, b} {
		go func() { _, _, err := c.Read(ctx); done <- err }()
	}
	s.Stop()
	for range 2 {
		if err := <-done; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("at SIGTERM: %v, want close 1001", err)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestWebSocketIdleThousand: 1,000 open, idle WebSockets on two runners
// take no slot: plain requests are still served, and a message still
// echoes. Logs gw's and the runners' RSS with them open.
func TestWebSocketIdleThousand(t *testing.T) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); lim.Cur < 2500 {
		t.Skipf("needs 2,500 open files (client and gw in this test), have %d", lim.Cur)
	}
	s, base, _ := startWS(t, 2, "", "")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	conns := make([]*websocket.Conn, 0, 1000)
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	for range 1000 {
		conns = append(conns, dialWS(t, ctx, base+"/echo"))
	}
	for i := range 20 {
		if code, body := gwtest.Get(t, "http://"+s.Addr("http")+"/http"); code != 200 || !strings.HasPrefix(body, "ok") {
			t.Fatalf("GET %d with 1,000 WebSockets open: %d %q", i, code, body)
		}
	}
	last := conns[len(conns)-1]
	if err := last.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := last.Read(ctx); err != nil || string(p) != "still here" {
		t.Fatalf("echo on the 1,000th: %q %v", p, err)
	}
	if ws := wsHanded(t, s, 1000); ws.Handed != 1000 {
		t.Errorf("/stats websockets %+v, want all 1,000 handed over", ws)
	}
	t.Logf("with 1,000 idle WebSockets: gw RSS %s; runners %s", rss(s.PID()), runnersRSS(s))
}

func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func runnersRSS(s *gwtest.Server) string {
	var out []string
	for _, pid := range s.Children() {
		out = append(out, rss(pid))
	}
	return strings.Join(out, ", ")
}

var _ = errors.Is

// TestWebSocketSlowClient: a client that stops reading while its app
// floods it stalls only its own session: another session on the same
// runner keeps echoing (the session channel's reader writes to a client
// itself only while the kernel takes it at once), and the slow one ends
// with 1013 once its queue is full, having got its messages in order.
//
// Handed over (the runner frames the session on the client's socket),
// the app's send waits for the client instead: the slow client gets every
// message, in order, and the other session still echoes.
func TestWebSocketSlowClient(t *testing.T) {
	for _, handed := range []bool{false, true} {
		t.Run(fmt.Sprintf("handed=%v", handed), func(t *testing.T) { slowClient(t, handed) })
	}
}

func slowClient(t *testing.T, handed bool) {
	// Over TLS gw terminates the session.
	top, opts, hc := "", (*websocket.DialOptions)(nil), (*http.Client)(nil)
	if !handed {
		top, hc = wsTLS(t)
		opts = &websocket.DialOptions{HTTPClient: hc}
	}
	s, base, _ := startWS(t, 1, "", top)
	if !handed {
		base = "wss://" + s.Addr("https")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const n, size = 4000, 8 << 10 // 32 MiB: more than loopback buffers and the queue hold
	slow, _, err := websocket.Dial(ctx, base+"/flood", opts)
	if err != nil {
		t.Fatal(err)
	}
	slow.SetReadLimit(1 << 20)
	if err := slow.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "%d %d", n, size)); err != nil {
		t.Fatal(err)
	}
	fast, _, err := websocket.Dial(ctx, base+"/echo", opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		msg := fmt.Appendf(nil, "m%d", i)
		ectx, ecancel := context.WithTimeout(ctx, 10*time.Second)
		err := fast.Write(ectx, websocket.MessageText, msg)
		var got []byte
		if err == nil {
			_, got, err = fast.Read(ectx)
		}
		ecancel()
		if err != nil || string(got) != string(msg) {
			t.Fatalf("echo %d beside a stalled session: %q, %v", i, got, err)
		}
		if i%20 == 0 {
			time.Sleep(20 * time.Millisecond) // spread over the flood
		}
	}
	// Now take what the slow session was sent: whole messages, then 1013
	// before all n (the queue overflowed while nobody read).
	got := 0
	for !handed || got < n {
		_, p, err := slow.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
				t.Errorf("slow client's end after %d messages: %v, want close 1013", got, err)
			}
			break
		}
		if len(p) != size || p[0] != 'f' || p[size-1] != 'f' {
			t.Fatalf("slow client's message %d: %d bytes", got, len(p))
		}
		got++
	}
	fast.Close(websocket.StatusNormalClosure, "")
	if ws := wsHanded(t, s, map[bool]uint64{true: 2}[handed]); ws.Handed != map[bool]uint64{true: 2}[handed] {
		t.Errorf("/stats websockets %+v: handed over should be %v", ws, handed)
	}
	if handed {
		return
	}
	if got >= n {
		t.Errorf("slow client got all %d messages: the queue never overflowed, the test proves nothing", n)
	}
	t.Logf("slow client got %d of %d messages before 1013", got, n)
}
