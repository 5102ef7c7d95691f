package e2e

import (
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The handover (docs/design/websocket.md "Handover"): a plain-HTTP upgrade
// with nothing past the head gives the Rack app the client's TCP socket
// itself; TLS and bytes read past the head keep the socketpair relay.

// countAppLog counts the lines of the app's log that are want.
func countAppLog(path, want string) int {
	b, _ := os.ReadFile(path)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if l == want {
			n++
		}
	}
	return n
}

// TestHijackHandover: the app gets a TCP socket over plain HTTP and echoes
// 1 MiB; the connection holds max_websockets' one place until the app
// closes it (RAW_CLOSED), and its bytes are counted (TCP_INFO). The
// fallbacks (bytes sent with the head, TLS) get a socketpair end.
func TestHijackHandover(t *testing.T) {
	ruby := requireRuby(t)
	s, logPath, cert := startHijack(t, ruby, "ruby/hijack/config.ru", "    threads: 2\n    max_websockets: 1\n", "", true)
	addr := s.Addr("http")

	c, br := rawDialFirst(t, addr, nil, "/raw", "")
	for _, n := range []int{1, 64 << 10, 1 << 20} {
		echoBytes(t, c, br, n)
	}
	waitAppLog(t, logPath, "kind /raw tcp")
	if st := rawStats(t, s); st.Open != 1 || st.Total != 1 {
		t.Errorf("handed over: raw_connections %+v, want open 1, total 1", st)
	}
	if code, body := upgradeRequest(t, addr, "/raw"); code != http.StatusServiceUnavailable || !strings.Contains(body, "max_websockets") {
		t.Errorf("second upgrade beyond max_websockets while one is handed over: %d %q", code, body)
	}
	// The client's EOF reaches the app directly; its close reaches the
	// client (gw's descriptor does not keep the socket open) and gw.
	c.(interface{ CloseWrite() error }).CloseWrite()
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("after the app closed: %d bytes, %v; want EOF", n, err)
	}
	waitAppLog(t, logPath, "eof /raw")
	st := waitRawClosed(t, s)
	want := uint64(1 + 64<<10 + 1<<20)
	if st.BytesIn < want || st.BytesOut < want || st.BytesIn > want+4096 {
		t.Errorf("raw_connections bytes in %d, out %d; want about %d each (TCP_INFO since the handover)", st.BytesIn, st.BytesOut, want)
	}

	// Fallbacks: bytes read past the head, and TLS.
	for _, tc := range []struct {
		name, addr, first string
		tls               bool
	}{
		{"buffered", addr, "first", false},
		{"tls", s.Addr("https"), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := countAppLog(logPath, "kind /raw unix")
			ca := cert
			if !tc.tls {
				ca = nil
			}
			c, br := rawDialFirst(t, tc.addr, ca, "/raw", tc.first)
			echoBytes(t, c, br, 100_000)
			c.Close()
			waitRawClosed(t, s)
			if countAppLog(logPath, "kind /raw unix") != before+1 {
				t.Errorf("%s: the app did not get a socketpair end", tc.name)
			}
		})
	}
	if n := countAppLog(logPath, "kind /raw tcp"); n != 1 {
		t.Errorf("%d handed-over connections, want 1", n)
	}
}

// TestHandoverShutdown: at SIGTERM a handed-over connection keeps working
// for the shutdown timeout, then gw cuts it (shutdown(2) on its own
// descriptor of the socket) and exits.
func TestHandoverShutdown(t *testing.T) {
	ruby := requireRuby(t)
	s, logPath, _ := startHijack(t, ruby, "ruby/hijack/config.ru", "    threads: 2\n", "limits:\n  shutdown_timeout: 2s\n", false)
	c, br := rawDialFirst(t, s.Addr("http"), nil, "/raw", "")
	echoBytes(t, c, br, 1000)
	waitAppLog(t, logPath, "kind /raw tcp")
	start := time.Now()
	syscall.Kill(s.PID(), syscall.SIGTERM)
	time.Sleep(500 * time.Millisecond)
	echoBytes(t, c, br, 1000)                // still served after the signal...
	if _, err := br.ReadByte(); err == nil { // ...and cut at the timeout
		t.Fatal("the connection outlived shutdown")
	}
	if d := time.Since(start); d < 1500*time.Millisecond || d > 8*time.Second {
		t.Errorf("closed %v after SIGTERM, want about the 2s shutdown timeout", d)
	}
	t.Logf("cut %v after SIGTERM", time.Since(start))
	select {
	case <-s.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("gw did not exit")
	}
}
