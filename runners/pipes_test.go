package runners

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/bridge"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/pool"
)

// echoApps answer a POST with its body four times over, and sleep on
// /sleep (for Abort).
var echoApps = []struct {
	lang    config.Lang
	file    string
	src     string
	bin     string
	threads int
}{
	{config.LangPython, "echo.py", "import time\n" +
		"def application(environ, start_response):\n" +
		"    if environ['PATH_INFO'] == '/sleep':\n" +
		"        time.sleep(30)\n" +
		"    body = environ['wsgi.input'].read()\n" +
		"    start_response('200 OK', [('Content-Type', 'application/octet-stream')])\n" +
		"    return [body * 4]\n", "python3", 2},
	{config.LangRuby, "config.ru", "run ->(env) { sleep 30 if env['PATH_INFO'] == '/sleep'; b = env['rack.input'].read; " +
		"[200, {'content-type' => 'application/octet-stream'}, [b * 4]] }\n", "ruby", 2},
	{config.LangPerl, "echo.psgi", "my $app = sub { my $env = shift; sleep 30 if $env->{PATH_INFO} eq '/sleep'; " +
		"my ($in, $b) = ($env->{'psgi.input'}, ''); 1 while $in->read($b, 65536, length $b); " +
		"[200, ['Content-Type' => 'application/octet-stream'], [$b x 4]] };\n", "perl", 1},
}

// TestSlotsArePipes: gw hands each bridge runner its slots as pipe pairs
// (--slot-fds R:W, issue 14), and a request whose body and answer are each
// several times a pipe's 64 KiB buffer goes through them on every slot, in
// both directions at once (the body pump writes while gw reads the answer).
// Then Abort on a slot whose app is busy ends that exchange at once.
func TestSlotsArePipes(t *testing.T) {
	for _, app := range echoApps {
		t.Run(string(app.lang), func(t *testing.T) {
			_, w := launchApp(t, app.lang, app.file, app.src, app.bin, app.threads)
			for fd := 4; fd < 4+2*app.threads; fd++ {
				link, err := os.Readlink("/proc/" + strconv.Itoa(w.PID()) + "/fd/" + strconv.Itoa(fd))
				if err != nil || !strings.HasPrefix(link, "pipe:") {
					t.Errorf("runner fd %d is %q (%v), want a pipe", fd, link, err)
				}
			}
			body := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16)
			for slot := range app.threads {
				rec := httptest.NewRecorder()
				r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
				if err := w.Serve(slot, rec, r); err != nil {
					t.Fatalf("slot %d: %v", slot, err)
				}
				if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), bytes.Repeat(body, 4)) {
					t.Fatalf("slot %d: status %d, %d bytes, want 200 and %d bytes", slot, rec.Code, rec.Body.Len(), 4*len(body))
				}
			}
			done := make(chan error, 1)
			go func() { done <- w.Serve(0, httptest.NewRecorder(), httptest.NewRequest("GET", "/sleep", nil)) }()
			time.Sleep(200 * time.Millisecond) // let the app start sleeping
			start := time.Now()
			w.Abort(0)
			select {
			case err := <-done:
				if !errors.Is(err, pool.ErrWorkerGone) || !errors.Is(err, bridge.ErrRunnerGone) {
					t.Errorf("aborted exchange: err %v, want ErrWorkerGone with the bridge's ErrRunnerGone", err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("Abort took %v to end the exchange", d)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Abort did not end the exchange")
			}
		})
	}
}

// launchApp starts one runner of the app src (written as file) with
// threads slots, or skips when bin is missing (fails under
// GW_REQUIRE_RUNTIMES=1); the runner is killed at cleanup. A PHP app is
// served from the directory it is written to.
func launchApp(tb testing.TB, lang config.Lang, file, src, bin string, threads int) (*App, pool.Worker) {
	tb.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		if os.Getenv("GW_REQUIRE_RUNTIMES") == "1" {
			tb.Fatalf("%s not installed", bin)
		}
		tb.Skipf("%s not installed", bin)
	}
	dir := tb.TempDir()
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		tb.Fatal(err)
	}
	if lang == config.LangPHP {
		path = dir
	}
	rt, err := NewRuntime(nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rt.Remove() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(config.App{Name: "test", Lang: lang, Path: path, Mount: "/", Workers: 1, Threads: threads}, rt, log)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := a.Launcher.Launch(ctx, 1)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		w.Kill()
		<-w.Done()
	})
	return a, w
}
