package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/gateway/accesslog"
)

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	newLogger(&buf, "json").Info("hello", "k", "v")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["msg"] != "hello" || m["k"] != "v" {
		t.Errorf("json log line %q (%v)", buf.String(), err)
	}
	buf.Reset()
	newLogger(&buf, "text").Info("hello", "k", "v")
	if !strings.Contains(buf.String(), "msg=hello k=v") {
		t.Errorf("text log line %q", buf.String())
	}
}

// syncBuf is gw's main log, written by the reopen loop while the test reads.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestReopenOnUSR1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	access, err := accesslog.Open(path, "text", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer access.Close()
	var main syncBuf
	usr1 := make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// Ended by cancel below.
	go func() { defer close(done); reopenOnUSR1(ctx, usr1, access, slog.New(slog.NewTextHandler(&main, nil))) }()

	access.Log(accesslog.Entry{RequestID: "before"})
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	usr1 <- syscall.SIGUSR1
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(main.String(), "access log reopened"); {
		if time.Now().After(deadline) {
			t.Fatalf("no reopen logged: %q", main.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	access.Log(accesslog.Entry{RequestID: "after"})
	cancel()
	<-done
	for name, id := range map[string]string{path + ".1": "before", path: "after"} {
		b, err := os.ReadFile(name)
		if err != nil || !strings.Contains(string(b), "request_id="+id) || strings.Count(string(b), "\n") != 1 {
			t.Errorf("%s: %q (%v), want just the %q line", filepath.Base(name), b, err, id)
		}
	}
}
