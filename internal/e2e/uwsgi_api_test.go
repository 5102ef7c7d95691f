package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// uWSGI's Python API beyond WebSockets (runners/python/gw_wsgi.py section
// 11): the Flask app testdata/python/uwsgi_api_app.py, checked from
// outside, under gw with 2 workers and under uWSGI itself.

type uwsgiInfo struct {
	WorkerID      int    `json:"worker_id"`
	Numproc       int    `json:"numproc"`
	MuleID        int    `json:"mule_id"`
	PID           int    `json:"pid"`
	EnableThreads string `json:"enable_threads"`
	ThreadsInOpt  bool   `json:"threads_in_opt"`
	Postfork      bool   `json:"postfork"`
}

// uwsgiInfos asks /info n times at once, each holding its runner thread
// sleep, so the answers come from every runner.
func uwsgiInfos(t *testing.T, base string, n int, sleep time.Duration) []uwsgiInfo {
	t.Helper()
	out := make([]uwsgiInfo, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(fmt.Sprintf("%s/info?sleep=%g", base, sleep.Seconds()))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			errs[i] = json.NewDecoder(resp.Body).Decode(&out[i])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("/info: %v", err)
		}
	}
	return out
}

// uwsgiEvents reads the app's event file: kind -> lines' other fields.
func uwsgiEvents(t *testing.T, path string) map[string][][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out[f[0]] = append(out[f[0]], f[1:])
		}
	}
	return out
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}

// checkUwsgiCommon is what must hold under gw and under uWSGI alike: opt
// says threads are on, worker ids are 1 and 2 with numproc 2, postfork ran
// in each runner, @lock excludes across runners, @thread runs the call in
// a daemon thread, @timer(1) fires once a second in one runner only.
func checkUwsgiCommon(t *testing.T, base, events, spoolWorker string) map[int]int {
	infos := uwsgiInfos(t, base, 16, 300*time.Millisecond)
	ids := map[int]int{} // worker id -> pid
	for _, in := range infos {
		// sentry-sdk's check: threads in opt, or enable-threads.
		if !in.ThreadsInOpt || in.Numproc != 2 || in.MuleID != 0 || !in.Postfork {
			t.Errorf("/info: %+v; want threads in opt, numproc 2, mule 0, postfork run here", in)
		}
		if pid, ok := ids[in.WorkerID]; ok && pid != in.PID {
			t.Errorf("worker id %d on pids %d and %d", in.WorkerID, pid, in.PID)
		}
		ids[in.WorkerID] = in.PID
	}
	if len(ids) != 2 || ids[1] == 0 || ids[2] == 0 {
		t.Fatalf("worker ids %v, want 1 and 2", ids)
	}

	// 40 read-modify-writes of a file, 8 at a time over both runners.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for range 40 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if code, _ := gwtest.Get(t, base+"/bump"); code != 200 {
				t.Errorf("/bump: %d", code)
			}
		}()
	}
	wg.Wait()
	if b, _ := os.ReadFile(events + ".counter"); string(b) != "40" {
		t.Errorf("counter after 40 bumps under @lock: %q (updates lost: the lock does not hold across runners)", b)
	}

	if code, body := gwtest.Get(t, base+"/thread?tag=t1"); code != 200 || body != "started True" {
		t.Errorf("/thread: %d %q", code, body)
	}
	waitUntil(t, "the @thread call's event", 10*time.Second, func() bool {
		for _, e := range uwsgiEvents(t, events)["thread"] {
			if len(e) == 4 && e[2] == "t1" && e[3] == "True" {
				return true
			}
		}
		return false
	})

	ev := uwsgiEvents(t, events)
	var forked []int
	for _, e := range ev["postfork"] {
		pid, _ := strconv.Atoi(e[1])
		forked = append(forked, pid)
	}
	for id, pid := range ids {
		if !slices.Contains(forked, pid) {
			t.Errorf("no postfork event from worker %d (pid %d): %v", id, pid, ev["postfork"])
		}
	}

	checkUwsgiCache(t, base)
	checkUwsgiSpool(t, base, events, spoolWorker)

	// @timer(1): over 3.5 s, 3 or 4 ticks in all (not 6 or more: one
	// runner fires them), a second or so apart.
	before := len(uwsgiEvents(t, events)["tick"])
	time.Sleep(3500 * time.Millisecond)
	ticks := uwsgiEvents(t, events)["tick"][before:]
	if len(ticks) < 3 || len(ticks) > 4 {
		t.Errorf("%d timer ticks in 3.5 s across 2 workers, want 3 or 4: %v", len(ticks), ticks)
	}
	var last float64
	for _, tk := range ticks {
		at, _ := strconv.ParseFloat(tk[2], 64)
		if last != 0 && at-last < 0.5 {
			t.Errorf("ticks %.3f s apart (two runners firing?): %v", at-last, ticks)
		}
		last = at
	}
	return ids
}

