package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fake is a Controller that records what it was asked and fails as told.
type fake struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (f *fake) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.err
}

func (f *fake) Status() Status {
	return Status{PID: 7, Version: "test", Generation: 3, Apps: []AppStatus{{Name: "blog", State: "serving",
		Runners: []Runner{{ID: 1, PID: 42, State: "idle"}}}}}
}
func (f *fake) Reload(context.Context) error { return f.record("reload") }
func (f *fake) ReloadApp(_ context.Context, n string) error {
	return f.record("reload " + n)
}
func (f *fake) RestartApp(_ context.Context, n string) error { return f.record("restart " + n) }
func (f *fake) DrainApp(_ context.Context, n string) error   { return f.record("drain " + n) }
func (f *fake) ScaleApp(_ context.Context, n string, w int) error {
	return f.record(fmt.Sprintf("scale %s %d", n, w))
}

// serve runs a Server for ctl on a socket in a temp dir and returns its
// path and a client for it.
func serve(t *testing.T, ctl Controller) (string, *http.Client) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(ctl, os.Geteuid(), "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	return path, &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

func TestAPI(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		err                      error // the controller's answer
		code                     int
		call                     string // what the controller was asked; "" = nothing
		answer                   string // in the body
	}{
		{name: "ping", method: "GET", path: "/v1/ping", code: 200, answer: `"gw": "test"`},
		{name: "status", method: "GET", path: "/v1/status", code: 200, answer: `"generation": 3`},
		{name: "app status", method: "GET", path: "/v1/apps/blog", code: 200, answer: `"name": "blog"`},
		{name: "app status unknown", method: "GET", path: "/v1/apps/nope", code: 404, answer: `no such app: \"nope\"`},
		{name: "reload", method: "POST", path: "/v1/reload", code: 200, call: "reload", answer: `"message": "reload: done"`},
		{name: "reload fails", method: "POST", path: "/v1/reload", err: errors.New("app x: SyntaxError"), code: 500,
			call: "reload", answer: `"error": "reload: app x: SyntaxError"`},
		{name: "reload app", method: "POST", path: "/v1/apps/blog/reload", code: 200, call: "reload blog"},
		{name: "reload app moved", method: "POST", path: "/v1/apps/blog/reload", err: &Conflict{Reason: "mount changed"},
			code: 409, call: "reload blog", answer: "mount changed"},
		{name: "restart", method: "POST", path: "/v1/apps/blog/restart", code: 200, call: "restart blog"},
		{name: "restart unknown", method: "POST", path: "/v1/apps/nope/restart", err: fmt.Errorf("%w: %q", ErrUnknownApp, "nope"),
			code: 404, call: "restart nope", answer: `no such app`},
		{name: "drain", method: "POST", path: "/v1/apps/blog/drain", code: 200, call: "drain blog"},
		{name: "scale", method: "POST", path: "/v1/apps/blog/scale", body: `{"workers": 3}`, code: 200, call: "scale blog 3",
			answer: "scale blog to 3: done"},
		{name: "scale to zero", method: "POST", path: "/v1/apps/blog/scale", body: `{"workers": 0}`, code: 200, call: "scale blog 0"},
		{name: "scale without body", method: "POST", path: "/v1/apps/blog/scale", code: 400, answer: `{\"workers\": N}`},
		{name: "scale negative", method: "POST", path: "/v1/apps/blog/scale", body: `{"workers": -1}`, code: 400},
		{name: "scale unknown field", method: "POST", path: "/v1/apps/blog/scale", body: `{"workers": 1, "x": 2}`, code: 400},
		{name: "unknown action", method: "POST", path: "/v1/apps/blog/explode", code: 404, answer: "no app action"},
		{name: "status by POST", method: "POST", path: "/v1/status", code: 404, answer: "no POST /v1/status"},
		{name: "reload by GET", method: "GET", path: "/v1/reload", code: 404, answer: "no GET /v1/reload"},
		{name: "unknown path", method: "GET", path: "/etc/passwd", code: 404, answer: "no GET /etc/passwd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{err: tc.err}
			_, c := serve(t, f)
			req, _ := http.NewRequest(tc.method, "http://gw"+tc.path, strings.NewReader(tc.body))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.code, body)
			}
			if got := resp.Header.Get(Header); got != Version {
				t.Errorf("%s header %q, want %q", Header, got, Version)
			}
			if !json.Valid(body) {
				t.Errorf("answer is not JSON: %s", body)
			}
			if !strings.Contains(string(body), tc.answer) {
				t.Errorf("answer %s, want it to contain %s", body, tc.answer)
			}
			want := []string(nil)
			if tc.call != "" {
				want = []string{tc.call}
			}
			if fmt.Sprint(f.calls) != fmt.Sprint(want) {
				t.Errorf("controller asked %q, want %q", f.calls, want)
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		uid, owner int
		ok         bool
	}{
		{0, 0, true},
		{0, 1000, true}, // root always
		{1000, 1000, true},
		{1001, 1000, false},
		{65534, 0, false},
	}
	for _, tc := range tests {
		if got := allowed(tc.uid, tc.owner); got != tc.ok {
			t.Errorf("allowed(%d, %d) = %v, want %v", tc.uid, tc.owner, got, tc.ok)
		}
	}
}

// TestPeerCredentials: the server reads the peer's uid with SO_PEERCRED.
// Our own uid passes; another user (nobody, with the socket opened to it
// by mode 0666, as a careless chmod would) is refused with 403 and
// nothing is done.
func TestPeerCredentials(t *testing.T) {
	f := &fake{}
	path, c := serve(t, f)
	resp, err := c.Post("http://gw/v1/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(f.calls) != 1 {
		t.Fatalf("own uid %d: status %d, calls %q", os.Geteuid(), resp.StatusCode, f.calls)
	}

	if os.Geteuid() != 0 {
		t.Skip("connecting as another user needs root")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("no curl to connect as another user")
	}
	for _, p := range []string{filepath.Dir(path), path} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Dir(filepath.Dir(path)), 0o755) // t.TempDir's parent is 0700
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, curl, "-s", "-w", "\n%{http_code}", "--unix-socket", path, "-X", "POST", "http://gw/v1/reload")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("curl as nobody: %v: %s", err, out)
	}
	if !strings.HasSuffix(string(out), "\n403") || !strings.Contains(string(out), "uid 65534 may not use it") {
		t.Errorf("nobody got %q, want 403 naming its uid", out)
	}
	if len(f.calls) != 1 {
		t.Errorf("controller asked %q after nobody's request, want only the first reload", f.calls)
	}
}
