package gateway

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/gwhq/gw/gateway/accesslog"
	"github.com/gwhq/gw/gateway/compress"
	"github.com/gwhq/gw/internal/reqid"
	"github.com/gwhq/gw/runners/pool"
)

// fakeWorker is a one-slot runner that runs serve in-process: the pool's
// timing is what these tests look at, not a real process.
type fakeWorker struct {
	serve func(w http.ResponseWriter, r *http.Request) error
	done  chan struct{}
	once  sync.Once
}

const fakePID = 4242

func (f *fakeWorker) PID() int   { return fakePID }
func (f *fakeWorker) Slots() int { return 1 }
func (f *fakeWorker) Serve(_ int, w http.ResponseWriter, r *http.Request) error {
	return f.serve(w, r)
}
func (f *fakeWorker) Abort(int)                                        {}
func (f *fakeWorker) Kill()                                            { f.once.Do(func() { close(f.done) }) }
func (f *fakeWorker) Stop(context.Context)                             { f.Kill() }
func (f *fakeWorker) Done() <-chan struct{}                            { return f.done }
func (f *fakeWorker) Exit() string                                     { return "exited" }
func (f *fakeWorker) Launch(context.Context, int) (pool.Worker, error) { return f, nil }

// fakeApp answers by path: /app/sleep sleeps 100ms, /app/own sets its own
// X-Request-Id, /app/fail fails as an app error; anything else echoes the
// request id and traceparent the app saw.
func fakeApp(w http.ResponseWriter, r *http.Request) error {
	switch r.URL.Path {
	case "/app/sleep":
		time.Sleep(100 * time.Millisecond)
	case "/app/own":
		w.Header().Set(reqid.Header, "the-app's")
	case "/app/fail":
		return &pool.AppError{Msg: "boom"}
	}
	io.WriteString(w, r.Header.Get(reqid.Header)+" "+r.Header.Get(reqid.Traceparent))
	return nil
}

