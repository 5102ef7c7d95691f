package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gwhq/gw/internal/gwtest"
	"github.com/gwhq/gw/runners/goplugin/goplugintest"
)

// TestGoPluginBesidePython: the example Go plugin (built here) and a Python
// app in one config: both serve, the plugin streams, survives a panic, and
// is respawned after a SIGKILL mid-request.
func TestGoPluginBesidePython(t *testing.T) {
	py := gwtest.RequirePython(t)
	plugin := goplugintest.Example(t)
	cfg := fmt.Sprintf("listen: {http: \"127.0.0.1:0\"}\napps:\n"+
		"  - {name: goapp, lang: go, path: %s, workers: 1, mount: /}\n"+
		"  - {name: py, lang: python, path: %s, interpreter: %s, workers: 1, mount: /py}\n", plugin, app("suite.py"), py)
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	if code, body := gwtest.Get(t, s.URL+"/"); code != 200 || !strings.Contains(body, "Hello") {
		t.Fatalf("go /: %d %q\n%s", code, body, s.Log())
	}
	if code, body := gwtest.Get(t, s.URL+"/py/pid"); code != 200 || body == "" {
		t.Fatalf("python beside it: %d %q", code, body)
	}
	data := make([]byte, 10<<20)
	rand.Read(data)
	resp, got := post(t, s.URL+"/hash", bytes.NewReader(data))
	if want := fmt.Sprintf("%d %s", len(data), sha(string(data))); resp.StatusCode != 200 || strings.TrimSpace(got) != want {
		t.Fatalf("10 MiB: %d %q, want %q", resp.StatusCode, got, want)
	}
	checkStreaming(t, s.URL+"/stream")
	if code, _ := gwtest.Get(t, s.URL+"/panic"); code != 500 {
		t.Errorf("panic: %d, want 500", code)
	}
	killMidRequest(t, s.URL+"/pid", s.URL+"/sleep?10", 15*time.Second)
}

// TestNotAPluginExits1: a binary that is not a gw plugin stops gw run with
// exit 1 and a message saying so.
func TestNotAPluginExits1(t *testing.T) {
	script := filepath.Join(t.TempDir(), "notaplugin")
	os.WriteFile(script, []byte("#!/bin/sh\necho hello\n"), 0o755)
	code, out := gwtest.Run(t, 30*time.Second, "run", "--lang", "go", "--http", "127.0.0.1:0", script)
	if code != 1 || !strings.Contains(out, "notaplugin") || !strings.Contains(strings.ToLower(out), "plugin") {
		t.Fatalf("exit %d, want 1 with a clear message:\n%s", code, out)
	}
}

// TestGoPluginChecksum: with checksum set, a binary whose sha256 differs
// is refused (exit 1), and the right sum serves.
func TestGoPluginChecksum(t *testing.T) {
	plugin := goplugintest.Example(t)
	code, out := gwtest.Run(t, 30*time.Second, "run", "--lang", "go", "--http", "127.0.0.1:0",
		"--checksum", strings.Repeat("ab", 32), plugin)
	if code != 1 || !strings.Contains(strings.ToLower(out), "checksum") {
		t.Fatalf("wrong checksum: exit %d\n%s", code, out)
	}
	data, err := os.ReadFile(plugin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	s := gwtest.Start(t, "--lang", "go", "--checksum", hex.EncodeToString(sum[:]), "--workers", "1", plugin)
	if code, body := gwtest.Get(t, s.URL+"/"); code != 200 || !strings.Contains(body, "Hello") {
		t.Fatalf("right checksum: %d %q", code, body)
	}
}

// TestGoPluginHijack: the SDK's ResponseWriter is an http.Hijacker for
// upgrade requests. coder/websocket in the example plugin echoes 1,000
// messages over HTTP and HTTPS; sessions served inside their handlers
// hold no slot (more sessions than the plugin's 32 slots are open while
// an ordinary request is served); a handler that hijacks, writes its own
// 101 and returns echoes bytes, those sent with the head included; an
// ordinary request cannot be hijacked and the handler hears why.
func TestGoPluginHijack(t *testing.T) {
	plugin := goplugintest.Example(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := writeCert(t, certFile, keyFile, 1)
	cfg := fmt.Sprintf("listen:\n  http: \"127.0.0.1:0\"\n  https: \"127.0.0.1:0\"\n  stats: \"127.0.0.1:0\"\n  tls: { cert: %s, key: %s }\n"+
		"apps:\n  - {name: raw, lang: go, path: %s, workers: 1, mount: /}\n", certFile, keyFile, plugin)
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, url := range []string{"ws://" + s.Addr("http"), "wss://" + s.Addr("https")} {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		var conns []*websocket.Conn
		for range 40 { // a plugin has max(threads, 32) slots
			c, _, err := websocket.Dial(ctx, url+"/ws", &websocket.DialOptions{HTTPClient: hc})
			if err != nil {
				t.Fatalf("dial %s (session %d): %v\n%s", url, len(conns), err, s.Log())
			}
			conns = append(conns, c)
		}
		if code, body := gwtest.Get(t, s.URL+"/"); code != 200 || body != "Hello, World!" {
			t.Fatalf("beside %d open sessions: %d %q", len(conns), code, body)
		}
		wsEcho(t, ctx, conns[0], conns[0])
		for i, c := range conns {
			msg := fmt.Sprint("session ", i)
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
				t.Fatalf("session %d: %q %v", i, got, err)
			}
			c.Close(websocket.StatusNormalClosure, "")
		}
		cancel()
	}

	c, br := rawDial(t, s.Addr("http"), nil, "/raw")
	echoBytes(t, c, br, 1<<20)
	c.Close()
	st := waitRawClosed(t, s)
	if st.Total != 81 || st.BytesIn < 1<<20 {
		t.Errorf("raw stats %+v: want 81 connections, over 1 MiB in", st)
	}

	code, body := gwtest.Get(t, s.URL+"/raw")
	if code != http.StatusUpgradeRequired || !strings.Contains(body, "only for HTTP/1.1 upgrade requests") {
		t.Errorf("hijack of an ordinary request: %d %q", code, body)
	}
}
