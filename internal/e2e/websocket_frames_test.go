package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestWebSocketFraming: RFC 6455 conformance of the ASGI runner's own
// framing (the handover, gw_asgi.py HandedSession), with hand-made frames
// on a raw TCP connection: what the runner answers to each.
func TestWebSocketFraming(t *testing.T) {
	s, _, _ := startWS(t, 1, "", "limits:\n  websocket_max_message: 1KiB")
	addr := s.Addr("http")
	text := func(fin bool, p string) []byte { return wsFrame(fin, 0, 1, []byte(p), true) }
	cont := func(fin bool, p string) []byte { return wsFrame(fin, 0, 0, []byte(p), true) }
	closeCode := func(code uint16) []byte {
		return wsFrame(true, 0, 8, binary.BigEndian.AppendUint16(nil, code), true)
	}
	for i, tc := range []struct {
		name string
		send [][]byte
		want []string // frames back, as "op:payload"; a close as "close:CODE"
	}{
		{"unmasked", [][]byte{wsFrame(true, 0, 1, []byte("x"), false)}, []string{"close:1002"}},
		{"rsv1", [][]byte{wsFrame(true, 4, 1, []byte("x"), true)}, []string{"close:1002"}},
		{"bad opcode", [][]byte{wsFrame(true, 0, 3, []byte("x"), true)}, []string{"close:1002"}},
		{"bad control opcode", [][]byte{wsFrame(true, 0, 11, nil, true)}, []string{"close:1002"}},
		{"fragmented ping", [][]byte{wsFrame(false, 0, 9, []byte("p"), true)}, []string{"close:1002"}},
		{"ping over 125", [][]byte{wsFrame(true, 0, 9, bytes.Repeat([]byte("p"), 126), true)}, []string{"close:1002"}},
		{"continuation first", [][]byte{cont(true, "x")}, []string{"close:1002"}},
		{"text inside fragments", [][]byte{text(false, "a"), text(true, "b")}, []string{"close:1002"}},
		{"invalid utf-8", [][]byte{text(true, "a\xffb")}, []string{"close:1007"}},
		{"invalid utf-8 across fragments", [][]byte{text(false, "ok \xce"), cont(true, "(")}, []string{"close:1007"}},
		{"invalid utf-8 in an unfinished message", [][]byte{text(false, "\xff")}, []string{"close:1007"}},
		{"too big", [][]byte{text(true, string(bytes.Repeat([]byte("x"), 1025)))}, []string{"close:1009"}},
		{"too big in fragments", [][]byte{text(false, string(bytes.Repeat([]byte("x"), 1000))), cont(false, string(bytes.Repeat([]byte("x"), 30)))}, []string{"close:1009"}},
		{"ping echoed", [][]byte{wsFrame(true, 0, 9, []byte("abc"), true)}, []string{"10:abc"}},
		{"ping inside a fragmented message", [][]byte{text(false, "hel"), wsFrame(true, 0, 9, []byte("p"), true), cont(true, "lo")},
			[]string{"10:p", "1:hello"}},
		{"split utf-8 is fine", [][]byte{text(false, "\xc3"), cont(true, "\xa9")}, []string{"1:é"}},
		{"binary", [][]byte{wsFrame(true, 0, 2, []byte{0, 1, 255}, true)}, []string{"2:\x00\x01\xff"}},
		{"close 999", [][]byte{closeCode(999)}, []string{"close:1002"}},
		{"close 1005", [][]byte{closeCode(1005)}, []string{"close:1002"}},
		{"close 1016", [][]byte{closeCode(1016)}, []string{"close:1002"}},
		{"close one byte", [][]byte{wsFrame(true, 0, 8, []byte{3}, true)}, []string{"close:1002"}},
		{"close 4000 echoed", [][]byte{closeCode(4000)}, []string{"close:4000"}},
		{"close 1000 echoed", [][]byte{closeCode(1000)}, []string{"close:1000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := wsHandshake(t, addr, "/echo")
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			for _, f := range tc.send {
				if _, err := c.Write(f); err != nil {
					t.Fatalf("case %d: write: %v", i, err)
				}
			}
			for _, want := range tc.want {
				if got := wsReadFrame(t, br); got != want {
					t.Fatalf("case %d: got frame %q, want %q", i, got, want)
				}
			}
		})
	}
	ws := waitWSClosed(t, s)
	if n := uint64(23); ws.Handed != n {
		t.Errorf("/stats websockets %+v, want %d handed", ws, n)
	}
}