// syncBuffer collects access log lines written from handler goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines waits until n lines are in, then returns them parsed.
func (s *syncBuffer) lines(t *testing.T, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		text := s.b.String()
		s.mu.Unlock()
		if got := strings.Count(text, "\n"); got >= n || time.Now().After(deadline) {
			var out []map[string]any
			for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("access log line %q: %v", line, err)
				}
				out = append(out, m)
			}
			if len(out) != n {
				t.Fatalf("%d access log lines, want %d:\n%s", len(out), n, text)
			}
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startGateway serves one app at /app (a one-slot pool of fakeApp, static
// files under /app/static, bodies up to 10 bytes) with log as gw's logger.
func startGateway(t testing.TB, log *slog.Logger) *httptest.Server {
	t.Helper()
	p := pool.New(pool.Options{Name: "fake", QueueSize: 10}, &fakeWorker{serve: fakeApp, done: make(chan struct{})}, log)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte("static!"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := &Gateway{log: log}
	g.routes.Store(&table{body: testPolicy(t, 10, 64<<10), routes: []route{{
		name: "fake", mount: "/app", pool: p, serve: p.Serve,
		static: []staticDir{{"/app/static", http.StripPrefix("/app/static", http.FileServer(http.Dir(dir)))}},
	}}})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

const clientTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestAccessLog(t *testing.T) {
	var buf syncBuffer
	log := accesslog.Attach(slog.New(slog.NewTextHandler(io.Discard, nil)), accesslog.New(&buf, "json"))
	srv := startGateway(t, log)

	type want struct {
		status      int
		app         string
		pid         float64
		body        string // "" = don't check
		id          string // "" = a generated one
		minAppTime  time.Duration
		responseIDs int // X-Request-Id values in the response
	}
	for i, tc := range []struct {
		method, path string
		header       http.Header
		body         string
		want         want
	}{
		{"GET", "/app/hello", http.Header{"X-Request-Id": {"abc-123"}, "Traceparent": {clientTP}}, "",
			want{status: 200, app: "fake", pid: fakePID, body: "abc-123 " + clientTP, id: "abc-123", responseIDs: 1}},
		{"GET", "/app/sleep", nil, "", want{status: 200, app: "fake", pid: fakePID, minAppTime: 100 * time.Millisecond, responseIDs: 1}},
		{"GET", "/app/own", nil, "", want{status: 200, app: "fake", pid: fakePID, responseIDs: 1}},
		{"GET", "/app/fail", http.Header{"X-Request-Id": {"bad id"}}, "", want{status: 500, app: "fake", pid: fakePID, responseIDs: 1}},
		{"GET", "/elsewhere", nil, "", want{status: 404, responseIDs: 1}},
		{"GET", "/app/static/f.txt", nil, "", want{status: 200, app: "fake", body: "static!", responseIDs: 1}},
		{"POST", "/app/upload", nil, "more than ten bytes", want{status: 413, app: "fake", responseIDs: 1}},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		for k, v := range tc.header {
			req.Header[k] = v
		}
		resp, body := get(t, req)
		e := buf.lines(t, i+1)[i]
		w := tc.want
		ids := resp.Header[reqid.Header]
		if resp.StatusCode != w.status || len(ids) != w.responseIDs || (w.body != "" && body != w.body) {
			t.Errorf("%s %s: %d %q X-Request-Id %q; want %d %q and %d id", tc.method, tc.path,
				resp.StatusCode, body, ids, w.status, w.body, w.responseIDs)
		}
		logged, _ := e["request_id"].(string)
		switch {
		case tc.path == "/app/own":
			if ids[0] != "the-app's" || !reqid.Valid(logged) {
				t.Errorf("%s: response id %q, logged %q: the app's own id should win the response", tc.path, ids[0], logged)
			}
		case w.id != "" && (logged != w.id || ids[0] != w.id):
			t.Errorf("%s: logged id %q, response %q; want %q", tc.path, logged, ids[0], w.id)
		case w.id == "" && (len(logged) != 32 || ids[0] != logged):
			t.Errorf("%s: logged id %q, response %q; want the same generated id", tc.path, logged, ids[0])
		}
		if e["status"] != float64(w.status) || e["app"] != w.app || e["pid"] != w.pid ||
			e["method"] != tc.method || e["path"] != tc.path || e["bytes"] != float64(len(body)) {
			t.Errorf("%s %s: logged %v", tc.method, tc.path, e)
		}
		appTime := time.Duration(e["app_time"].(float64))
		total := time.Duration(e["total"].(float64))
		if appTime < w.minAppTime || total < appTime || (w.pid == 0 && appTime != 0) {
			t.Errorf("%s: app_time %v, total %v; want app_time ≥ %v (0 without a runner), total ≥ app_time",
				tc.path, appTime, total, w.minAppTime)
		}
	}
}

// TestAccessLogQueueWait: with the one slot busy, the next request's wait
// for it is logged as queue_wait; a client that gives up while queued is
// logged as 499.
func TestAccessLogQueueWait(t *testing.T) {
	var buf syncBuffer
	log := accesslog.Attach(slog.New(slog.NewTextHandler(io.Discard, nil)), accesslog.New(&buf, "json"))
	srv := startGateway(t, log)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		// Each ends with its response.
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", srv.URL+"/app/sleep", nil)
			get(t, req)
		}()
	}
	wg.Wait()
	var waits []time.Duration
	for _, e := range buf.lines(t, 2) {
		waits = append(waits, time.Duration(e["queue_wait"].(float64)))
	}
	if max(waits[0], waits[1]) < 80*time.Millisecond {
		t.Errorf("queue waits %v: one request should have waited about 100ms for the slot", waits)
	}

	busy := make(chan struct{})
	// Holds the slot while the second client gives up.
	go func() {
		defer close(busy)
		req, _ := http.NewRequest("GET", srv.URL+"/app/sleep", nil)
		get(t, req)
	}()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/app/hello", nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the impatient request was answered")
	}
	<-busy
	lines := buf.lines(t, 4)
	var gaveUp map[string]any
	for _, e := range lines[2:] {
		if e["path"] == "/app/hello" {
			gaveUp = e
		}
	}
	if gaveUp == nil || gaveUp["status"] != float64(499) || gaveUp["pid"] != float64(0) {
		t.Errorf("the request that left while queued was logged as %v, want status 499, pid 0", gaveUp)
	}
}

// With the access log off, requests still get their ids.
func TestRequestIDWithoutAccessLog(t *testing.T) {
	srv := startGateway(t, slog.New(slog.NewTextHandler(io.Discard, nil)))
	req, _ := http.NewRequest("GET", srv.URL+"/app/hello", nil)
	resp, body := get(t, req)
	id := resp.Header.Get(reqid.Header)
	seenID, seenTP, _ := strings.Cut(body, " ")
	if !reqid.Valid(id) || seenID != id || !reqid.ValidTraceparent(seenTP) {
		t.Errorf("response id %q, app saw %q: want a generated id, the same, and a valid traceparent", id, body)
	}
}

// BenchmarkServeHTTP measures what the request id and the access log add
// to a request that reaches a runner (an in-process one).
func BenchmarkServeHTTP(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "access_log_off"
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		if on {
			name = "access_log_on"
			log = accesslog.Attach(log, accesslog.New(io.Discard, "json"))
		}
		b.Run(name, func(b *testing.B) {
			srv := startGateway(b, log)
			srv.Close() // ServeHTTP is called directly
			g := srv.Config.Handler
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "/app/hello", nil)
				g.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}

// BenchmarkServeHTTPCompress: compress on costs a request that accepts no
// coding nothing; one that does pays for its compressed answer.
func BenchmarkServeHTTPCompress(b *testing.B) {
	for _, ae := range []string{"", "gzip", "zstd"} {
		b.Run("accept="+ae, func(b *testing.B) {
			srv := startGateway(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
			srv.Close()
			g := srv.Config.Handler.(*Gateway)
			g.routes.Load().routes[0].compress = &compress.Options{Min: 1024}
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "/app/hello", nil)
				if ae != "" {
					req.Header.Set("Accept-Encoding", ae)
				}
				g.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
