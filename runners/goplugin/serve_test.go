package goplugin

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/runners/pool"
)

func TestGet(t *testing.T) {
	h := start(t, pool.Options{Workers: 2}, nil)
	resp, err := http.Get(h.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "Hello, World!" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	// Head and body came as one message and were not flushed, so gw's
	// net/http could still compute the length.
	if resp.ContentLength != 13 || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("Content-Length %d, Content-Type %q", resp.ContentLength, resp.Header.Get("Content-Type"))
	}
	if code, _ := h.get(t, "/nope"); code != 404 {
		t.Errorf("unknown path: %d, want 404", code)
	}
}

func TestRequestFields(t *testing.T) {
	h := start(t, pool.Options{}, nil)
	for _, tc := range []struct {
		name   string
		body   io.Reader
		length string
	}{
		{name: "known length", body: strings.NewReader("xyz"), length: "length=3"},
		{name: "chunked", body: io.MultiReader(strings.NewReader("x"), strings.NewReader("yz")), length: "length=-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", h.srv.URL+"/echo?a=1&b=%20", tc.body)
			req.Host = "example.test"
			req.Header.Add("X-Dup", "one")
			req.Header.Add("X-Dup", "two")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			got := string(b)
			for _, want := range []string{
				"method=POST\n", "uri=/echo?a=1&b=%20\n", "path=/echo\n", "query=a=1&b=%20\n", "proto=HTTP/1.1\n",
				"host=example.test\n", "remote=127.0.0.1:", "tls=false\n", tc.length + "\n", "body=xyz\n",
				"x-dup=one\nx-dup=two\n",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("missing %q in:\n%s", want, got)
				}
			}
		})
	}
}

