package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// reloadWithin bounds the time from a saved edit to the first answer from
// the new code. The issue asks for a second; that holds for an idle
// machine (150ms debounce + a runner's boot, ~100ms for python), but a
// runner's boot counts against it, and on this 2-core machine shared with
// other test runs (load average ~10) starting python3 alone takes up to
// 1.5s. So the bound is loose, and the figure is logged per language.
const reloadWithin = 6 * time.Second

// reloadApps are one app per language whose answer is the text it is
// given; broken is a save with a syntax error and what the log shows of it.
var reloadApps = []struct {
	lang, interp string
	file         string
	src          func(text string) string
	broken, says string
}{
	{"python", "python3", "app.py", func(s string) string {
		return "def application(environ, start_response):\n" +
			"    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
			"    return [b'" + s + "']\n"
	}, "def application(:\n", "SyntaxError"},
	{"ruby", "ruby", "config.ru", func(s string) string {
		return "run lambda { |env| [200, {'content-type' => 'text/plain'}, ['" + s + "']] }\n"
	}, "run lambda { |env|\n", "syntax error"},
	{"perl", "perl", "app.psgi", func(s string) string {
		return "my $app = sub { [200, ['Content-Type' => 'text/plain'], ['" + s + "']] };\n"
	}, "my $app = sub { [200, \n", "syntax error"},
}

// TestReloadOnChange: gw run --reload APP serves an edit of APP's source
// without a request failing meanwhile; a broken save leaves the old code
// serving with the error in the log, and the next good save reloads.
func TestReloadOnChange(t *testing.T) {
	for _, tc := range reloadApps {
		t.Run(tc.lang, func(t *testing.T) {
			interp := gwtest.RequireInterpreter(t, tc.interp)
			dir := t.TempDir()
			src := filepath.Join(dir, tc.file)
			save(t, src, tc.src("v1"))
			gw := gwtest.Start(t, "--reload", "--interpreter", interp, "--workers", "1", src)
			if _, body := gwtest.Get(t, gw.URL+"/"); body != "v1" {
				t.Fatalf("before the edit: %q", body)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*reloadWithin)
			defer cancel()
			load := make(chan loadCount, 1)
			// Ended by cancel or its timeout.
			go func() { load <- pacedLoad(ctx, gw.URL+"/") }()

			took := saveAndAwait(t, gw, src, tc.src("v2"), "v2")
			t.Logf("%s: edit served after %v", tc.lang, took.Round(time.Millisecond))

			start := time.Now()
			save(t, src, tc.broken)
			awaitLog(t, gw, "reload: app not reloaded", reloadWithin)
			t.Logf("%s: broken save reported after %v", tc.lang, time.Since(start).Round(time.Millisecond))
			if !strings.Contains(gw.Log(), tc.says) {
				t.Errorf("the log does not show the error (%q):\n%s", tc.says, gw.Log())
			}
			if _, body := gwtest.Get(t, gw.URL+"/"); body != "v2" {
				t.Errorf("after a broken save: %q, want the old code's v2", body)
			}
			took = saveAndAwait(t, gw, src, tc.src("v3"), "v3")
			t.Logf("%s: fix served after %v", tc.lang, took.Round(time.Millisecond))

			cancel()
			if res := <-load; res.failed != 0 || res.ok == 0 {
				t.Errorf("requests during the reloads: %d ok, %d failed (%s)", res.ok, res.failed, res.last)
			}
		})
	}
}

type loadCount struct {
	ok, failed int
	last       string // the last failure
}

