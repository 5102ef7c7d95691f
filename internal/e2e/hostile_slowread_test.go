package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// TestSlowReaderFreesRunner: a client that asks for 8 MiB and reads none
// of it used to hold the app's only runner until it read or left (the
// worker's write to it blocked), so a second client waited out the 60 s
// queue wait. Now the answer is spooled (memory, then an unlinked temp
// file) and the runner is free once the app is done: the second client is
// answered at once, and the slow one still gets exactly the 8 MiB.
func TestSlowReaderFreesRunner(t *testing.T) {
	const size = 8 << 20
	gwtest.Binary(t) // built before TMPDIR moves into a test's temp dir
	cases := []struct {
		lang      string
		start     func(t *testing.T) *gwtest.Server
		big, next string
	}{
		{"php", func(t *testing.T) *gwtest.Server {
			return gwtest.Start(t, "--interpreter", gwtest.RequireInterpreter(t, "php-cgi"), "--workers", "1",
				"--timeout", "60s", "--mount", "/php", suitePath("php/site"))
		}, fmt.Sprintf("/php/download.php?%d", size), "/php/pid.php"},
	}
	for _, ls := range suites {
		cases = append(cases, struct {
			lang      string
			start     func(t *testing.T) *gwtest.Server
			big, next string
		}{ls.lang, func(t *testing.T) *gwtest.Server {
			return gwtest.Start(t, "--interpreter", ls.interp(t), "--workers", "1", "--threads", "1",
				"--timeout", "60s", suitePath(ls.app))
		}, fmt.Sprintf("/download?%d", size), "/pid"})
	}
	for _, tc := range cases {
		t.Run(tc.lang, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp) // gw's runtime dir, and so its spool dir, under tmp
			s := tc.start(t)
			slow := gwtest.Dial(t, s.URL)
			slow.SetDeadline(time.Now().Add(60 * time.Second))
			slow.Send("GET " + tc.big + " HTTP/1.1\r\nHost: slow\r\n\r\n")

			// The spool spills to a temp file nobody else can open.
			var spoolFD string
			waitFor(t, "gw to hold a spool temp file", func() bool { spoolFD = spoolFile(s.PID()); return spoolFD != "" })
			if !strings.HasSuffix(spoolFD, "(deleted)") {
				t.Errorf("spool file %q is not unlinked", spoolFD)
			}
			if ents := spoolEntries(t, tmp); len(ents) != 0 {
				t.Errorf("spool dir lists %v, want nothing", ents)
			}

			c := &http.Client{Timeout: 10 * time.Second} // far below the 60 s queue wait
			resp, err := c.Get(s.URL + tc.next)
			if err != nil {
				t.Fatalf("second client, while the first reads nothing: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("second client: %d", resp.StatusCode)
			}

			got, err := http.ReadResponse(slow.R, nil)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			n, err := io.Copy(h, got.Body)
			if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != sha(string(pattern(size))) {
				t.Fatalf("slow client got %d bytes (%v), sha %x; want the %d-byte pattern", n, err, h.Sum(nil), size)
			}
			waitFor(t, "the spool file to be closed", func() bool { return spoolFile(s.PID()) == "" })
		})
	}
}

// TestSpooledStreamFlushes: a streamed answer past what goes straight
// through is spooled, and the app's flushes still reach the client while
// the app runs (the shim flushes after each WSGI chunk).
func TestSpooledStreamFlushes(t *testing.T) {
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	flag := filepath.Join(dir, "finish")
	app := writeFile(t, "stream.py", `import os, time

def application(environ, start_response):
    if environ["PATH_INFO"] == "/accel":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Accel-Buffering", "no")])
        return [b"x" * 100000]
    start_response("200 OK", [("Content-Type", "text/plain")])
    def body():
        yield b"x" * 100000  # past the 32 KiB gw writes straight through
        yield b"marker\n"
        deadline = time.time() + 30
        while not os.path.exists(`+fmt.Sprintf("%q", flag)+`) and time.time() < deadline:
            time.sleep(0.02)
        yield b"end\n"
    return body()
`)
	s := gwtest.Start(t, "--interpreter", py, "--workers", "1", app)
	c := gwtest.Dial(t, s.URL)
	c.Send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(c.R, nil)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n') // 100000 x's and "marker\n", with the app still running
	if err != nil || !strings.HasSuffix(line, "marker\n") || len(line) != 100007 {
		t.Fatalf("before the app finished: %d bytes, %v", len(line), err)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "end\n" {
		t.Fatalf("after the app finished: %q, %v", rest, err)
	}

	r2, err := http.Get(s.URL + "/accel")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if len(b) != 100000 || r2.Header.Get("X-Accel-Buffering") != "" {
		t.Errorf("X-Accel-Buffering: no: %d bytes, header %q sent on", len(b), r2.Header.Get("X-Accel-Buffering"))
	}
}

// spoolFile is the target of gw's descriptor for a spool temp file, or "".
func spoolFile(pid int) string {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && strings.Contains(target, "/spool/answer-") {
			return target
		}
	}
	return ""
}

// spoolEntries lists gw's spool directory under tmp (its runtime dir is
// tmp/gw-*).
func spoolEntries(t *testing.T, tmp string) []string {
	dirs, _ := filepath.Glob(filepath.Join(tmp, "gw-*", "spool"))
	if len(dirs) != 1 {
		t.Fatalf("spool dirs under %s: %v, want one", tmp, dirs)
	}
	fi, err := os.Stat(dirs[0])
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("spool dir %s: %v %v, want mode 0700", dirs[0], fi.Mode(), err)
	}
	ents, _ := os.ReadDir(dirs[0])
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
