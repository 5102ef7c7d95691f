package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gwhq/gw/internal/gwtest"
)

// TestWebSocketSlowAccept: an app that accepts after gw's connection
// watch started (the client sends nothing before the 101) gets a working
// session: h1's Hijack used to leave the watch's abort deadline on the
// connection, and the first read failed ("client went away").
func TestWebSocketSlowAccept(t *testing.T) {
	py := gwtest.RequirePython(t)
	cfg := fmt.Sprintf("listen:\n  http: \"127.0.0.1:0\"\napps:\n  - name: ws\n    path: asgi.ws_slow:app\n    dir: %s\n    interpreter: %s\n    workers: 1\n",
		testdataDir(t), py)
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+s.Addr("http")+"/", nil)
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, s.Log())
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "hi" {
		t.Fatalf("echo: %q %v", p, err)
	}
}
