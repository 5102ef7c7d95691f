package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// TestDeadlineAndSlowlog: past slow_after the runner's stacks reach the log
// (naming the app's own file); past the timeout the client gets 504 in
// about the timeout, and the app is back to full strength with a fresh
// runner.
func TestDeadlineAndSlowlog(t *testing.T) {
	stackMark := map[string]string{
		"python": "most recent call first", // faulthandler
		"perl":   "gw_psgi: slow request, stack",
		"ruby":   "gw_rack: thread",
	}
	for _, ls := range suites {
		t.Run(ls.lang, func(t *testing.T) {
			s := gwtest.Start(t, "--interpreter", ls.interp(t), "--workers", "2", "--timeout", "1s",
				"--slow-after", "300ms", suitePath(ls.app))
			before := s.Children()
			start := time.Now()
			code, body := gwtest.Get(t, s.URL+"/sleep?5")
			took := time.Since(start)
			if code != 504 {
				t.Fatalf("status %d %q, want 504", code, body)
			}
			if took < 900*time.Millisecond || took > 3*time.Second {
				t.Errorf("504 after %v, want about 1s", took)
			}
			for _, want := range []string{stackMark[ls.lang], "suite.", "slow request"} {
				if !strings.Contains(s.Log(), want) {
					t.Errorf("log lacks %q:\n%s", want, s.Log())
				}
			}
			// Back to full strength: two runners, the stuck one replaced.
			deadline := time.Now().Add(10 * time.Second)
			for {
				kids := s.Children()
				if len(kids) == 2 && !(containsPID(kids, before[0]) && containsPID(kids, before[1])) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("runners %v (before %v): the stuck runner was not replaced", kids, before)
				}
				time.Sleep(50 * time.Millisecond)
			}
			for range 4 {
				if code, _ := gwtest.Get(t, s.URL+"/pid"); code != 200 {
					t.Fatalf("after the deadline: %d", code)
				}
			}
			if !strings.Contains(s.Log(), "reason=deadline") {
				t.Errorf("exit reason not logged:\n%s", s.Log())
			}
		})
	}
}

// loadFor runs gwtest.Load against url for d.
func loadFor(url string, conns int, d time.Duration) *gwtest.LoadResult {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return gwtest.Load(ctx, url, conns)
}

// TestKillRunnersUnderLoad: SIGKILL a random runner every 200 ms for 10 s
// under load. Only requests in flight on a killed runner may fail.
func TestKillRunnersUnderLoad(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "4", app("suite.py"))
	var kills atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if kids := s.Children(); len(kids) > 0 {
				if syscall.Kill(kids[rand.IntN(len(kids))], syscall.SIGKILL) == nil {
					kills.Add(1)
				}
			}
		}
	}()
	res := gwtest.Load(ctx, s.URL+"/sleep?0.01", 8)
	t.Logf("%d kills: %v", kills.Load(), res)
	if res.OK < 1000 || res.Failed > kills.Load() || res.Refused > 0 {
		t.Errorf("%d kills: %v; want at most one failure per kill", kills.Load(), res)
	}
	for code := range res.Statuses {
		// 502: the runner died before answering; 200 cut short: it died
		// mid-body, after the head went out. Either way it was in flight.
		if code != http.StatusBadGateway && code != http.StatusOK {
			t.Errorf("status %d among failures: only requests in flight on a killed runner may fail", code)
		}
	}
}

// TestMaxRequestsUnderLoad: recycling every 50 requests under load fails
// nothing.
func TestMaxRequestsUnderLoad(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "2", "--max-requests", "50", app("suite.py"))
	res := loadFor(s.URL+"/pid", 8, 10*time.Second)
	recycled := strings.Count(s.Log(), "reason=max_requests")
	t.Logf("%v; %d runners recycled", res, recycled)
	if res.Failed > 0 || res.OK < 1000 || recycled < 10 {
		t.Errorf("%v, %d recycled: want zero failures and many recyclings", res, recycled)
	}
}

