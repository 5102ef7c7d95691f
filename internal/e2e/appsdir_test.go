package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/gateway/control"
	"github.com/gwhq/gw/internal/gwtest"
)

// dirWithin bounds the time from an app file's write to its app serving.
// The issue asks for 2s: that is the figure the tests log; the bound is
// looser because on this shared 2-core machine a runner's boot alone can
// take seconds (see reloadWithin).
const dirWithin = 10 * time.Second

// greetApp answers its GREETING variable, so a changed app file shows.
const greetApp = "import os\n" +
	"def application(environ, start_response):\n" +
	"    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
	"    return [os.environ.get('GREETING', 'none').encode()]\n"

// dirGW is a gw serving the app "n" from its config file and whatever
// the apps directory holds.
type dirGW struct {
	*ctlGW
	dir, apps, cfg string
}

func startDirGW(t *testing.T, py string, extra string) *dirGW {
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps.d")
	if err := os.Mkdir(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	save(t, filepath.Join(dir, "greet.py"), greetApp)
	sock := filepath.Join(dir, "control.sock")
	cfg := filepath.Join(dir, "gw.yaml")
	save(t, cfg, "listen:\n  http: 127.0.0.1:0\n  control: unix:"+sock+"\n"+
		"limits:\n  shutdown_timeout: 5s\n"+
		"apps_dir: apps.d\n"+
		"apps:\n  - name: n\n    path: greet.py\n    mount: /n\n    workers: 2\n    env: {GREETING: neighbour}\n"+extra)
	gw := gwtest.Start(t, "-c", cfg, "--interpreter", py)
	return &dirGW{ctlGW: &ctlGW{Server: gw, t: t, sock: sock}, dir: dir, apps: apps, cfg: cfg}
}

// put writes an app file as editors that save safely do: a hidden temp
// file renamed over the name (the temp file must not count).
func (g *dirGW) put(name, body string) time.Time {
	g.t.Helper()
	tmp := filepath.Join(g.apps, "."+name+".swp")
	save(g.t, tmp, body)
	start := time.Now()
	if err := os.Rename(tmp, filepath.Join(g.apps, name)); err != nil {
		g.t.Fatal(err)
	}
	return start
}

// awaitStatus polls url until it answers code, within dirWithin of start.
func awaitStatus(t *testing.T, url string, code int, start time.Time) time.Duration {
	t.Helper()
	got := 0
	for time.Since(start) < dirWithin {
		if got, _ = gwtest.Get(t, url); got == code {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s answers %d %v after the change, want %d", url, got, dirWithin, code)
	return 0
}

// TestAppsDir: under load on the neighbour n, an app file dropped in the
// directory serves, a changed one reloads (env and mount), a broken one
// and a clashing one are refused with their path and line while the
// running version serves on, and a removed one stops; n never fails a
// request.
func TestAppsDir(t *testing.T) {
	py := gwtest.RequirePython(t)
	g := startDirGW(t, py, "")
	blog := func(mount, greeting string) string {
		return "path: ../greet.py\nmount: " + mount + "\nworkers: 1\ninterpreter: " + py + "\nenv:\n  GREETING: " + greeting + "\n"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*dirWithin)
	defer cancel()
	load := make(chan loadCount, 1)
	// Ended by cancel or its timeout.
	go func() { load <- pacedLoad(ctx, g.URL+"/n") }()

	// A new file: its app serves.
	start := g.put("blog.yaml", blog("/blog", "v1"))
	took := awaitBody(t, g.URL+"/blog", "v1", start, dirWithin)
	t.Logf("new file: first request served %v after the rename", took.Round(time.Millisecond))
	st := g.appStatus("blog")
	if st.File != filepath.Join(g.apps, "blog.yaml") || st.Mount != "/blog/" || len(st.Runners) != 1 {
		t.Errorf("gw ctl status blog: %+v", st)
	}

	// Changed in place: only that app reloads.
	nPIDs := g.pids("n")
	start = time.Now()
	save(t, filepath.Join(g.apps, "blog.yaml"), blog("/blog", "v2"))
	took = awaitBody(t, g.URL+"/blog", "v2", start, dirWithin)
	t.Logf("changed file: new config served %v after the write", took.Round(time.Millisecond))
	// An editor that saves by moving the file to a backup and writing a
	// new one (vim's default): the file is missing for a moment, which
	// the debounce folds away, so the app reloads and is not removed.
	start = time.Now()
	if err := os.Rename(filepath.Join(g.apps, "blog.yaml"), filepath.Join(g.apps, "blog.yaml~")); err != nil {
		t.Fatal(err)
	}
	save(t, filepath.Join(g.apps, "blog.yaml"), blog("/blog", "v2b"))
	awaitBody(t, g.URL+"/blog", "v2b", start, dirWithin)
	if strings.Contains(g.Log(), "app stopping") {
		t.Errorf("a backup-rename save removed the app:\n%s", g.Log())
	}
	// The mount moves too.
	start = g.put("blog.yaml", blog("/journal", "v3"))
	awaitBody(t, g.URL+"/journal", "v3", start, dirWithin)
	if code, _ := gwtest.Get(t, g.URL+"/blog"); code != http.StatusNotFound {
		t.Errorf("old mount /blog after the move: %d, want 404", code)
	}

	// Broken: reported with path and line; v3 serves on.
	save(t, filepath.Join(g.apps, "blog.yaml"), blog("/journal", "v4")+"workers: [\n")
	awaitLog(t, g.Server, "its running version keeps serving", dirWithin)
	if want := filepath.Join(g.apps, "blog.yaml") + ":7:"; !strings.Contains(g.Log(), want) {
		t.Errorf("no %q (the file and line) in the log:\n%s", want, g.Log())
	}
	if _, body := gwtest.Get(t, g.URL+"/journal"); body != "v3" {
		t.Errorf("after a broken write: %q, want v3 serving on", body)
	}
	// A file that clashes with the config file's app, and one with blog's
	// mount: both refused, naming the file they lose to.
	g.put("clash.yaml", blog("/n", "x"))
	awaitLog(t, g.Server, "at mount /n is already served by "+g.cfg+" apps[0]", dirWithin)
	g.put("twin.yaml", blog("/journal", "x"))
	awaitLog(t, g.Server, "twin.yaml problems=\"", dirWithin)
	if want := "is already served by " + filepath.Join(g.apps, "blog.yaml"); !strings.Contains(g.Log(), want) {
		t.Errorf("twin.yaml's refusal does not say %q:\n%s", want, g.Log())
	}
	// An app that does not boot: reported, tried again only when its file
	// changes, not at every change of the directory.
	save(t, filepath.Join(g.dir, "bad.py"), "def application(:\n")
	g.put("bad.yaml", "path: ../bad.py\nmount: /bad\nworkers: 1\ninterpreter: "+py+"\n")
	awaitLog(t, g.Server, "apps_dir: app not started", dirWithin)
	if !strings.Contains(g.Log(), "SyntaxError") {
		t.Errorf("the boot failure's log does not show the SyntaxError:\n%s", g.Log())
	}
	// A user that does not exist refuses that file alone.
	g.put("nouser.yaml", blog("/nouser", "x")+"uid: gw-no-such-user\n")
	awaitLog(t, g.Server, "nouser.yaml problems=", dirWithin)
	if !strings.Contains(g.Log(), "gw-no-such-user") {
		t.Errorf("nouser.yaml's refusal does not name the user:\n%s", g.Log())
	}
	// Hidden, backup and non-yaml files are no apps.
	for _, name := range []string{".hidden.yaml", "blog.yaml~", "README"} {
		save(t, filepath.Join(g.apps, name), blog("/"+strings.Trim(name, ".~"), "x"))
	}
	time.Sleep(time.Second)
	if _, body := gwtest.Get(t, g.URL+"/journal"); body != "v3" {
		t.Errorf("journal answers %q, want v3", body)
	}
	if n := strings.Count(g.Log(), "apps_dir: app not started"); n != 1 {
		t.Errorf("bad.yaml was tried %d times; want once, as it did not change", n)
	}
	// Fixed: served again.
	start = time.Now()
	save(t, filepath.Join(g.apps, "blog.yaml"), blog("/journal", "v5"))
	awaitBody(t, g.URL+"/journal", "v5", start, dirWithin)

	// Touched (same bytes, new mtime): the app restarts, as uWSGI's
	// vassals do, to pick up new code.
	blogPIDs := g.pids("blog")
	future := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(filepath.Join(g.apps, "blog.yaml"), future, future); err != nil {
		t.Fatal(err)
	}
	g.waitPIDs("blog", func(p []int) bool { return len(p) == 1 && disjoint(p, blogPIDs) })

	// Removed: it stops, and the twin that lost to it may now start.
	blogPIDs = g.pids("blog")
	start = time.Now()
	if err := os.Remove(filepath.Join(g.apps, "blog.yaml")); err != nil {
		t.Fatal(err)
	}
	awaitBody(t, g.URL+"/journal", "x", start, dirWithin)
	gwtest.WaitGone(t, blogPIDs, dirWithin)
	t.Logf("removed file: its twin served %v after the removal", time.Since(start).Round(time.Millisecond))
	if err := os.Remove(filepath.Join(g.apps, "twin.yaml")); err != nil {
		t.Fatal(err)
	}
	awaitStatus(t, g.URL+"/journal", http.StatusNotFound, time.Now())

	cancel()
	if res := <-load; res.failed != 0 || res.ok == 0 {
		t.Errorf("neighbour n during the changes: %d ok, %d failed (%s)", res.ok, res.failed, res.last)
	} else {
		t.Logf("neighbour n: %d requests, none failed", res.ok)
	}
	if now := g.pids("n"); !slices.Equal(now, nPIDs) {
		t.Errorf("neighbour n's runners changed: %v, then %v", nPIDs, now)
	}
}

// appStatus is gw ctl status APP --json.
func (g *dirGW) appStatus(name string) control.AppStatus {
	g.t.Helper()
	var a control.AppStatus
	if err := json.Unmarshal([]byte(g.mustCtl("status", name, "--json")), &a); err != nil {
		g.t.Fatal(err)
	}
	return a
}

// TestAppsDirSIGHUP: SIGHUP rescans the directory (a file added while
// no watch saw it is served), and a broken file's app serves on through
// the full reload; gw ctl stop APP drains one app of the directory.
func TestAppsDirSIGHUP(t *testing.T) {
	py := gwtest.RequirePython(t)
	g := startDirGW(t, py, "")
	one := func(greeting string) string {
		return "path: ../greet.py\nmount: /" + greeting + "\nworkers: 1\ninterpreter: " + py + "\nenv: {GREETING: " + greeting + "}\n"
	}
	start := g.put("a.yaml", one("a"))
	awaitBody(t, g.URL+"/a", "a", start, dirWithin)
	save(t, filepath.Join(g.apps, "a.yaml"), "path: [\n")
	awaitLog(t, g.Server, "its running version keeps serving", dirWithin)
	start = g.put("b.yaml", one("b"))
	awaitBody(t, g.URL+"/b", "b", start, dirWithin)

	gen := g.status().Generation
	if err := syscall.Kill(g.PID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	awaitLog(t, g.Server, "reload: new generation serving", dirWithin)
	if s := g.status(); s.Generation <= gen || len(s.Apps) != 3 {
		t.Errorf("after SIGHUP: generation %d (was %d), apps %+v", s.Generation, gen, s.Apps)
	}
	for _, name := range []string{"a", "b"} {
		if _, body := gwtest.Get(t, g.URL+"/"+name); body != name {
			t.Errorf("after SIGHUP /%s answers %q", name, body)
		}
	}
	if out := g.mustCtl("stop", "b"); !strings.Contains(out, "drain b: done") {
		t.Errorf("gw ctl stop b: %q", out)
	}
	if code, _ := gwtest.Get(t, g.URL+"/b"); code != http.StatusServiceUnavailable {
		t.Errorf("/b after gw ctl stop b: %d, want 503", code)
	}
	if a := g.appStatus("b"); a.State != "drained" {
		t.Errorf("b after stop: %+v", a)
	}
	if code, out := g.ctl("status", "nope"); code == 0 || !strings.Contains(out, "no such app") {
		t.Errorf("gw ctl status nope: exit %d, %q", code, out)
	}
}

// TestAppsDirFirstServed: the time from an app file's rename into the
// directory to the app's first answer, per language (the figure).
func TestAppsDirFirstServed(t *testing.T) {
	py := gwtest.RequirePython(t)
	g := startDirGW(t, py, "")
	type lang struct{ name, interp, file, src string }
	langs := []lang{
		{"python", "python3", "app.py", reloadApps[0].src("python")},
		{"ruby", "ruby", "config.ru", reloadApps[1].src("ruby")},
		{"perl", "perl", "app.psgi", reloadApps[2].src("perl")},
		{"php", "php-cgi", "index.php", "<?php echo 'php';"},
	}
	for _, l := range langs {
		t.Run(l.name, func(t *testing.T) {
			interp := gwtest.RequireInterpreter(t, l.interp)
			src := filepath.Join(g.dir, l.name, l.file)
			if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
				t.Fatal(err)
			}
			save(t, src, l.src)
			path := src
			if l.name == "php" {
				path = filepath.Dir(src)
			}
			var best time.Duration
			for i := range 3 {
				name := fmt.Sprintf("%s%d", l.name, i)
				start := g.put(name+".yaml", fmt.Sprintf("path: %s\nmount: /%s\nworkers: 1\ninterpreter: %s\n", path, name, interp))
				took := awaitBody(t, g.URL+"/"+name+"/", l.name, start, dirWithin)
				if best == 0 || took < best {
					best = took
				}
				t.Logf("%s: file renamed in -> first answer %v", l.name, took.Round(time.Millisecond))
			}
			t.Logf("%s: best of 3 %v", l.name, best.Round(time.Millisecond))
		})
	}
}

// TestAppsDirHundred: 100 app files, each an on-demand app (min_workers:
// 0, so no runner starts before its first request), all routed; gw's RSS
// is logged. With GW_APPSDIR_RUNNERS=1 each app keeps one PHP runner and
// their RSS is logged too.
func TestAppsDirHundred(t *testing.T) {
	py := gwtest.RequirePython(t)
	const n = 100
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps.d")
	if err := os.MkdirAll(filepath.Join(dir, "php"), 0o755); err != nil {
		t.Fatal(err)
	}
	save(t, filepath.Join(dir, "greet.py"), greetApp)
	save(t, filepath.Join(dir, "php", "index.php"), "<?php echo getenv('GREETING');")
	if err := os.Mkdir(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	body := func(i int) string {
		return fmt.Sprintf("path: ../greet.py\nmount: /s%d\nworkers: 1\nmin_workers: 0\ninterpreter: %s\nenv: {GREETING: s%d}\n", i, py, i)
	}
	withRunners := os.Getenv("GW_APPSDIR_RUNNERS") == "1"
	if withRunners {
		php := gwtest.RequireInterpreter(t, "php-cgi")
		body = func(i int) string {
			return fmt.Sprintf("path: ../php\nmount: /s%d\nworkers: 1\ninterpreter: %s\nenv: {GREETING: s%d}\n", i, php, i)
		}
	}
	for i := range n {
		save(t, filepath.Join(apps, fmt.Sprintf("s%d.yaml", i)), body(i))
	}
	cfg := filepath.Join(dir, "gw.yaml")
	save(t, cfg, "listen:\n  http: 127.0.0.1:0\nlimits:\n  shutdown_timeout: 5s\napps_dir: apps.d\n")
	start := time.Now()
	g := gwtest.Start(t, "-c", cfg)
	t.Logf("%d apps serving %v after the start", n, time.Since(start).Round(time.Millisecond))
	for _, i := range []int{0, n / 2, n - 1} {
		want := fmt.Sprintf("s%d", i)
		if _, got := gwtest.Get(t, g.URL+"/"+want+"/"); got != want {
			t.Errorf("/%s answers %q", want, got)
		}
	}
	t.Logf("gw with %d apps (3 of them served once): RSS %d KiB, PSS %d KiB", n,
		memOf(t, g.PID(), "Rss:"), memOf(t, g.PID(), "Pss:"))
	if withRunners {
		var rss, pss int64
		kids := g.Children()
		for _, pid := range kids {
			rss, pss = rss+memOf(t, pid, "Rss:"), pss+memOf(t, pid, "Pss:")
		}
		t.Logf("their %d runner processes together: RSS %d KiB, PSS %d KiB (shared pages counted once)", len(kids), rss, pss)
	}
}

// memOf reads a field (Rss:, Pss:) of a process's smaps_rollup, in KiB.
func memOf(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s for pid %d", field, pid)
	return 0
}

// TestCheckAppsDir: gw check --apps-dir reports a broken file and the
// newer of two clashing files with path and line, and exits 1; the good
// files are not reported.
func TestCheckAppsDir(t *testing.T) {
	dir := t.TempDir()
	save(t, filepath.Join(dir, "app.py"), greetApp)
	old := time.Now().Add(-time.Hour)
	for name, body := range map[string]string{
		"a.yaml":      "path: ../app.py\nmount: /a\n",
		"b.yaml":      "path: ../app.py\nmount: /a\n", // newer: loses
		"c.yaml":      "path: ../app.py\nmount: /c\nworkers: zero\n",
		".d.yaml.swp": "path: [",
	} {
		p := filepath.Join(dir, "apps", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		save(t, p, body)
		if name == "a.yaml" {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	apps := filepath.Join(dir, "apps")
	code, out := gwtest.Run(t, 30*time.Second, "check", "--apps-dir", apps)
	want := []string{
		filepath.Join(apps, "b.yaml") + ":2:8: b.mount: any host at mount /a is already served by " + filepath.Join(apps, "a.yaml"),
		filepath.Join(apps, "c.yaml") + ":3:10: c.workers: \"zero\" is not a whole number",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("gw check --apps-dir: no %q in\n%s", w, out)
		}
	}
	if code != 1 || strings.Contains(out, "a.yaml:") || strings.Contains(out, ".swp") {
		t.Errorf("gw check --apps-dir: exit %d (want 1), output:\n%s", code, out)
	}
}