// checkUwsgiCache: cache_set/update/del/exists/clear answer as uWSGI's,
// an entry is seen by every runner at once, and expires.
func checkUwsgiCache(t *testing.T, base string) {
	t.Helper()
	steps := []struct{ path, want string }{
		{"/cache/clear", "True"},
		{"/cache/exists?k=a", "None"},
		{"/cache/set?k=a&v=1", "True"},
		{"/cache/set?k=a&v=2", "None"}, // set does not overwrite
		{"/cache/exists?k=a", "True"},
		{"/cache/update?k=a&v=shared", "True"},
		{"/cache/set?k=gone&v=x", "True"},
		{"/cache/del?k=gone", "True"},
		{"/cache/del?k=gone", "None"},
		{"/cache/set?k=ttl&v=x&ttl=1", "True"},
	}
	for _, s := range steps {
		if code, body := gwtest.Get(t, base+s.path); code != 200 || body != s.want {
			t.Errorf("GET %s: %d %q, want %q", s.path, code, body, s.want)
		}
	}
	// 16 at once: both runners answer, each sees the entry.
	seen := map[int]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(base + "/cache/get?k=a&sleep=0.3")
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var got struct {
				WorkerID int     `json:"worker_id"`
				Value    *string `json:"value"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got.Value == nil || *got.Value != "shared" {
				t.Errorf("cache_get(a) in worker %d: %v %v, want shared", got.WorkerID, got.Value, err)
			}
			mu.Lock()
			seen[got.WorkerID] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if !seen[1] || !seen[2] {
		t.Errorf("cache_get answered by workers %v, want 1 and 2", seen)
	}
	waitUntil(t, "the 1 s entry to expire", 5*time.Second, func() bool {
		_, body := gwtest.Get(t, base+"/cache/exists?k=ttl")
		return body == "None"
	})
}

// checkUwsgiSpool: jobs spooled by any runner run once each, where the
// spooler runs: worker 1 under gw, the spooler process (worker id 0) under
// uWSGI.
func checkUwsgiSpool(t *testing.T, base, events, worker string) {
	t.Helper()
	tags := []string{"j1", "j2", "j3", "j4"}
	for _, tag := range tags {
		if code, body := gwtest.Get(t, base+"/spool?tag="+tag); code != 200 || body != "spooled" {
			t.Fatalf("/spool: %d %q", code, body)
		}
	}
	waitUntil(t, "4 spooled jobs run", 20*time.Second, func() bool {
		return len(spooledRuns(t, events, tags...)) == 4
	})
	for tag, runs := range spooledRuns(t, events, tags...) {
		if len(runs) != 1 || runs[0][0] != worker {
			t.Errorf("job %s ran %v, want once in worker %s", tag, runs, worker)
		}
	}
}

// spooledRuns are the runs of the jobs tags by tag.
func spooledRuns(t *testing.T, events string, tags ...string) map[string][][]string {
	out := map[string][][]string{}
	for _, e := range uwsgiEvents(t, events)["spooled"] {
		if len(e) == 3 && slices.Contains(tags, e[2]) {
			out[e[2]] = append(out[e[2]], e)
		}
	}
	return out
}

// TestUwsgiAPI: the app runs unchanged under gw, 2 workers: the common
// checks, @rbtimer, then the checks of checkUwsgiUnderGw (set_logvar's
// fields in the access log, a NotImplementedError naming a call gw lacks,
// uwsgi.reload() replacing the runners), and @cron(-1, ...) firing once in
// the first whole minute.
func TestUwsgiAPI(t *testing.T) {
	s, base, events, access := startUwsgiAPI(t, "api", "uwsgi_api_app:app", testdataDir(t), requireModules(t, "flask"))
	ids := checkUwsgiCommon(t, base, events, "1")
	checkRbtimer(t, events)
	if in := uwsgiInfos(t, base, 1, 0)[0]; in.EnableThreads != "True" {
		t.Errorf("uwsgi.opt['enable-threads'] = %s, want True", in.EnableThreads)
	}
	checkUwsgiUnderGw(t, s, base, access, "pro", ids)

	// @cron(-1, -1, -1, -1, -1): once in each whole minute, by runner 1
	// (not in the minute runner 1 started: the reload's).
	next := time.Now().Truncate(time.Minute).Add(time.Minute)
	time.Sleep(time.Until(next.Add(3 * time.Second)))
	minutes := map[string]int{}
	for _, c := range uwsgiEvents(t, events)["cron"] {
		minutes[c[2]]++
		if c[0] != "1" {
			t.Errorf("cron fired in worker %s: %v", c[0], c)
		}
	}
	if got := minutes[next.Format("15:04")]; got != 1 {
		t.Errorf("cron fired %d times in minute %s, want once: %v", got, next.Format("15:04"), minutes)
	}
	for m, n := range minutes {
		if n != 1 {
			t.Errorf("cron fired %d times in minute %s", n, m)
		}
	}
}

// startUwsgiAPI serves the app name (path, in dir) as the Flask and Django
// API tests do: 2 workers of 4 threads, a spooler, the app's events in
// events (its LOG) and gw's access log in access.
func startUwsgiAPI(t *testing.T, name, path, dir, py string) (s *gwtest.Server, base, events, access string) {
	t.Helper()
	tmp := t.TempDir()
	events, access, spool := filepath.Join(tmp, "events.log"), filepath.Join(tmp, "access.log"), filepath.Join(tmp, "spool")
	if err := os.Mkdir(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, "gw.yaml", fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
apps:
  - name: %s
    path: %s
    dir: %s
    interpreter: %s
    workers: 2
    threads: 4
    spooler: %s
    env: { LOG: %s }
`, name, path, dir, py, spool, events))
	s = gwtest.Start(t, "-c", cfg, "--access-log", access)
	return s, "http://" + s.Addr("http"), events, access
}

