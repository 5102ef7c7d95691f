package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// limitsApp is the app of these tests (testdata/limits/app.py).
func limitsApp() string { return suitePath("limits/app.py") }

// startLimits starts gw with apps (YAML list entries, indented) and a stats
// listener; it returns the server and the stats base URL.
func startLimits(t *testing.T, apps string) (*gwtest.Server, string) {
	t.Helper()
	cfg := fmt.Sprintf("listen:\n  http: \"127.0.0.1:0\"\n  stats: \"127.0.0.1:0\"\napps:\n%s", apps)
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	return s, "http://" + s.Addr("stats")
}

// appStatsOf reads one app's part of /stats.
func appStatsOf(t *testing.T, stats, app string) map[string]any {
	t.Helper()
	resp, err := http.Get(stats + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap struct{ Apps []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	for _, a := range snap.Apps {
		if a["name"] == app {
			return a
		}
	}
	t.Fatalf("no app %q in /stats", app)
	return nil
}

// neighbour hammers url from one goroutine until stop, bounded in count
// and time, and counts answers that are not 200.
type neighbour struct {
	ok, failed atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup
}

func hammer(url string) *neighbour {
	n := &neighbour{stop: make(chan struct{})}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		c := &http.Client{Timeout: 10 * time.Second}
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; i < 100000 && time.Now().Before(deadline); i++ {
			select {
			case <-n.stop:
				return
			default:
			}
			resp, err := c.Get(url)
			if err == nil {
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != 200 {
				n.failed.Add(1)
			} else {
				n.ok.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return n
}

func (n *neighbour) done() (ok, failed int64) {
	close(n.stop)
	n.wg.Wait()
	return n.ok.Load(), n.failed.Load()
}

// limitExit waits for app's runner pid to be replaced after a limit and
// checks the log, /stats and /metrics name the limit.
func limitExit(t *testing.T, s *gwtest.Server, stats, app, mount string, old int, reason string) {
	t.Helper()
	var pid int
	start := time.Now()
	waitFor(t, app+" runner replaced", func() bool {
		code, body := gwtest.Get(t, s.URL+mount+"/pid")
		pid, _ = strconv.Atoi(body)
		return code == 200 && pid != old
	})
	t.Logf("%s: a new runner served %v after the limit's answer", app, time.Since(start).Round(time.Millisecond))
	if gwtest.Alive(old) {
		t.Errorf("old runner %d still alive", old)
	}
	want := fmt.Sprintf("reason=%s", reason)
	found := false
	for _, line := range strings.Split(s.Log(), "\n") {
		if strings.Contains(line, "runner exited") && strings.Contains(line, "app="+app) &&
			strings.Contains(line, want) && strings.Contains(line, "limit=limits."+reason) {
			found = true
		}
	}
	if !found {
		t.Errorf("no 'runner exited' line for %s with %s and limit=limits.%s:\n%s", app, want, reason, s.Log())
	}
	exits, _ := appStatsOf(t, stats, app)["exits"].(map[string]any)
	if exits[reason] != float64(1) {
		t.Errorf("/stats exits of %s = %v, want %s: 1", app, exits, reason)
	}
	if v, ok := metric(scrape(t, stats), "gw_runner_exits_total", map[string]string{"app": app, "reason": reason}); !ok || v != 1 {
		t.Errorf("gw_runner_exits_total{app=%s,reason=%s} = %v (found %v), want 1", app, reason, v, ok)
	}
}

// TestLimitsMemory: a runner that allocates past limits.memory (RLIMIT_AS)
// gets a MemoryError, answers 500, exits and is respawned with the limit
// named; the neighbour app serves on with the same runner and no failure.
func TestLimitsMemory(t *testing.T) {
	py := gwtest.RequirePython(t)
	s, stats := startLimits(t, fmt.Sprintf(`
  - {name: hog, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /hog, limits: {memory: 256MiB}}
  - {name: calm, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /calm}
`, limitsApp(), py))
	hog := runnerPID(t, s.URL+"/hog/pid")
	calm := runnerPID(t, s.URL+"/calm/pid")
	if _, body := gwtest.Get(t, s.URL+"/hog/limits"); !strings.Contains(body, "Max address space         268435456") {
		t.Errorf("hog runner's limits:\n%s", body)
	}
	if _, body := gwtest.Get(t, s.URL+"/calm/limits"); strings.Contains(body, "268435456") {
		t.Errorf("the neighbour got the hog's limit:\n%s", body)
	}
	n := hammer(s.URL + "/calm/")
	if code, body := gwtest.Get(t, s.URL+"/hog/alloc?mb=512"); code != 500 {
		t.Errorf("allocating 512MiB under 256MiB: %d %q, want 500", code, body)
	}
	limitExit(t, s, stats, "hog", "/hog", hog, "memory")
	if code, body := gwtest.Get(t, s.URL+"/hog/alloc?mb=32"); code != 200 {
		t.Errorf("the respawned hog, within its limit: %d %q", code, body)
	}
	ok, failed := n.done()
	if failed != 0 || ok == 0 {
		t.Errorf("neighbour: %d ok, %d failed; want none failed", ok, failed)
	}
	if got := runnerPID(t, s.URL+"/calm/pid"); got != calm {
		t.Errorf("neighbour runner changed: %d -> %d", calm, got)
	}
	a := appStatsOf(t, stats, "calm")
	if rss, _ := a["rss_bytes"].(float64); rss <= 0 {
		t.Errorf("/stats calm rss_bytes = %v", a["rss_bytes"])
	}
	if _, ok := a["cpu_s"].(float64); !ok {
		t.Errorf("/stats calm has no cpu_s: %v", a)
	}
	if v, ok := metric(scrape(t, stats), "gw_app_rss_bytes", map[string]string{"app": "calm"}); !ok || v <= 0 {
		t.Errorf("gw_app_rss_bytes{app=calm} = %v (found %v)", v, ok)
	}
	t.Logf("neighbour served %d requests meanwhile", ok)
}

// TestLimitsCgroupMemory: past memory_max (the app's cgroup) the kernel's
// OOM killer ends the runner; gw tells it from a crash by the cgroup's
// oom_kill count and respawns it, and /stats shows the cgroup.
func TestLimitsCgroupMemory(t *testing.T) {
	requireRoot(t)
	requireCgroupV1(t)
	py := gwtest.RequirePython(t)
	s, stats := startLimits(t, fmt.Sprintf(`
  - {name: hog, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /hog, limits: {memory_max: 96MiB, pids_max: 64, cpu_weight: 50}}
  - {name: calm, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /calm}
`, limitsApp(), py))
	hog := runnerPID(t, s.URL+"/hog/pid")
	calm := runnerPID(t, s.URL+"/calm/pid")
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", hog))
	if !strings.Contains(string(cg), fmt.Sprintf("gw-%d/hog", s.PID())) {
		t.Errorf("hog runner's cgroups:\n%s", cg)
	}
	// pids_max holds for the app's runners together: fork fails in the app.
	code, body := gwtest.Get(t, s.URL+"/hog/fork?n=100")
	var forked int
	fmt.Sscanf(body, "forked %d", &forked)
	if code != 200 || forked >= 64 || !strings.Contains(body, "refused: Resource temporarily unavailable") {
		t.Errorf("forking 100 under pids_max 64: %d %q", code, body)
	}
	n := hammer(s.URL + "/calm/")
	if code, _ := gwtest.Get(t, s.URL+"/hog/alloc?mb=300"); code < 500 {
		t.Errorf("allocating 300MiB under memory_max 96MiB: %d, want a 5xx", code)
	}
	limitExit(t, s, stats, "hog", "/hog", hog, "memory_max")
	ok, failed := n.done()
	if failed != 0 || ok == 0 {
		t.Errorf("neighbour: %d ok, %d failed; want none failed", ok, failed)
	}
	if got := runnerPID(t, s.URL+"/calm/pid"); got != calm {
		t.Errorf("neighbour runner changed: %d -> %d", calm, got)
	}
	c, _ := appStatsOf(t, stats, "hog")["cgroup"].(map[string]any)
	if c["oom_kills"] != float64(1) || c["memory_max"] != float64(96<<20) || c["pids_max"] != float64(64) {
		t.Errorf("/stats hog cgroup = %v", c)
	}
	if v, ok := metric(scrape(t, stats), "gw_app_cgroup_limit_hits_total", map[string]string{"app": "hog", "event": "oom_kill"}); !ok || v != 1 {
		t.Errorf("gw_app_cgroup_limit_hits_total{oom_kill} = %v (found %v)", v, ok)
	}
	if got := gwCgroups(s.PID()); len(got) != 3 {
		t.Errorf("gw's cgroups while serving: %v, want memory, pids and cpu", got)
	}
	s.Stop()
	if got := gwCgroups(s.PID()); len(got) > 0 {
		t.Errorf("cgroups left after gw stopped: %v", got)
	}
}

// gwCgroups lists the cgroup directories gw (pid) made, in any hierarchy,
// at the depths gw's own cgroup may have.
func gwCgroups(pid int) []string {
	var out []string
	for _, depth := range []string{"*", "*/*", "*/*/*", "*/*/*/*"} {
		m, _ := filepath.Glob(fmt.Sprintf("/sys/fs/cgroup/%s/gw-%d", depth, pid))
		out = append(out, m...)
	}
	return out
}

// requireCgroupV1 skips where the machine has no v1 memory hierarchy.
func requireCgroupV1(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		t.Skip("needs a cgroup v1 memory hierarchy at /sys/fs/cgroup/memory (this test reads v1 files)")
	}
}

// TestLimitsCPUTime: a runner past cpu_time gets SIGXCPU and is respawned,
// counted as cpu_time.
func TestLimitsCPUTime(t *testing.T) {
	py := gwtest.RequirePython(t)
	s, stats := startLimits(t, fmt.Sprintf(`
  - {name: spin, path: %[1]s, interpreter: %[2]s, workers: 1, timeout: 60s, limits: {cpu_time: 1}}
`, limitsApp(), py))
	old := runnerPID(t, s.URL+"/pid")
	start := time.Now()
	if code, _ := gwtest.Get(t, s.URL+"/spin"); code < 500 {
		t.Errorf("spinning past cpu_time: %d, want a 5xx", code)
	}
	t.Logf("spin ended after %v", time.Since(start))
	limitExit(t, s, stats, "spin", "", old, "cpu_time")
}

// TestLimitsProcesses: past limits.processes (RLIMIT_NPROC, counted per
// uid) fork fails in the app, which reports it and serves on. The app runs
// as a uid of its own: root is not held to RLIMIT_NPROC, and gw refuses
// the limit for root runners.
func TestLimitsProcesses(t *testing.T) {
	requireRoot(t)
	py := gwtest.RequirePython(t)
	s, _ := startLimits(t, fmt.Sprintf(`
  - {name: forker, path: %[1]s, interpreter: %[2]s, workers: 1, uid: "65531", gid: "65531", limits: {processes: 8}}
`, limitsApp(), py))
	code, body := gwtest.Get(t, s.URL+"/fork?n=50")
	var forked int
	fmt.Sscanf(body, "forked %d", &forked)
	if code != 200 || forked >= 8 || !strings.Contains(body, "refused: Resource temporarily unavailable") {
		t.Errorf("forking 50 under processes 8: %d %q; want fewer than 8 and EAGAIN", code, body)
	}
	if code, _ := gwtest.Get(t, s.URL+"/pid"); code != 200 {
		t.Errorf("after the refused fork: %d", code)
	}
	t.Logf("forked %d before the refusal (the runner's own threads count too)", forked)

	// For root runners the limit would be a silent no-op: refused at start.
	cfg := fmt.Sprintf("listen: {http: \"127.0.0.1:0\"}\napps:\n  - {path: %s, interpreter: %s, limits: {processes: 8}}\n", limitsApp(), py)
	rc, out := gwtest.Run(t, 30*time.Second, "run", "--allow-root", "-c", writeFile(t, "root.yaml", cfg))
	if rc != 1 || !strings.Contains(out, "limits.processes") || !strings.Contains(out, "root") {
		t.Errorf("processes for root runners: exit %d, want 1 naming the limit:\n%s", rc, out)
	}
}

// TestTenantIsolation: two apps under uids of their own (numbers with no
// passwd entry) cannot read each other's files, private TMPDIR files,
// environment (/proc/PID/environ) or gw's runtime files (bodies, answers,
// sockets); each reads its own.
func TestTenantIsolation(t *testing.T) {
	requireRoot(t)
	py := gwtest.RequirePython(t)
	root, err := os.MkdirTemp("", "gw-tenants-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	os.Chmod(root, 0o755)
	uids := map[string]int{"a": 65531, "b": 65532}
	for name, uid := range uids {
		dir := filepath.Join(root, name)
		os.Mkdir(dir, 0o700)
		os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("secret of "+name), 0o600)
		for _, p := range []string{dir, filepath.Join(dir, "secret.txt")} {
			if err := os.Chown(p, uid, uid); err != nil {
				t.Fatal(err)
			}
		}
	}
	s, _ := startLimits(t, fmt.Sprintf(`
  - {name: a, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /a, uid: "65531", gid: "65531", env: {TENANT_SECRET: asecret}}
  - {name: b, path: %[1]s, interpreter: %[2]s, workers: 1, mount: /b, uid: "65532", gid: "65532", env: {TENANT_SECRET: bsecret}}
`, limitsApp(), py))
	get := func(mount, path string) string {
		t.Helper()
		code, body := gwtest.Get(t, s.URL+mount+path)
		if code != 200 {
			t.Fatalf("GET %s%s: %d %q", mount, path, code, body)
		}
		return body
	}
	bPID := runnerPID(t, s.URL+"/b/pid")
	_, bTmp := gwtest.Get(t, s.URL+"/b/tmpdir")
	_, aTmp := gwtest.Get(t, s.URL+"/a/tmpdir")
	bSock := get("/b", "/listen")
	if got := get("/b", "/connect?path="+bSock); got != "connected" {
		t.Fatalf("app b connecting to its own socket: %q", got)
	}
	rt := filepath.Dir(filepath.Dir(filepath.Dir(aTmp))) // <runtime>/app/a/tmpXXX
	if filepath.Dir(filepath.Dir(bTmp)) != filepath.Join(rt, "app") {
		t.Fatalf("TMPDIRs %s and %s are not both in %s/app", aTmp, bTmp, rt)
	}
	for _, tc := range []struct{ what, path, want string }{
		{"its own file", "/read?path=" + filepath.Join(root, "a", "secret.txt"), "read b'secret of a'"},
		{"its own temp file", "/read?path=" + aTmp, "read b'tenant secret'"},
		{"the other's file", "/read?path=" + filepath.Join(root, "b", "secret.txt"), "denied: Permission denied"},
		{"the other's temp file", "/read?path=" + bTmp, "denied: Permission denied"},
		{"the other's TMPDIR", "/list?path=" + filepath.Dir(bTmp), "denied: Permission denied"},
		{"the other's socket (mode 0777)", "/connect?path=" + bSock, "denied: Permission denied"},
		{"the other's environment", fmt.Sprintf("/read?path=/proc/%d/environ", bPID), "denied: Permission denied"},
		{"gw's request bodies", "/list?path=" + filepath.Join(rt, "body"), "denied: Permission denied"},
		{"gw's spooled answers", "/list?path=" + filepath.Join(rt, "spool"), "denied: Permission denied"},
		{"gw's sockets", "/list?path=" + filepath.Join(rt, "sock"), "denied: Permission denied"},
		{"the apps' directories", "/list?path=" + filepath.Join(rt, "app"), "denied: Permission denied"},
	} {
		if got := get("/a", tc.path); got != tc.want {
			t.Errorf("app a reading %s: %q, want %q", tc.what, got, tc.want)
		}
	}
	if got := get("/a", "/"); got != "ok asecret" {
		t.Errorf("app a's own environment: %q", got)
	}
	if got := get("/b", "/read?path="+filepath.Join(root, "a", "secret.txt")); got != "denied: Permission denied" {
		t.Errorf("app b reading a's file: %q", got)
	}
}

// TestLimitsReload: SIGHUP applies changed limits: the app's cgroup keeps
// its place with the new value, and the new runners carry the new rlimits.
func TestLimitsReload(t *testing.T) {
	requireRoot(t)
	requireCgroupV1(t)
	py := gwtest.RequirePython(t)
	conf := func(mem, as string) string {
		return fmt.Sprintf("listen: {http: \"127.0.0.1:0\", stats: \"127.0.0.1:0\"}\napps:\n"+
			"  - {name: app, path: %s, interpreter: %s, workers: 1, limits: {memory_max: %s, memory: %s}}\n", limitsApp(), py, mem, as)
	}
	path := writeFile(t, "gw.yaml", conf("96MiB", "256MiB"))
	s := gwtest.Start(t, "-c", path)
	stats := "http://" + s.Addr("stats")
	old := runnerPID(t, s.URL+"/pid")
	if err := os.WriteFile(path, []byte(conf("128MiB", "300MiB")), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(s.PID(), syscall.SIGHUP)
	waitFor(t, "reloaded runner", func() bool {
		code, body := gwtest.Get(t, s.URL+"/pid")
		pid, _ := strconv.Atoi(body)
		return code == 200 && pid != old
	})
	c, _ := appStatsOf(t, stats, "app")["cgroup"].(map[string]any)
	if c["memory_max"] != float64(128<<20) {
		t.Errorf("cgroup after reload: %v, want memory_max 128MiB", c)
	}
	if _, body := gwtest.Get(t, s.URL+"/limits"); !strings.Contains(body, "Max address space         314572800") {
		t.Errorf("new runner's limits after reload:\n%s", body)
	}
	pid := runnerPID(t, s.URL+"/pid")
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if !strings.Contains(string(cg), fmt.Sprintf("gw-%d/app", s.PID())) {
		t.Errorf("new runner's cgroups:\n%s", cg)
	}
}

// TestLimitsMemoryShims: gw_rack and gw_asgi, too, answer the app's
// NoMemoryError / MemoryError under limits.memory with 500 and exit,
// counted as the limit's (gw_wsgi: TestLimitsMemory).
func TestLimitsMemoryShims(t *testing.T) {
	for _, tc := range []struct {
		name, app   string
		interpreter func(testing.TB) string
	}{
		{"rb", "limits/config.ru", func(t testing.TB) string { return gwtest.RequireInterpreter(t, "ruby") }},
		{"asgi", "limits/asgi.py", gwtest.RequirePython},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, stats := startLimits(t, fmt.Sprintf(`
  - {name: %s, path: %s, interpreter: %s, workers: 1, limits: {memory: 256MiB}}
`, tc.name, suitePath(tc.app), tc.interpreter(t)))
			old := runnerPID(t, s.URL+"/pid")
			if code, body := gwtest.Get(t, s.URL+"/alloc"); code != 500 {
				t.Errorf("allocating 512MiB under 256MiB: %d %q, want 500", code, body)
			}
			limitExit(t, s, stats, tc.name, "", old, "memory")
		})
	}
}

// TestLimitsCgroupV2Refused: with cgroup_root at a real cgroup2 mount that
// does not offer the memory controller (this machine: v1 holds it), an
// app with memory_max is refused at start, naming the controller, rather
// than run unlimited.
func TestLimitsCgroupV2Refused(t *testing.T) {
	requireRoot(t)
	py := gwtest.RequirePython(t)
	mnt := ""
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, _ := strings.Cut(line, " - ")
		if f := strings.Fields(pre); strings.HasPrefix(post, "cgroup2 ") && len(f) > 4 {
			mnt = f[4]
		}
	}
	if mnt == "" {
		t.Skip("no cgroup2 mount")
	}
	if c, _ := os.ReadFile(filepath.Join(mnt, "cgroup.controllers")); strings.Contains(string(c), "memory") {
		t.Skipf("the cgroup2 mount %s offers memory: nothing to refuse", mnt)
	}
	cfg := fmt.Sprintf("listen: {http: \"127.0.0.1:0\"}\ncgroup_root: %s\napps:\n  - {path: %s, interpreter: %s, limits: {memory_max: 64MiB}}\n", mnt, limitsApp(), py)
	rc, out := gwtest.Run(t, 30*time.Second, "run", "--allow-root", "-c", writeFile(t, "v2.yaml", cfg))
	if rc != 1 || !strings.Contains(out, "does not offer the memory controller") {
		t.Errorf("memory_max on a cgroup2 mount without memory: exit %d, want 1 naming it:\n%s", rc, out)
	}
}
