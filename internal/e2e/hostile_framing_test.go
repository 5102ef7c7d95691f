package e2e

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
	"github.com/gwhq/gw/runners/goplugin/goplugintest"
)

// The hostile framing suite: apps (testdata/framing) that answer with heads
// and bodies breaking HTTP framing, one path per way, in every language.
// What each must come to (issue 13, items 13, 19, 22):
//
//	/long     Content-Length 5, 11 bytes: the client gets exactly 5, the log says so
//	/short    Content-Length 20, 5 bytes: the connection is cut, not left waiting
//	/chunked  Transfer-Encoding: chunked, framed by the app: de-chunked once
//	/early    status 103 as the final status: 500
//	/switch   status 101 with no upgrade: 500
//	/head     HEAD answered with the GET body: the head alone, connection reusable
//	/nul      (Go) a NUL in a header value: 500
type framingApp struct {
	lang    string
	args    func(t *testing.T) []string // gw run's arguments, the app last
	chunked bool                        // the app can frame its own body
	early   bool                        // a 103 is the app's final status
}

var framingApps = []framingApp{
	{"python", func(t *testing.T) []string {
		return []string{"--interpreter", gwtest.RequirePython(t), suitePath("framing/app.py")}
	}, true, true},
	{"ruby", func(t *testing.T) []string {
		return []string{"--interpreter", gwtest.RequireInterpreter(t, "ruby"), suitePath("framing/config.ru")}
	}, true, true},
	{"perl", func(t *testing.T) []string {
		return []string{"--interpreter", gwtest.RequireInterpreter(t, "perl"), suitePath("framing/app.psgi")}
	}, true, true},
	{"php", func(t *testing.T) []string {
		return []string{"--interpreter", gwtest.RequireInterpreter(t, "php-cgi"), suitePath("framing/php")}
	}, true, true},
	// A Go handler writes through an http.ResponseWriter, which frames the
	// body, and its 103 is an interim response net/http sends as such.
	{"go", func(t *testing.T) []string {
		p, err := goplugintest.BuildTo(t.TempDir(), "framing-plugin", "./internal/e2e/testdata/framing/goplugin")
		if err != nil {
			t.Fatal(err)
		}
		return []string{"--lang", "go", p}
	}, false, false},
}

func TestHostileFraming(t *testing.T) {
	for _, fa := range framingApps {
		t.Run(fa.lang, func(t *testing.T) {
			s := gwtest.Start(t, append([]string{"--workers", "1", "--mount", "/m"}, fa.args(t)...)...)
			t.Run("long body", func(t *testing.T) { checkLongBody(t, s) })
			t.Run("short body", func(t *testing.T) { checkShortBody(t, s) })
			if fa.chunked {
				t.Run("self-chunked body", func(t *testing.T) {
					if code, body := gwtest.Get(t, s.URL+"/m/chunked"); code != 200 || body != "hello world" {
						t.Fatalf("%d %q, want 200 \"hello world\" (chunked once)", code, body)
					}
				})
			}
			if fa.early {
				t.Run("103 final", func(t *testing.T) { checkAppError(t, s, "/m/early", "final status") })
			}
			t.Run("101", func(t *testing.T) { checkAppError(t, s, "/m/switch", "final status") })
			t.Run("HEAD with a body", func(t *testing.T) { checkHead(t, s) })
			if fa.lang == "go" {
				t.Run("NUL in a header", func(t *testing.T) { checkAppError(t, s, "/m/nul", "NUL") })
			}
		})
	}
}

// TestLongStderrLine: a runner's 2 MiB stderr line used to end the reading
// of its stderr for good (bufio.Scanner's 1 MiB cap), so the traceback right
// after it never reached gw's log.
func TestLongStderrLine(t *testing.T) {
	s := gwtest.Start(t, "--workers", "1", "--interpreter", gwtest.RequirePython(t), suitePath("framing/app.py"))
	if code, _ := gwtest.Get(t, s.URL+"/bigerr"); code != 500 {
		t.Fatalf("status %d, want 500", code)
	}
	// The traceback reaches the log only through stderr (the 500 log line
	// carries the exception line alone).
	waitLog(t, s, "Traceback (most recent call last)")
	if n := len(s.Log()); n > 1<<20 {
		t.Errorf("gw logged %d bytes for one long line", n)
	}
}

// checkLongBody: exactly the declared bytes reach the client (net/http used
// to refuse the whole overflowing write: a head and no body), and the log
// names the failure.
func checkLongBody(t *testing.T, s *gwtest.Server) {
	c := gwtest.Dial(t, s.URL)
	c.Send("GET /m/long HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := c.Response("GET")
	if resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("%d %q, want 200 \"hello\"", resp.StatusCode, body)
	}
	waitLog(t, s, "longer than its Content-Length 5")
}

// checkShortBody: the client sees the connection end before the declared
// length, at once, rather than waiting for bytes that never come; the log
// names the failure.
func checkShortBody(t *testing.T, s *gwtest.Server) {
	c := gwtest.Dial(t, s.URL)
	c.Send("GET /m/short HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(c.R, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	body, err := io.ReadAll(resp.Body)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the client was left waiting for the rest of the body (%v)", time.Since(start))
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(body) != "hello" {
		t.Fatalf("body %q err %v: want \"hello\" and a cut connection", body, err)
	}
	waitLog(t, s, "shorter than its Content-Length 20")
}

func checkAppError(t *testing.T, s *gwtest.Server, path, logged string) {
	code, body := gwtest.Get(t, s.URL+path)
	if code != 500 {
		t.Fatalf("%s: %d %q, want 500", path, code, body)
	}
	waitLog(t, s, logged)
}

// checkHead: HEAD gets the head with the GET's Content-Length and no body,
// and the connection serves the next request (a Rack::Lint app used to get
// no response at all: the shim iterated the body, Lint raised).
func checkHead(t *testing.T, s *gwtest.Server) {
	c := gwtest.Dial(t, s.URL)
	c.Send("HEAD /m/head HTTP/1.1\r\nHost: x\r\n\r\nGET /m/ok HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _ := c.Response("HEAD")
	if resp.StatusCode != 200 || resp.ContentLength != 5 {
		t.Fatalf("HEAD: %d, Content-Length %d; want 200, 5", resp.StatusCode, resp.ContentLength)
	}
	resp, body := c.Response("GET")
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("the request after HEAD: %d %q", resp.StatusCode, body)
	}
}

// waitLog waits (bounded) for gw's log to say want: the log line of a
// failed response is written as the response ends, just after the client
// has seen it.
func waitLog(t *testing.T, s *gwtest.Server, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.Log(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("gw's log does not say %q:\n%s", want, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
