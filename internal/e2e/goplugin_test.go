package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
	_, pidStr := gwtest.Get(t, s.URL+"/pid")
	pid, err := strconv.Atoi(strings.TrimSpace(pidStr))
	if err != nil {
		t.Fatalf("pid %q", pidStr)
	}
	done := getAsync(s.URL + "/sleep?10")
	time.Sleep(300 * time.Millisecond)
	syscall.Kill(pid, syscall.SIGKILL)
	if code := <-done; code != http.StatusBadGateway {
		t.Fatalf("killed mid-request: %d, want 502", code)
	}
	waitNewPID(t, s.URL+"/pid", pidStr, 15*time.Second)
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