// checkUwsgiUnderGw is what gw adds to the API, for an app started by
// startUwsgiAPI whose runners are ids: set_logvar's fields end its access
// log line (user alice, plan), a call gw lacks raises NotImplementedError
// naming it, and uwsgi.reload() replaces both runners (worker ids 1 and 2
// again).
func checkUwsgiUnderGw(t *testing.T, s *gwtest.Server, base, access, plan string, ids map[int]int) {
	t.Helper()
	if code, body := gwtest.Get(t, base+"/logvar?plan="+plan); code != 200 || body != "set "+plan {
		t.Errorf("/logvar: %d %q", code, body)
	}
	waitUntil(t, "the access log line of /logvar", 5*time.Second, func() bool {
		b, _ := os.ReadFile(access)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "path=/logvar") {
				if !strings.HasSuffix(line, " vars.user=alice vars.plan="+plan) {
					t.Fatalf("access log line: %q, want it to end with the app's vars", line)
				}
				return true
			}
		}
		return false
	})

	code, body := gwtest.Get(t, base+"/missing")
	if code != 200 || !strings.HasPrefix(body, "NotImplementedError uwsgi.sharedarea_read ") || !strings.HasSuffix(body, "hasattr=False") {
		t.Errorf("/missing: %d %q, want NotImplementedError naming uwsgi.sharedarea_read", code, body)
	}

	if code, body := gwtest.Get(t, base+"/reload"); code != 200 || body != "reload True" {
		t.Fatalf("/reload: %d %q", code, body)
	}
	waitUntil(t, "new runners after uwsgi.reload()", 90*time.Second, func() bool {
		for _, in := range uwsgiInfos(t, base, 4, 0) {
			if in.PID == ids[1] || in.PID == ids[2] {
				return false
			}
		}
		return true
	})
	if !strings.Contains(s.Log(), "reload: app serving from new runners") {
		t.Errorf("gw's log does not show the app reloaded:\n%s", s.Log())
	}
	if after := checkUwsgiCommonIDs(t, base); len(after) != 2 || after[1] == 0 || after[2] == 0 {
		t.Errorf("worker ids after the reload: %v, want 1 and 2", after)
	}
}

// checkRbtimer: the Flask app's @rbtimer(2) fired, never twice within a
// period (one runner fires it).
func checkRbtimer(t *testing.T, events string) {
	t.Helper()
	ticks := uwsgiEvents(t, events)["rbtick"]
	if len(ticks) == 0 {
		t.Fatal("@rbtimer(2) never fired")
	}
	for i := 1; i < len(ticks); i++ {
		a, _ := strconv.ParseFloat(ticks[i-1][2], 64)
		b, _ := strconv.ParseFloat(ticks[i][2], 64)
		if b-a < 1 {
			t.Errorf("@rbtimer(2) ticks %.3f s apart (two runners firing?): %v", b-a, ticks)
		}
	}
}

