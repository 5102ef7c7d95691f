package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/gwhq/gw/gateway/admin"
	"github.com/gwhq/gw/internal/gwtest"
)

// scaleApps are the real runners the dynamic-worker tests run: the
// language suites, and php-cgi's site.
var scaleApps = []struct {
	lang   string
	interp func(t *testing.T) string
	app    string
	sleep  string // a path that sleeps for the query's seconds
}{
	{"python", func(t *testing.T) string { return gwtest.RequirePython(t) }, "python/suite.py", "/sleep?"},
	{"ruby", func(t *testing.T) string { return gwtest.RequireInterpreter(t, "ruby") }, "ruby/suite.ru", "/sleep?"},
	{"perl", func(t *testing.T) string { return gwtest.RequireInterpreter(t, "perl") }, "perl/suite.psgi", "/sleep?"},
	{"php", func(t *testing.T) string { return gwtest.RequireInterpreter(t, "php-cgi") }, "php/site", "/sleep.php?"},
}

// appStats reads the one app's /stats.
func appStats(t *testing.T, stats string) admin.AppStats {
	t.Helper()
	snap := snapshot(t, stats)
	if len(snap.Apps) != 1 {
		t.Fatalf("/stats apps: %+v", snap)
	}
	return snap.Apps[0]
}

// serving counts the runners taking requests.
func serving(a admin.AppStats) int {
	n := 0
	for _, r := range a.Runners {
		if r.State != "draining" {
			n++
		}
	}
	return n
}

// TestScaleUpAndDown: min 1, max 4, worker_idle 1s: a burst of 8 slow
// requests grows the app to 4 runners within a second, and once idle it
// shrinks back to 1, each step counted in /stats.
func TestScaleUpAndDown(t *testing.T) {
	for _, sa := range scaleApps {
		t.Run(sa.lang, func(t *testing.T) {
			s := gwtest.Start(t, "--interpreter", sa.interp(t), "--workers", "4", "--min-workers", "1",
				"--worker-idle", "1s", "--stats", "127.0.0.1:0", suitePath(sa.app))
			stats := "http://" + s.Addr("stats")
			if n := serving(appStats(t, stats)); n != 1 {
				t.Fatalf("%d runners at start, want 1", n)
			}
			start := time.Now()
			codes := make(chan int, 8)
			for range 8 {
				// Each ends with its answer: 8 bounded requests.
				go func() {
					resp, err := http.Get(s.URL + sa.sleep + "0.3")
					if err != nil {
						codes <- 0
						return
					}
					resp.Body.Close()
					codes <- resp.StatusCode
				}()
			}
			var grown time.Duration
			for grown == 0 {
				if n := serving(appStats(t, stats)); n == 4 {
					grown = time.Since(start)
				} else if n > 4 {
					t.Fatalf("%d runners, over the ceiling 4", n)
				} else if time.Since(start) > 10*time.Second {
					t.Fatalf("not grown to 4 within 10s:\n%s", s.Log())
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("%s: grew from 1 to 4 runners in %v", sa.lang, grown.Round(time.Millisecond))
			if grown > time.Second {
				t.Errorf("grew to 4 in %v, want within a second of the burst", grown)
			}
			for range 8 {
				if code := <-codes; code != 200 {
					t.Errorf("burst request: status %d", code)
				}
			}
			idle := time.Now()
			waitFor(t, "shrunk to 1", func() bool { return serving(appStats(t, stats)) == 1 })
			took := time.Since(idle)
			t.Logf("%s: back to 1 runner %v after the burst", sa.lang, took.Round(time.Millisecond))
			// A runner's idle time starts when it finished its part of the
			// burst, which may be a few hundred ms before the last answer
			// reached the client on a loaded machine.
			if took < 700*time.Millisecond {
				t.Errorf("shrank after %v, well before worker_idle (1s)", took)
			}
			waitFor(t, "scale-downs counted", func() bool {
				a := appStats(t, stats)
				return a.Exits["scale_down"] == 3 && a.ScaleDowns == 3 && a.ScaleUps == 3
			})
			if code, _ := gwtest.Get(t, s.URL+sa.sleep+"0.001"); code != 200 {
				t.Errorf("after shrinking: status %d", code)
			}
		})
	}
}

// TestOnDemandColdStart: min_workers 0 keeps no runner while idle; the
// first request starts one and is served. The cold-start time (the first
// request's latency with no runner) is logged per language.
func TestOnDemandColdStart(t *testing.T) {
	for _, sa := range scaleApps {
		t.Run(sa.lang, func(t *testing.T) {
			s := gwtest.Start(t, "--interpreter", sa.interp(t), "--workers", "2", "--min-workers", "0",
				"--worker-idle", "500ms", "--stats", "127.0.0.1:0", suitePath(sa.app))
			stats := "http://" + s.Addr("stats")
			var colds []time.Duration
			for round := range 3 {
				if n := len(appStats(t, stats).Runners); n != 0 {
					t.Fatalf("round %d: %d runners while idle, want 0", round, n)
				}
				start := time.Now()
				if code, body := gwtest.Get(t, s.URL+sa.sleep+"0.001"); code != 200 {
					t.Fatalf("round %d: first request: %d %q", round, code, body)
				}
				colds = append(colds, time.Since(start).Round(100*time.Microsecond))
				start = time.Now()
				gwtest.Get(t, s.URL+sa.sleep+"0.001")
				warm := time.Since(start)
				if warm >= colds[round] {
					t.Errorf("round %d: warm request %v not faster than the cold one %v", round, warm, colds[round])
				}
				waitFor(t, "idle runner retired", func() bool { return len(appStats(t, stats).Runners) == 0 })
			}
			t.Logf("%s: cold start (first request, no runner) %v", sa.lang, colds)
			if a := appStats(t, stats); a.Exits["scale_down"] != 3 {
				t.Errorf("scale_down exits %d, want 3", a.Exits["scale_down"])
			}
		})
	}
}