func TestPostLargeBody(t *testing.T) {
	h := start(t, pool.Options{}, nil)
	body := make([]byte, 10<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	sum := sha256.Sum256(body)
	resp, err := http.Post(h.srv.URL+"/hash", "application/octet-stream", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	want := fmt.Sprintf("%d %s\n", len(body), hex.EncodeToString(sum[:]))
	if resp.StatusCode != 200 || string(got) != want {
		t.Fatalf("got %d %q, want %q", resp.StatusCode, got, want)
	}
}

func TestStreamingResponse(t *testing.T) {
	h := start(t, pool.Options{}, nil)
	resp, err := http.Get(h.srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var at []time.Time
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		at = append(at, time.Now())
		if want := fmt.Sprintf("chunk %d", len(at)-1); sc.Text() != want {
			t.Fatalf("line %q, want %q", sc.Text(), want)
		}
	}
	if len(at) != 3 {
		t.Fatalf("%d chunks, want 3", len(at))
	}
	if d := at[2].Sub(at[0]); d < 400*time.Millisecond {
		t.Errorf("first chunk arrived only %v before the last: buffered, not streamed", d)
	}
}

func TestPanicAnswers500AndKeepsServing(t *testing.T) {
	h := start(t, pool.Options{}, nil)
	pid := h.pool.PIDs()[0]
	if code, body := h.get(t, "/panic"); code != 500 || body != "Internal Server Error\n" {
		t.Fatalf("panic: got %d %q", code, body)
	}
	if code, body := h.get(t, "/"); code != 200 || body != "Hello, World!" {
		t.Fatalf("after panic: got %d %q", code, body)
	}
	if pids := h.pool.PIDs(); len(pids) != 1 || pids[0] != pid {
		t.Errorf("plugin replaced after a handler panic: %v, was %d", pids, pid)
	}
	rec := h.logs.waitRecord(t, "handler panicked")
	if rec["level"] != "ERROR" || rec["panic"] != "boom" || rec["app"] != "plug" || rec["worker"] == nil ||
		!strings.Contains(fmt.Sprint(rec["stack"]), "main.panicky") {
		t.Errorf("panic record: %v", rec)
	}
}

func TestLatePanicCutsTheResponse(t *testing.T) {
	h := start(t, pool.Options{}, nil)
	pid := h.pool.PIDs()[0]
	resp, err := http.Get(h.srv.URL + "/panic?late")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || string(b) != "partial\n" {
		t.Errorf("got %q, %v: want the partial body, then a cut", b, err)
	}
	var ae *AppError
	if err := <-h.errs; !errors.As(err, &ae) {
		t.Errorf("error %v, want *AppError", err)
	}
	if code, _ := h.get(t, "/"); code != 200 || h.pool.PIDs()[0] != pid {
		t.Errorf("after the panic: %d, pids %v (was %d)", code, h.pool.PIDs(), pid)
	}
}

func TestKilledMidRequest(t *testing.T) {
	h := start(t, pool.Options{}, nil)
	pid := h.pool.PIDs()[0]
	codes := make(chan int, 1)
	// Ends with the request, which the kill ends.
	go func() {
		resp, err := http.Get(h.srv.URL + "/sleep?10")
		if err != nil {
			codes <- 0
			return
		}
		resp.Body.Close()
		codes <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-codes:
		if code != http.StatusBadGateway {
			t.Errorf("status %d, want 502", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request still running 5s after the plugin was killed")
	}
	if err := <-h.errs; !errors.Is(err, pool.ErrWorkerGone) {
		t.Errorf("error %v does not wrap pool.ErrWorkerGone", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if pids := h.pool.PIDs(); len(pids) == 1 && pids[0] != pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not respawned: %v", h.pool.PIDs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := h.get(t, "/pid"); code != 200 || body == fmt.Sprintln(pid) {
		t.Errorf("after respawn: %d %q (old pid %d)", code, body, pid)
	}
}

func TestTrailers(t *testing.T) {
	h := start(t, pool.Options{}, nil)
	resp, err := http.Get(h.srv.URL + "/trailers")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "body with trailers\n" {
		t.Fatalf("body %q", b)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
		t.Errorf("announced trailer X-Checksum = %q (trailers %v)", got, resp.Trailer)
	}
	if got := resp.Trailer.Get("X-Late"); got != "late" {
		t.Errorf("TrailerPrefix trailer X-Late = %q (trailers %v)", got, resp.Trailer)
	}
}

func TestPluginOutputIsLogged(t *testing.T) {
	h := start(t, pool.Options{}, nil)
	if code, _ := h.get(t, "/log?msg=hi"); code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, tc := range []struct{ msg, stream string }{
		{"log package: hi", "stderr"},
		{"stderr: hi", "stderr"},
		{"stdout: hi", "stdout"},
	} {
		rec := h.logs.waitRecord(t, tc.msg)
		if rec["msg"] != tc.msg || rec["app"] != "plug" || rec["worker"] == nil || rec["pid"] == nil ||
			rec["level"] != "INFO" || rec["stream"] != tc.stream {
			t.Errorf("%q: record %v", tc.msg, rec)
		}
	}
}

func TestClientGoneCancelsHandler(t *testing.T) {
	h := start(t, pool.Options{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/sleep?10", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("request finished despite the client leaving")
	}
	rec := h.logs.waitRecord(t, "sleep interrupted: context canceled")
	if rec["app"] != "plug" {
		t.Errorf("record %v", rec)
	}
}

func TestDeadlineCancelsOnlyItsRequest(t *testing.T) {
	h := start(t, pool.Options{Timeout: 300 * time.Millisecond}, nil)
	begin := time.Now()
	if code, _ := h.get(t, "/sleep?10"); code != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", code)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("deadline answered after %v", d)
	}
	h.logs.waitRecord(t, "sleep interrupted: context canceled")
	if code, _ := h.get(t, "/"); code != 200 {
		t.Errorf("after the deadline: %d", code)
	}
}

func TestOneProcessServesItsSlotsConcurrently(t *testing.T) {
	h := start(t, pool.Options{Workers: 1}, func(l *Launcher) { l.Slots = 8 })
	begin := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		// Each ends with its request.
		go func() {
			defer wg.Done()
			if code, body := h.get(t, "/sleep?0.5"); code != 200 || body != "slept 0.5s\n" {
				t.Errorf("got %d %q", code, body)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(begin); d > 2500*time.Millisecond { // one at a time: 4s
		t.Errorf("8 half-second requests on 8 slots took %v", d)
	}
}

func TestStopIsGraceful(t *testing.T) {
	log, _ := newLog()
	l := launcher(t, log)
	w, err := l.Launch(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	tw := newTestWriter()
	req := httptest.NewRequest("GET", "/", nil)
	if err := w.Serve(0, tw, req); err != nil || tw.body.String() != "Hello, World!" {
		t.Fatalf("serve: %v %q", err, tw.body.String())
	}
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.Stop(ctx)
	if got := w.Exit(); got != "exit status 0" {
		t.Errorf("exit %q, want sdk.Serve to return and main to exit 0", got)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("stop took %v", d)
	}
	if pid := w.PID(); alive(pid) {
		t.Errorf("pid %d alive after Stop", pid)
	}
}

func TestPluginExitsWhenGwIsGone(t *testing.T) {
	log, _ := newLog()
	l := launcher(t, log)
	pw, err := l.Launch(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	w := pw.(*worker)
	t.Cleanup(w.Kill)
	// What gw's exit does to the owner pipe.
	w.proc.owner.Close()
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("plugin still running 5s after its owner pipe closed")
	}
	if got := w.Exit(); got != "exit status 1" {
		t.Errorf("exit %q, want the SDK's own exit", got)
	}
}

func TestSIGTERMIsIgnored(t *testing.T) {
	h := start(t, pool.Options{}, nil)
	pid := h.pool.PIDs()[0]
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	h.logs.waitRecord(t, "ignoring SIGTERM")
	if code, _ := h.get(t, "/"); code != 200 || !alive(pid) {
		t.Errorf("after SIGTERM: status %d, alive %v", code, alive(pid))
	}
}

func TestSlowRequestLogsStacks(t *testing.T) {
	h := start(t, pool.Options{SlowAfter: 200 * time.Millisecond}, nil)
	if code, _ := h.get(t, "/sleep?0.6"); code != 200 {
		t.Fatalf("status %d", code)
	}
	// The SDK answers SIGUSR1 (pool.StackDumper) with one record per
	// goroutine; the sleeping handler's is among them.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(h.logs.String(), "main.sleep") {
		if time.Now().After(deadline) {
			t.Fatalf("no stack of the sleeping handler in the log:\n%s", h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testWriter is a minimal ResponseWriter for calling a worker directly.
type testWriter struct {
	header http.Header
	code   int
	body   strings.Builder
}

func newTestWriter() *testWriter { return &testWriter{header: http.Header{}} }

func (r *testWriter) Header() http.Header { return r.header }
func (r *testWriter) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *testWriter) Write(b []byte) (int, error) {
	r.WriteHeader(200)
	return r.body.Write(b)
}