func checkUwsgiCommonIDs(t *testing.T, base string) map[int]int {
	ids := map[int]int{}
	for _, in := range uwsgiInfos(t, base, 16, 300*time.Millisecond) {
		ids[in.WorkerID] = in.PID
	}
	return ids
}

// TestUwsgiAPIUnderUwsgi: the same app and checks under uWSGI itself
// (python3 plugin, 2 processes, master): the app runs unchanged.
func TestUwsgiAPIUnderUwsgi(t *testing.T) {
	requireModules(t, "flask")
	// uWSGI ships uwsgidecorators apart from its plugin (Debian:
	// python3-uwsgidecorators).
	if _, err := os.Stat("/usr/lib/python3/dist-packages/uwsgidecorators.py"); err != nil {
		msg := "uwsgidecorators for uWSGI's python3 plugin: apt-get install python3-uwsgidecorators"
		if os.Getenv("GW_REQUIRE_RUNTIMES") == "1" {
			t.Fatal(msg + " (GW_REQUIRE_RUNTIMES=1)")
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	events, spool := filepath.Join(dir, "events.log"), filepath.Join(dir, "spool")
	if err := os.Mkdir(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	addr := startUwsgi(t, "uwsgi_api_app.py", 2, 4, "LOG="+events, "UWSGI_CACHE2=name=default,items=100",
		"UWSGI_SPOOLER="+spool, "UWSGI_SPOOLER_FREQUENCY=1")
	checkUwsgiCommon(t, "http://"+addr, events, "0")
	checkRbtimer(t, events)
}

// TestUwsgiSpoolDurable: a job that raises is tried again; a job spooled
// for later survives a SIGKILL of gw (its runners exit with it) and runs,
// once, under the next gw on the same spooler directory.
func TestUwsgiSpoolDurable(t *testing.T) {
	py := requireModules(t, "flask")
	dir := t.TempDir()
	events, spool := filepath.Join(dir, "events.log"), filepath.Join(dir, "spool")
	if err := os.Mkdir(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, "gw.yaml", fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
apps:
  - name: api
    path: uwsgi_api_app:app
    dir: %s
    interpreter: %s
    workers: 2
    spooler: %s
    env: { LOG: %s }
`, testdataDir(t), py, spool, events))
	s := gwtest.Start(t, "-c", cfg)
	base := "http://" + s.Addr("http")

	gwtest.Get(t, base+"/spool?tag=flaky1")
	waitUntil(t, "the flaky job's second try", 20*time.Second, func() bool {
		return len(spooledRuns(t, events, "flaky1")) == 1
	})
	if _, err := os.Stat(events + ".tried-flaky1"); err != nil {
		t.Errorf("the flaky job ran without failing first: %v", err)
	}

	// Due in 4 s: gw is killed before.
	if code, body := gwtest.Get(t, base+"/spool?tag=late&at=4"); code != 200 || body != "spooled" {
		t.Fatalf("/spool: %d %q", code, body)
	}
	kids := s.Children()
	if err := syscall.Kill(s.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	gwtest.WaitGone(t, kids, 10*time.Second) // EOF on their control sockets
	if runs := spooledRuns(t, events, "late"); len(runs) != 0 {
		t.Fatalf("the late job ran before its time: %v", runs)
	}
	jobs, _ := filepath.Glob(filepath.Join(spool, "uwsgi_spoolfile_on_*"))
	if len(jobs) != 1 {
		t.Fatalf("spool dir after the kill: %v, want the late job", jobs)
	}

	gwtest.Start(t, "-c", cfg)
	waitUntil(t, "the late job under the next gw", 30*time.Second, func() bool {
		return len(spooledRuns(t, events, "late")) == 1
	})
	waitUntil(t, "the job file removed", 5*time.Second, func() bool {
		jobs, _ := filepath.Glob(filepath.Join(spool, "uwsgi_spoolfile_on_*"))
		return len(jobs) == 0
	})
	if runs := spooledRuns(t, events, "late", "flaky1"); len(runs["late"]) != 1 || len(runs["flaky1"]) != 1 {
		t.Errorf("runs after the restart: %v, want each job once", runs)
	}
}

// TestUwsgiAPIDjango: a Django app on the same API passes the same checks
// under gw (2 workers), and those of checkUwsgiUnderGw. Its cron:
// TestUwsgiTimerToken.
func TestUwsgiAPIDjango(t *testing.T) {
	s, base, events, access := startUwsgiAPI(t, "dj", "uwsgi_djapp:application", app("djangoproj"), requireModules(t, "django"))
	ids := checkUwsgiCommon(t, base, events, "1")
	checkUwsgiUnderGw(t, s, base, access, "team", ids)
}

// TestUwsgiLogvarASGI: set_logvar under ASGI (the Django app above, served
// by gw_asgi): a sync view (Django runs it in a thread, with the request's
// context) and an async one (on the event loop, awaiting between its two
// calls) put their own fields in their own access log lines, 16 requests
// at once on one runner.
func TestUwsgiLogvarASGI(t *testing.T) {
	py := requireModules(t, "django")
	dir := t.TempDir()
	events, access := filepath.Join(dir, "events.log"), filepath.Join(dir, "access.log")
	cfg := writeFile(t, "gw.yaml", fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
apps:
  - name: dj
    path: uwsgi_djapp:asgi_application
    dir: %s
    interpreter: %s
    interface: asgi
    workers: 1
    env: { LOG: %s }
`, app("djangoproj"), py, events))
	s := gwtest.Start(t, "-c", cfg, "--access-log", access)
	base := "http://" + s.Addr("http")
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			view := []string{"logvar", "alogvar"}[i%2]
			plan := fmt.Sprintf("p%d", i)
			if code, body := gwtest.Get(t, fmt.Sprintf("%s/%s?plan=%s", base, view, plan)); code != 200 || body != "set "+plan {
				t.Errorf("/%s?plan=%s: %d %q", view, plan, code, body)
			}
		}()
	}
	wg.Wait()
	if code, _ := gwtest.Get(t, base+"/info"); code != 200 {
		t.Errorf("/info: %d", code)
	}
	var lines []string
	waitUntil(t, "17 access log lines", 5*time.Second, func() bool {
		b, _ := os.ReadFile(access)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		return len(lines) >= 17
	})
	// The access log has no query: each plan must show once, on a line of
	// its view (even plans are the sync view's, user alice).
	seen := map[string]string{}
	for _, line := range lines {
		if strings.Contains(line, "path=/info") {
			if strings.Contains(line, "vars.") {
				t.Errorf("/info has fields another request set: %q", line)
			}
			continue
		}
		var user, plan string
		if i := strings.Index(line, " vars.user="); i >= 0 {
			fmt.Sscanf(line[i:], " vars.user=%s vars.plan=%s", &user, &plan)
		}
		if seen[plan] != "" || plan == "" {
			t.Errorf("access log line %q: plan missing or seen twice", line)
		}
		seen[plan] = line
		n, _ := strconv.Atoi(strings.TrimPrefix(plan, "p"))
		want := map[bool]string{true: "alice", false: "bob"}[n%2 == 0]
		view := map[bool]string{true: "path=/logvar", false: "path=/alogvar"}[n%2 == 0]
		if user != want || !strings.Contains(line, view) {
			t.Errorf("access log line %q: want %s with vars.user=%s", line, view, want)
		}
	}
	if len(seen) != 16 {
		t.Errorf("%d distinct plans in the access log, want 16", len(seen))
	}
}

