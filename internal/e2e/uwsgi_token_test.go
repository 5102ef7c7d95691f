package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// TestUwsgiTimerToken: @timer and @cron fire in exactly one runner of the
// app while its runners are replaced (`gw ctl restart`, whose replacement
// runner 1 starts beside the old one) and its generation is swapped (`gw
// ctl reload`, old and new runner 1 side by side), over a minute boundary:
// no tick from two runners interleaved, the boundary's minute fired once,
// not skipped (gw_wsgi.py section 11, the timer token). The Django app
// (the Flask one has TestUwsgiAPI's cron check).
func TestUwsgiTimerToken(t *testing.T) {
	py := requireModules(t, "django")
	dir := t.TempDir()
	events, sock := filepath.Join(dir, "events.log"), filepath.Join(dir, "control.sock")
	cfg := writeFile(t, "gw.yaml", fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
  control: unix:%s
apps:
  - name: api
    path: uwsgi_djapp:application
    dir: %s
    interpreter: %s
    workers: 2
    threads: 2
    env: { LOG: %s }
`, sock, app("djangoproj"), py, events))
	s := gwtest.Start(t, "-c", cfg)
	g := &ctlGW{Server: s, t: t, sock: sock}
	waitUntil(t, "the first timer tick", 30*time.Second, func() bool {
		if _, err := os.Stat(events); err != nil {
			return false
		}
		return len(uwsgiEvents(t, events)["tick"]) > 0
	})

	// Replace the runners over a minute boundary, restart and reload in
	// turn, from 8 s before it to 8 s after (at most 16 rounds), each time
	// with a 2.5 s request in each runner, so the old runners drain (and
	// would tick) beside the new ones.
	boundary := time.Now().Truncate(time.Minute).Add(time.Minute)
	if time.Until(boundary) < 12*time.Second {
		boundary = boundary.Add(time.Minute)
	}
	time.Sleep(time.Until(boundary.Add(-8 * time.Second)))
	start := time.Now()
	rounds := 0
	var slow sync.WaitGroup
	defer slow.Wait()
	base := "http://" + s.Addr("http")
	for ; rounds < 16 && time.Now().Before(boundary.Add(8*time.Second)); rounds++ {
		for range 2 {
			slow.Add(1)
			go func() {
				defer slow.Done()
				if code, _ := gwtest.Get(t, base+"/info?sleep=2.5"); code != 200 {
					t.Errorf("/info?sleep=2.5 during restarts: %d", code)
				}
			}()
		}
		time.Sleep(300 * time.Millisecond)
		if rounds%2 == 0 {
			g.mustCtl("restart", "api")
		} else {
			g.mustCtl("reload", "api")
		}
		time.Sleep(time.Second) // a restart answers at once; let the runners change hands
	}
	// The boundary's minute fires once some runner holds the token: within
	// the minute, or after it (a new holder goes one minute back).
	waitUntil(t, "cron in the minute of the boundary", 90*time.Second, func() bool {
		for _, c := range uwsgiEvents(t, events)["cron"] {
			if c[2] == boundary.Format("15:04") {
				return true
			}
		}
		return false
	})
	time.Sleep(3 * time.Second) // a second firing, if any
	end := time.Now()

	type tick struct {
		at  float64
		pid string
	}
	var ticks []tick
	for _, e := range uwsgiEvents(t, events)["tick"] {
		at, _ := strconv.ParseFloat(e[2], 64)
		if at >= float64(start.UnixNano())/1e9 {
			ticks = append(ticks, tick{at, e[1]})
		}
	}
	sort.Slice(ticks, func(i, j int) bool { return ticks[i].at < ticks[j].at })
	// One holder at a time: once another runner ticks, the one before it
	// never does again.
	done := map[string]bool{}
	holders := 0
	for i, tk := range ticks {
		if i > 0 && tk.pid != ticks[i-1].pid {
			done[ticks[i-1].pid] = true
			holders++
		}
		if done[tk.pid] {
			t.Errorf("runner %s ticked again at %.3f after another took over: two runners fire @timer: %v", tk.pid, tk.at, ticks)
			break
		}
	}
	secs := end.Sub(start).Seconds()
	if len(ticks) > int(secs)+2 {
		t.Errorf("%d ticks of @timer(1) in %.1f s: more than one runner fires", len(ticks), secs)
	}
	if holders < 1 {
		t.Errorf("the ticks came from one runner only over %d restarts and reloads: %v", rounds, ticks)
	}
	var gap float64 // the longest pause of @timer(1): a handover's wait for the old holder
	for i := 1; i < len(ticks); i++ {
		gap = max(gap, ticks[i].at-ticks[i-1].at)
	}
	t.Logf("%d restarts/reloads in %.1f s; %d ticks, %d handovers of the timer token; longest gap between ticks %.2f s",
		rounds, secs, len(ticks), holders, gap)

	minutes := map[string]int{}
	for _, c := range uwsgiEvents(t, events)["cron"] {
		minutes[c[2]]++
	}
	if got := minutes[boundary.Format("15:04")]; got != 1 {
		t.Errorf("cron fired %d times in minute %s (replaced around it), want once: %v", got, boundary.Format("15:04"), minutes)
	}
	for m, n := range minutes {
		if n != 1 {
			t.Errorf("cron fired %d times in minute %s", n, m)
		}
	}
	if t.Failed() {
		b, _ := os.ReadFile(events)
		t.Logf("events:\n%s\ngw's log:\n%s", b, s.Log())
	}
}

// tokenApp ticks every 0.3 s (@timer) into $LOG as "tick PID TIME"; /slow
// holds its runner for 3 s.
const tokenApp = `import os, time
from uwsgidecorators import timer

@timer(0.3)
def tick(signum):
    with open(os.environ['LOG'], 'a') as f:
        f.write('tick %d %.3f\n' % (os.getpid(), time.time()))

def application(environ, start_response):
    if environ['PATH_INFO'] == '/slow':
        time.sleep(3)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
`

// tickPIDs reads tokenApp's log: the pids of the ticks in time order, and
// an error naming a pid that ticked again after another had taken over.
func tickPIDs(t *testing.T, log string) ([]string, error) {
	t.Helper()
	var pids []string
	done := map[string]bool{}
	for _, e := range uwsgiEvents(t, log)["tick"] {
		pid := e[0]
		if n := len(pids); n > 0 && pids[n-1] != pid {
			done[pids[n-1]] = true
			if done[pid] {
				return pids, fmt.Errorf("runner %s ticked again after another took over (two fire @timer): %v", pid, pids)
			}
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// TestUpgradeUwsgiTimerToken: a SIGUSR2 upgrade passes each Python app's
// lock memfd to the new gw, so while the old gw's runner drains a 3 s
// request, the new gw's runner waits for the timer token: no tick from
// both.
func TestUpgradeUwsgiTimerToken(t *testing.T) {
	asSubreaper(t)
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "ticks.log")
	app := filepath.Join(dir, "ticker.py")
	if err := os.WriteFile(app, []byte(tokenApp), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, "gw.yaml", fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
limits:
  shutdown_timeout: 10s
apps:
  - name: ticker
    path: %s
    interpreter: %s
    workers: 1
    env: { LOG: %s }
`, app, py, log))
	first := startGW(t, "-c", cfg)
	base, pid0, next := first.serving(t, 0, 0)
	waitUntil(t, "the first tick", 30*time.Second, func() bool {
		_, err := os.Stat(log)
		return err == nil
	})
	slow := make(chan int, 1)
	go func() {
		code, _ := gwtest.Get(t, base+"/slow")
		slow <- code
	}()
	time.Sleep(300 * time.Millisecond) // the request is in the old runner
	syscall.Kill(pid0, syscall.SIGUSR2)
	first.serving(t, next, 0)
	if code := <-slow; code != 200 {
		t.Errorf("/slow across the upgrade: %d", code)
	}
	select {
	case <-first.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("old gw %d still running 30s after the new one served", pid0)
	}
	var pids []string
	waitUntil(t, "ticks from the new gw's runner", 30*time.Second, func() bool {
		pids, _ = tickPIDs(t, log)
		return len(pids) > 0 && len(slices.Compact(slices.Clone(pids))) >= 2
	})
	if _, err := tickPIDs(t, log); err != nil {
		t.Error(err)
	}
}