// copyApp puts a copy of testdata/python/version.py at dir/app.py with
// version v (or broken code when v is "").
func writeVersion(t *testing.T, path, v string) {
	t.Helper()
	src, err := os.ReadFile(app("version.py"))
	if err != nil {
		t.Fatal(err)
	}
	code := strings.Replace(string(src), `VERSION = "v1"`, fmt.Sprintf("VERSION = %q", v), 1)
	if v == "" {
		code = "this is not python(\n"
	}
	if err := os.WriteFile(path, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startVersioned serves version.py as v1, color red, on workers runners,
// from a config file: the reload tests rewrite both (writeVersion,
// reloadConfig) and send SIGHUP.
func startVersioned(t *testing.T, workers int) (s *gwtest.Server, py, appPath, cfgPath string) {
	t.Helper()
	py = gwtest.RequirePython(t)
	dir := t.TempDir()
	appPath, cfgPath = filepath.Join(dir, "app.py"), filepath.Join(dir, "gw.yaml")
	writeVersion(t, appPath, "v1")
	reloadConfig(t, cfgPath, appPath, py, "red", workers)
	return gwtest.Start(t, "-c", cfgPath), py, appPath, cfgPath
}

func reloadConfig(t *testing.T, cfgPath, appPath, py, color string, workers int) {
	t.Helper()
	cfg := fmt.Sprintf("listen: {http: \"127.0.0.1:0\"}\napps:\n  - {name: v, lang: python, path: %s, interpreter: %s, workers: %d, env: {GW_TEST_COLOR: %s}}\n",
		appPath, py, workers, color)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReloadUnderLoad: five SIGHUPs in 10 s of load, with a config change
// before each: no failed request, no refused connection, and the last
// config is the one serving.
func TestReloadUnderLoad(t *testing.T) {
	s, py, appPath, cfgPath := startVersioned(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan *gwtest.LoadResult)
	go func() { done <- gwtest.Load(ctx, s.URL+"/", 8) }()
	colors := []string{"orange", "yellow", "green", "blue", "violet"}
	for i, c := range colors {
		time.Sleep(1500 * time.Millisecond)
		reloadConfig(t, cfgPath, appPath, py, c, 2+i%2)
		syscall.Kill(s.PID(), syscall.SIGHUP)
	}
	res := <-done
	t.Logf("5 reloads: %v", res)
	if res.Failed > 0 || res.Refused > 0 || res.OK < 1000 {
		t.Errorf("5 reloads under load: %v; want no failure", res)
	}
	if got := strings.Count(s.Log(), "reload: new generation serving"); got != 5 {
		t.Errorf("%d reloads logged, want 5:\n%s", got, s.Log())
	}
	if _, body := gwtest.Get(t, s.URL+"/"); !strings.HasSuffix(body, " violet") {
		t.Errorf("after the last reload the app says %q, want the last config's color", body)
	}
}

// TestReloadBrokenCodeKeepsServing: a reload whose new code cannot load is
// refused; the old generation serves on without a failed request. Fixed
// code and another SIGHUP switch over.
func TestReloadBrokenCodeKeepsServing(t *testing.T) {
	s, _, appPath, _ := startVersioned(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	done := make(chan *gwtest.LoadResult)
	go func() { done <- gwtest.Load(ctx, s.URL+"/", 4) }()
	time.Sleep(500 * time.Millisecond)
	writeVersion(t, appPath, "")
	syscall.Kill(s.PID(), syscall.SIGHUP)
	time.Sleep(1500 * time.Millisecond)
	if _, body := gwtest.Get(t, s.URL+"/"); !strings.HasPrefix(body, "v1 ") {
		t.Errorf("after a broken reload: %q, want the old v1 still serving", body)
	}
	if !strings.Contains(s.Log(), "reload failed") || !strings.Contains(s.Log(), "SyntaxError") {
		t.Errorf("the log does not say why the reload failed:\n%s", s.Log())
	}
	res := <-done
	t.Logf("broken reload under load: %v", res)
	if res.Failed > 0 || res.OK < 100 {
		t.Errorf("broken reload: %v; want no failure", res)
	}
	writeVersion(t, appPath, "v2")
	syscall.Kill(s.PID(), syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, body := gwtest.Get(t, s.URL+"/"); strings.HasPrefix(body, "v2 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fixed code never served:\n%s", s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReloadRejectsBadConfig: a config with a problem is rejected at SIGHUP;
// the running generation serves on.
func TestReloadRejectsBadConfig(t *testing.T) {
	s, _, appPath, cfgPath := startVersioned(t, 1)
	os.WriteFile(cfgPath, []byte("apps:\n  - {name: v, lang: python, path: "+appPath+", workerz: 3}\n"), 0o644)
	syscall.Kill(s.PID(), syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.Log(), "config rejected") {
		if time.Now().After(deadline) {
			t.Fatalf("no rejection logged:\n%s", s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(s.Log(), "workers") {
		t.Errorf("rejection does not name the key meant:\n%s", s.Log())
	}
	if code, body := gwtest.Get(t, s.URL+"/"); code != 200 || !strings.HasPrefix(body, "v1 ") {
		t.Errorf("after a rejected config: %d %q", code, body)
	}
}

// TestSIGTERMFinishesInFlight: SIGTERM during a 2 s request lets it
// complete; gw exits 0 and no runner remains.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "2", app("suite.py"))
	kids := s.Children()
	done := make(chan string, 1)
	go func() {
		code, body := gwtest.Get(t, s.URL+"/sleep?2")
		done <- fmt.Sprint(code, " ", body)
	}()
	time.Sleep(500 * time.Millisecond)
	syscall.Kill(s.PID(), syscall.SIGTERM)
	if got := <-done; got != "200 slept" {
		t.Errorf("in-flight request during SIGTERM: %q", got)
	}
	<-s.Done()
	if s.ExitCode() != 0 {
		t.Errorf("exit %d, want 0", s.ExitCode())
	}
	gwtest.WaitGone(t, kids, 5*time.Second)
}

// TestSlowlorisDoesNotStarve: 500 idle connections holding half a request
// head do not keep normal requests from being served.
func TestSlowlorisDoesNotStarve(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "2", app("suite.py"))
	addr := strings.TrimPrefix(s.URL, "http://")
	for i := range 500 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("slowloris conn %d: %v", i, err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow-%d: ", i)
	}
	res := loadFor(s.URL+"/pid", 8, 3*time.Second)
	t.Logf("with 500 slowloris connections: %v", res)
	if res.Failed > 0 || res.OK < 500 {
		t.Errorf("with 500 slowloris connections: %v", res)
	}
}

// TestFailingAppBesideHealthy: an app whose runners crash at start
// answers 503 fast and never takes the healthy app down.
func TestFailingAppBesideHealthy(t *testing.T) {
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	badPath := filepath.Join(dir, "bad.py")
	writeVersion(t, badPath, "v1")
	cfg := fmt.Sprintf("listen: {http: \"127.0.0.1:0\"}\napps:\n"+
		"  - {name: good, lang: python, path: %s, interpreter: %s, workers: 2, mount: /good}\n"+
		"  - {name: bad, lang: python, path: %s, interpreter: %s, workers: 1, mount: /bad}\n",
		app("suite.py"), py, badPath, py)
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	// The bad app's code breaks under it, then its runner dies: every
	// respawn now fails at import.
	writeVersion(t, badPath, "")
	_, pid := gwtest.Get(t, s.URL+"/bad/")
	badPID, _ := strconv.Atoi(strings.Fields(pid)[1])
	syscall.Kill(badPID, syscall.SIGKILL)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(s.Log(), "app failed") {
		if time.Now().After(deadline) {
			t.Fatalf("bad app never marked failed:\n%s", s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	resp, _ := do(t, mustReq("GET", s.URL+"/bad/", nil))
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || time.Since(start) > time.Second {
		t.Errorf("failed app: %d Retry-After %q after %v, want a fast 503", resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(start))
	}
	res := loadFor(s.URL+"/good/pid", 4, 2*time.Second)
	if res.Failed > 0 || res.OK < 200 {
		t.Errorf("healthy app beside a failing one: %v", res)
	}
}

// TestMalformedRequests: garbage gets 400 and a closed connection; no
// runner ever sees it.
func TestMalformedRequests(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "1", app("suite.py"))
	for _, raw := range []string{
		"GARBAGE\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
		"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
	} {
		rc := dialRaw(t, s)
		rc.send(raw)
		resp, err := http.ReadResponse(rc.br, nil)
		if err != nil {
			t.Errorf("%q: %v", raw, err)
			continue
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 && resp.StatusCode != 505 {
			t.Errorf("%q: status %d, want 400", raw, resp.StatusCode)
		}
		rc.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := rc.br.ReadByte(); err == nil {
			t.Errorf("%q: connection still open (read %q)", raw, n)
		}
	}
	if code, _ := gwtest.Get(t, s.URL+"/pid"); code != 200 {
		t.Errorf("after malformed requests: %d", code)
	}
}

// TestSlowAppDoesNotStarveOthers: one app with every runner busy and a full
// queue answers 503 with Retry-After; another app on the same gw is served
// as usual.
func TestSlowAppDoesNotStarveOthers(t *testing.T) {
	py := gwtest.RequirePython(t)
	cfg := fmt.Sprintf("listen: {http: \"127.0.0.1:0\"}\napps:\n"+
		"  - {name: slow, lang: python, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /slow, queue_size: 4, queue_wait: 500ms}\n"+
		"  - {name: fast, lang: python, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /fast}\n", app("suite.py"), py)
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	slow := loadFor(s.URL+"/slow/sleep?0.5", 20, 3*time.Second)
	t.Logf("slow app: %v", slow)
	if slow.Statuses[503] == 0 {
		t.Errorf("overloaded app never shed load with 503: %v", slow)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	go gwtest.Load(ctx, s.URL+"/slow/sleep?0.5", 20)
	fast := gwtest.Load(ctx, s.URL+"/fast/pid", 4)
	t.Logf("fast app beside it: %v", fast)
	if fast.Failed > 0 || fast.OK < 200 {
		t.Errorf("fast app starved by the slow one: %v", fast)
	}
}