// wsFrame is one client frame: FIN, RSV bits (4: RSV1), opcode, payload,
// masked with a fixed key or not.
func wsFrame(fin bool, rsv, op byte, p []byte, masked bool) []byte {
	b0 := rsv<<4 | op
	if fin {
		b0 |= 0x80
	}
	var mbit byte
	if masked {
		mbit = 0x80
	}
	out := []byte{b0}
	switch n := len(p); {
	case n < 126:
		out = append(out, mbit|byte(n))
	case n < 65536:
		out = binary.BigEndian.AppendUint16(append(out, mbit|126), uint16(n))
	default:
		out = binary.BigEndian.AppendUint64(append(out, mbit|127), uint64(n))
	}
	if !masked {
		return append(out, p...)
	}
	key := []byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, key...)
	for i, c := range p {
		out = append(out, c^key[i%4])
	}
	return out
}

// wsHandshake opens a WebSocket by hand and returns the connection with
// the reader past the 101.
func wsHandshake(t *testing.T, addr, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, addr)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-Websocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	return c, br
}

// wsReadFrame reads one server frame as "op:payload", or "close:CODE".
func wsReadFrame(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if h[1]&0x80 != 0 || h[0]&0x70 != 0 || h[0]&0x80 == 0 {
		t.Fatalf("server frame header %x: masked, RSV bits or not final", h)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(br, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(br, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	if op := h[0] & 0x0f; op == 8 {
		if len(p) < 2 {
			return "close:"
		}
		return fmt.Sprintf("close:%d", binary.BigEndian.Uint16(p))
	} else {
		return fmt.Sprintf("%d:%s", op, p)
	}
}

// TestWebSocketRefusals: refusals of a handshake whose socket was offered
// to the runner are answered by gw's HTTP server as before (the runner
// closed its copy): a denial response with its status, headers and body,
// 500 for an app that fails before accepting, 403 for a close before
// accepting; the connection then serves the next request.
func TestWebSocketRefusals(t *testing.T) {
	s, _, _ := startWS(t, 1, "", "")
	addr := s.Addr("http")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{{"/denybody", 401, "not you"}, {"/boom", 500, ""}, {"/deny", 403, ""}} {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", tc.path, addr)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.path, err, s.Log())
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || (tc.body != "" && string(body) != tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
		if tc.status == 401 && resp.Header.Get("X-Why") != "denied" {
			t.Errorf("%s: headers %v, want the app's X-Why", tc.path, resp.Header)
		}
	}
	fmt.Fprintf(c, "GET /http HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("ok")) {
		t.Errorf("GET /http on the same connection after the refusals: %d %q", resp.StatusCode, body)
	}
	if ws := wsStats(t, s); ws.Handed != 0 || ws.Total != 0 || ws.Open != 0 {
		t.Errorf("/stats websockets %+v after refusals, want none", ws)
	}
}

// TestWebSocketKeepalive: with limits.websocket_ping the runner pings a
// handed-over client every interval; one that answers stays (and echoes
// after several intervals), one that does not is dropped and its app
// hears 1006.
func TestWebSocketKeepalive(t *testing.T) {
	s, _, logPath := startWS(t, 1, "", "limits:\n  websocket_ping: 200ms")
	addr := s.Addr("http")
	// Silent: the first ping, then the connection ends.
	silent, sbr := wsHandshake(t, addr, "/echo")
	defer silent.Close()
	silent.SetDeadline(time.Now().Add(10 * time.Second))
	if got := wsReadFrame(t, sbr); got != "9:" {
		t.Fatalf("first frame to a silent client %q, want a ping", got)
	}
	start := time.Now()
	if _, err := sbr.ReadByte(); err == nil {
		t.Fatal("a client that never answered a ping got more than the ping")
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("silent client dropped %v after its ping, want about one interval", waited)
	}
	waitAppLog(t, logPath, "disconnect /echo 1006")

	// Answering: pongs for a second (5 intervals), then an echo.
	c, br := wsHandshake(t, addr, "/echo")
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	pings := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		if got := wsReadFrame(t, br); got != "9:" {
			t.Fatalf("frame %q, want a ping", got)
		}
		pings++
		c.Write(wsFrame(true, 0, 10, nil, true))
	}
	c.Write(wsFrame(true, 0, 1, []byte("alive"), true))
	for {
		got := wsReadFrame(t, br)
		if got == "9:" {
			c.Write(wsFrame(true, 0, 10, nil, true))
			continue
		}
		if got != "1:alive" {
			t.Fatalf("after %d pings answered: %q, want the echo", pings, got)
		}
		break
	}
	if pings < 3 {
		t.Errorf("%d pings in a second at a 200ms interval", pings)
	}
	if ws := wsHanded(t, s, 2); ws.Handed != 2 {
		t.Errorf("/stats websockets %+v, want both handed over (the runner pinged)", ws)
	}
}
