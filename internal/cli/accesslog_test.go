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
	"github.com/gwhq/gw/internal/logfile"
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

// TestReopenOnUSR1 rotates gw's own log file and the access log file as
// logrotate does (rename, then SIGUSR1): each one's lines before the
// signal stay in the renamed file, later ones (the reopen lines included,
// for gw's log) land in a new file at the path.
func TestReopenOnUSR1(t *testing.T) {
	dir := t.TempDir()
	mainPath, accessPath := filepath.Join(dir, "gw.log"), filepath.Join(dir, "access.log")
	mainFile, err := logfile.Open(mainPath)
	if err != nil {
		t.Fatal(err)
	}
	defer mainFile.Close()
	access, err := accesslog.Open(accessPath, "text", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer access.Close()
	log := slog.New(slog.NewTextHandler(mainFile, nil))
	usr1 := make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// Ended by cancel below.
	go func() { defer close(done); reopenOnUSR1(ctx, usr1, reopenable(mainFile, access), log) }()

	log.Info("before")
	access.Log(accesslog.Entry{RequestID: "before"})
	for _, p := range []string{mainPath, accessPath} {
		if err := os.Rename(p, p+".1"); err != nil {
			t.Fatal(err)
		}
	}
	usr1 <- syscall.SIGUSR1
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b, _ := os.ReadFile(mainPath)
		if strings.Contains(string(b), "access log reopened") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reopen logged in the new gw log: %q", b)
		}
	}
	log.Info("after")
	access.Log(accesslog.Entry{RequestID: "after"})
	cancel()
	<-done
	for name, want := range map[string][]string{
		mainPath + ".1":   {"msg=before"},
		mainPath:          {"msg=\"SIGUSR1: log reopened\"", "msg=\"SIGUSR1: access log reopened\"", "msg=after"},
		accessPath + ".1": {"request_id=before"},
		accessPath:        {"request_id=after"},
	} {
		b, err := os.ReadFile(name)
		if err != nil || strings.Count(string(b), "\n") != len(want) {
			t.Errorf("%s: %q (%v), want %d lines", filepath.Base(name), b, err, len(want))
			continue
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s: %q lacks %s", filepath.Base(name), b, w)
			}
		}
	}
}

// TestReopenNothing: a SIGUSR1 with no log file says so, and gw lives on.
func TestReopenNothing(t *testing.T) {
	var main syncBuf
	usr1 := make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// Ended by cancel below.
	go func() {
		defer close(done)
		reopenOnUSR1(ctx, usr1, reopenable(nil, nil), slog.New(slog.NewTextHandler(&main, nil)))
	}()
	usr1 <- syscall.SIGUSR1
	usr1 <- syscall.SIGUSR1 // taken only once the first was handled
	cancel()
	<-done
	if got := strings.Count(main.String(), "no log file to reopen"); got < 1 {
		t.Errorf("log %q, want the no-file line", main.String())
	}
}
