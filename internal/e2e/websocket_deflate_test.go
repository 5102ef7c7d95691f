package e2e

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// countingConn counts the bytes a client reads off the wire.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// TestWebSocketCompression: with limits.websocket_compression a client
// that offers permessage-deflate (RFC 7692) gets it, each mode's messages
// come back whole and fewer bytes cross the wire than the messages hold;
// off (the default) never negotiates it.
func TestWebSocketCompression(t *testing.T) {
	msg := []byte(strings.Repeat(`{"id": 1, "name": "gw", "tags": ["a", "b"]} `, 2000)) // ~90 KB of JSON-ish text
	for _, tc := range []struct {
		mode   string
		client websocket.CompressionMode
		want   string // in the 101's Sec-WebSocket-Extensions
	}{
		{"off", websocket.CompressionNoContextTakeover, ""},
		{"on", websocket.CompressionNoContextTakeover, "permessage-deflate"},
		{"context-takeover", websocket.CompressionContextTakeover, "permessage-deflate"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			_, base, _ := startWS(t, 1, "", "limits: { websocket_compression: "+tc.mode+" }\n")
			var wire atomic.Int64
			hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countingConn{c, &wire}, nil
			}}}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, base+"/echo", &websocket.DialOptions{
				HTTPClient: hc, Subprotocols: []string{"echo.v1"}, CompressionMode: tc.client})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			c.SetReadLimit(1 << 20)
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(got, tc.want) || (tc.want == "" && got != "") {
				t.Fatalf("extensions %q, want %q", got, tc.want)
			}
			start := wire.Load()
			const rounds = 10
			for i := range rounds {
				if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
					t.Fatal(err)
				}
				typ, got, err := c.Read(ctx)
				if err != nil || typ != websocket.MessageText || string(got) != string(msg) {
					t.Fatalf("round %d: %v %d bytes %v", i, typ, len(got), err)
				}
			}
			read := wire.Load() - start
			t.Logf("%s: %d bytes read for %d bytes of messages", tc.mode, read, rounds*len(msg))
			if compressed := read < int64(rounds*len(msg))/4; compressed != (tc.want != "") {
				t.Errorf("%s: %d bytes on the wire for %d bytes of messages", tc.mode, read, rounds*len(msg))
			}
			c.Close(websocket.StatusNormalClosure, "")
		})
	}
}