// pacedLoad sends one GET every 5ms until ctx ends: enough to be sure no
// request fails across a reload, light enough not to starve the runner's
// boot on a 2-core machine (a full-speed loop doubled python's boot).
func pacedLoad(ctx context.Context, url string) loadCount {
	var n loadCount
	client := &http.Client{Timeout: 10 * time.Second}
	for ctx.Err() == nil {
		resp, err := client.Get(url)
		switch {
		case err != nil && ctx.Err() != nil:
			return n
		case err != nil:
			n.failed, n.last = n.failed+1, err.Error()
		default:
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || err != nil {
				n.failed, n.last = n.failed+1, fmt.Sprintf("status %d, %v", resp.StatusCode, err)
			} else {
				n.ok++
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return n
}

// save writes a file in place, as most editors' plain save does.
func save(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// saveAndAwait saves src and waits until gw answers want; it returns how
// long that took after the save.
func saveAndAwait(t *testing.T, gw *gwtest.Server, src, text, want string) time.Duration {
	t.Helper()
	start := time.Now()
	save(t, src, text)
	return awaitBody(t, gw.URL+"/", want, start, reloadWithin)
}

// awaitBody polls url until its body is want, within d of start.
func awaitBody(t *testing.T, url, want string, start time.Time, d time.Duration) time.Duration {
	t.Helper()
	body := ""
	for time.Since(start) < d {
		if _, body = gwtest.Get(t, url); body == want {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s still answers %q %v after the change, want %q", url, body, d, want)
	return 0
}

// awaitLog polls gw's log until it holds s.
func awaitLog(t *testing.T, gw *gwtest.Server, s string, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(gw.Log(), s) {
			return
		}
	}
	t.Fatalf("no %q in the log within %v:\n%s", s, d, gw.Log())
}

// pidApp answers its name and its runner's pid, so a test sees which
// runner served.
const pidApp = "import os\n" +
	"def application(environ, start_response):\n" +
	"    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
	"    return [('%d' % os.getpid()).encode()]\n"

// TestTouchReload: touching an app's touch_reload file (missing at the
// start) reloads that app and no other, and the watch survives a full
// reload (SIGHUP) that adds an app with --reload's yaml twin, reload: true.
func TestTouchReload(t *testing.T) {
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	save(t, filepath.Join(dir, "app.py"), pidApp)
	cfg := filepath.Join(dir, "gw.yaml")
	yaml := "listen:\n  http: 127.0.0.1:0\nlimits:\n  shutdown_timeout: 5s\napps:\n" +
		"  - {name: a, path: app.py, mount: /a, workers: 1, touch_reload: [deploy/reload.txt]}\n" +
		"  - {name: b, path: app.py, mount: /b, workers: 1}\n"
	save(t, cfg, yaml)
	if err := os.Mkdir(filepath.Join(dir, "deploy"), 0o755); err != nil {
		t.Fatal(err)
	}
	gw := gwtest.Start(t, "-c", cfg, "--interpreter", py)
	_, a0 := gwtest.Get(t, gw.URL+"/a/")
	_, b0 := gwtest.Get(t, gw.URL+"/b/")

	trigger := filepath.Join(dir, "deploy", "reload.txt")
	start := time.Now()
	save(t, trigger, "") // created: counts as a touch
	a1 := awaitChange(t, gw.URL+"/a/", a0, start)
	if _, b := gwtest.Get(t, gw.URL+"/b/"); b != b0 {
		t.Errorf("b's runner changed (%s -> %s): only a touches reload.txt", b0, b)
	}
	later := time.Now().Add(time.Second)
	start = time.Now()
	if err := os.Chtimes(trigger, later, later); err != nil { // touch
		t.Fatal(err)
	}
	awaitChange(t, gw.URL+"/a/", a1, start)
	if !strings.Contains(gw.Log(), "msg=\"reload: file changed\" app=a file="+trigger) {
		t.Errorf("the log does not name the app and the file:\n%s", gw.Log())
	}

	// A full reload with a new app c that has reload: true: its sources
	// are watched from then on.
	if err := os.Mkdir(filepath.Join(dir, "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	save(t, filepath.Join(dir, "c", "app.py"), strings.Replace(pidApp, "os.getpid()", "-1", 1))
	save(t, cfg, yaml+"  - {name: c, path: c/app.py, mount: /c, workers: 1, reload: true}\n")
	if err := syscall.Kill(gw.PID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	awaitBody(t, gw.URL+"/c/", "-1", time.Now(), 30*time.Second)
	start = time.Now()
	save(t, filepath.Join(dir, "c", "app.py"), strings.Replace(pidApp, "os.getpid()", "-2", 1))
	awaitBody(t, gw.URL+"/c/", "-2", start, reloadWithin)
}

// awaitChange polls url until its body differs from old, within
// reloadWithin of start, and returns the new body.
func awaitChange(t *testing.T, url, old string, start time.Time) string {
	t.Helper()
	for time.Since(start) < reloadWithin {
		if code, body := gwtest.Get(t, url); code == 200 && body != old {
			t.Logf("%s reloaded after %v", url, time.Since(start).Round(time.Millisecond))
			return body
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s still answers %q %v after the touch", url, old, reloadWithin)
	return ""
}

// TestReloadPHPNeedsNone: php-cgi compiles each script anew (opcache
// checks the mtime, at most every opcache.revalidate_freq, 2s by
// default), so --reload watches nothing for PHP and an edit is served
// without any reload.
func TestReloadPHPNeedsNone(t *testing.T) {
	php := gwtest.RequireInterpreter(t, "php-cgi")
	dir := t.TempDir()
	index := filepath.Join(dir, "index.php")
	save(t, index, "<?php echo 'v1';")
	gw := gwtest.Start(t, "--reload", "--interpreter", php, "--workers", "1", dir)
	if _, body := gwtest.Get(t, gw.URL+"/"); body != "v1" {
		t.Fatalf("before the edit: %q", body)
	}
	start := time.Now()
	save(t, index, "<?php echo 'v2';")
	took := awaitBody(t, gw.URL+"/", "v2", start, 2*time.Second+reloadWithin)
	t.Logf("php: edit served after %v, no reload", took.Round(time.Millisecond))
	if log := gw.Log(); strings.Contains(log, "reload: file changed") || !strings.Contains(log, "php-cgi reads each script anew") {
		t.Errorf("php with --reload should say it watches nothing and reload nothing:\n%s", log)
	}
}

// slowWhoApp is whoApp with a version and /slow, a request that keeps an
// old gw draining; it says on stderr (gw's log) when it has started.
const slowWhoApp = `import os, sys, time
def application(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        print("slow request started", file=sys.stderr, flush=True)
        time.sleep(4)
    body = ("%d %d VERSION" % (os.getpid(), os.getppid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
`

// TestReloadAfterUpgrade: after a SIGUSR2 upgrade only the new gw
// watches: an edit made while the old gw still drains is reloaded once,
// by the new gw (the new runner is its child).
func TestReloadAfterUpgrade(t *testing.T) {
	asSubreaper(t)
	st := newUpgradeSetup(t)
	st.writeApp(t, strings.Replace(slowWhoApp, "VERSION", "v1", 1))
	st.writeConfig(t, "    reload: true\n")
	first := startGW(t, "-c", st.cfg)
	base, pid0, next := first.serving(t, 0, 0)
	slow := make(chan string, 1)
	// Ends within the client's timeout.
	go func() {
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(base + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	_, next = first.log.await(t, next, 10*time.Second, "slow request started")
	syscall.Kill(pid0, syscall.SIGUSR2)
	_, pid1, next := first.serving(t, next, 0)
	// The new gw is no child of startGW's command: stop it here, or it
	// outlives the test (this process adopted it: asSubreaper).
	t.Cleanup(func() {
		syscall.Kill(pid1, syscall.SIGTERM)
		if code := waitOrphan(t, pid1, 30*time.Second); code != 0 {
			t.Errorf("the new gw exited %d at SIGTERM", code)
		}
	})
	// Logged once the old gw stopped watching (it stops first).
	first.log.await(t, 0, 10*time.Second, "gw draining after the upgrade")
	select {
	case <-first.exited:
		t.Fatal("the old gw exited with a request in flight")
	default:
	}
	st.writeApp(t, strings.Replace(slowWhoApp, "VERSION", "v2", 1))
	first.log.await(t, next, 30*time.Second, "reload: app serving from new runners")
	_, body := gwtest.Get(t, base+"/")
	if f := strings.Fields(body); len(f) != 3 || f[1] != strconv.Itoa(pid1) || f[2] != "v2" {
		t.Errorf("after the edit: %q, want a runner of the new gw %d serving v2", body, pid1)
	}
	if b := <-slow; !strings.HasSuffix(b, fmt.Sprintf("%d v1", pid0)) {
		t.Errorf("the slow request: %q, want the old gw's v1", b)
	}
	<-first.exited
	if n := first.log.count("reload: file changed"); n != 1 {
		t.Errorf("%d reloads for one edit, want 1 (the new gw's):\n%s", n, first.log)
	}
}
