package goplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gwhq/gw/runners/goplugin/goplugintest"
	"github.com/gwhq/gw/runners/pool"
)

// examplePlugin is the example plugin, built once in TestMain and only read
// after that.
var examplePlugin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "goplugin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	examplePlugin, err = goplugintest.BuildTo(dir, "example", goplugintest.ExamplePkg)
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logBuffer collects gw's log records as JSON, for tests that look for a
// plugin's output in it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) records() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(l.b.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// waitRecord waits for a record whose message contains msg.
func (l *logBuffer) waitRecord(t *testing.T, msg string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, rec := range l.records() {
			if m, _ := rec["msg"].(string); strings.Contains(m, msg) {
				return rec
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log record with %q in:\n%s", msg, l.String())
	return nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLog() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// harness is a pool of example plugins behind an httptest server, which
// maps errors to statuses as gw's gateway does.
type harness struct {
	pool *pool.Pool
	srv  *httptest.Server
	logs *logBuffer
	errs chan error
}

func launcher(t *testing.T, log *slog.Logger) *Launcher {
	return &Launcher{App: "plug", Path: examplePlugin, Slots: 8, SockDir: t.TempDir(),
		StartTimeout: 10 * time.Second, PingEvery: 200 * time.Millisecond, PingTimeout: time.Second, Log: log}
}

func start(t *testing.T, opts pool.Options, tweak func(*Launcher)) *harness {
	t.Helper()
	log, logs := newLog()
	l := launcher(t, log)
	if tweak != nil {
		tweak(l)
	}
	opts.Name = "plug"
	opts.Backoff = pool.Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	p := pool.New(opts, l, log)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := &harness{pool: p, logs: logs, errs: make(chan error, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	var pids []int
	t.Cleanup(func() {
		h.srv.Close()
		pids = p.PIDs()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Shutdown(ctx)
		for _, pid := range pids {
			if alive(pid) {
				t.Errorf("plugin pid %d outlived the pool", pid)
			}
		}
		if ents, _ := os.ReadDir(l.SockDir); len(ents) > 0 {
			t.Errorf("socket dirs left behind: %v", ents)
		}
	})
	return h
}

func (h *harness) serve(w http.ResponseWriter, r *http.Request) {
	sw := &sentWriter{ResponseWriter: w}
	err := h.pool.Serve(sw, r)
	if err == nil {
		return
	}
	h.errs <- err
	if sw.sent {
		panic(http.ErrAbortHandler)
	}
	var ae *AppError
	switch {
	case errors.Is(err, pool.ErrTimeout):
		w.WriteHeader(http.StatusGatewayTimeout)
	case errors.As(err, &ae):
		w.WriteHeader(http.StatusInternalServerError)
	default:
		w.WriteHeader(http.StatusBadGateway)
	}
}

// sentWriter records whether the response head went out.
type sentWriter struct {
	http.ResponseWriter
	sent bool
}

func (w *sentWriter) WriteHeader(code int) {
	if code >= 200 {
		w.sent = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sentWriter) Write(b []byte) (int, error) {
	w.sent = true
	return w.ResponseWriter.Write(b)
}

func (w *sentWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (h *harness) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(h.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// running lists live processes whose command line mentions s.
func running(s string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err == nil && bytes.Contains(b, []byte(s)) {
			var pid int
			fmt.Sscanf(d, "/proc/%d/cmdline", &pid)
			if alive(pid) {
				out = append(out, d)
			}
		}
	}
	return out
}