// TestUwsgiCacheSize: cache_size bounds the app's uwsgi cache: ten 1000-byte
// values in a 4 KiB cache leave the last three, the first ones pushed out.
func TestUwsgiCacheSize(t *testing.T) {
	py := requireModules(t, "flask")
	events := filepath.Join(t.TempDir(), "events.log")
	cfg := writeFile(t, "gw.yaml", fmt.Sprintf(`
listen:
  http: "127.0.0.1:0"
apps:
  - name: api
    path: uwsgi_api_app:app
    dir: %s
    interpreter: %s
    workers: 1
    cache_size: 4KiB
    env: { LOG: %s }
`, testdataDir(t), py, events))
	s := gwtest.Start(t, "-c", cfg)
	base := "http://" + s.Addr("http")
	v := strings.Repeat("v", 1000)
	for i := range 10 {
		if code, body := gwtest.Get(t, fmt.Sprintf("%s/cache/set?k=k%d&v=%s", base, i, v)); code != 200 || body != "True" {
			t.Fatalf("set k%d: %d %q", i, code, body)
		}
	}
	var kept []int
	for i := range 10 {
		if _, body := gwtest.Get(t, fmt.Sprintf("%s/cache/exists?k=k%d", base, i)); body == "True" {
			kept = append(kept, i)
		}
	}
	if !slices.Equal(kept, []int{7, 8, 9}) {
		t.Errorf("keys kept in a 4 KiB cache after ten 1000-byte sets: %v, want the last 3 (7 8 9)", kept)
	}
}
