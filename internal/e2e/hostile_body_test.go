package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
	"github.com/gwhq/gw/runners/goplugin/goplugintest"
)

// The hostile-client suite for request bodies: slow, abandoned, malformed
// and unread uploads, Expect: 100-continue, and framing that net/http
// lets through.

// bodyApp is one language's app with the endpoints these tests use.
type bodyApp struct {
	lang                string
	start               func(t *testing.T, extra ...string) *gwtest.Server
	hash, unread, quick string // POST: sha of the body; POST: answers unread; GET: answers at once
}

func suiteApp(ls langSuite) bodyApp {
	return bodyApp{
		lang: ls.lang,
		start: func(t *testing.T, extra ...string) *gwtest.Server {
			args := append([]string{"--interpreter", ls.interp(t), "--mount", "/m"}, extra...)
			return gwtest.Start(t, append(args, suitePath(ls.app))...)
		},
		hash: "/m/hash", unread: "/m/unread", quick: "/m/pid",
	}
}

func bodyApps() []bodyApp {
	var out []bodyApp
	for _, ls := range suites {
		out = append(out, suiteApp(ls))
	}
	goApp := bodyApp{
		lang: "go",
		start: func(t *testing.T, extra ...string) *gwtest.Server {
			return gwtest.Start(t, append(append([]string{"--lang", "go"}, extra...), goplugintest.Example(t))...)
		},
		hash: "/hash", unread: "/pid", quick: "/pid",
	}
	return append(out, bodyApp{lang: "php", start: startPHP, hash: "/php/hash.php", unread: "/php/pid.php", quick: "/php/pid.php"}, goApp)
}

func pythonApp() bodyApp { return suiteApp(suites[0]) }

// quickGet must answer while the app's only runner would be held by an
// upload that has not finished; the client gives up after 10 s.
func quickGet(t *testing.T, url string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET behind a stalled upload: %v (does the upload hold the runner?)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET behind a stalled upload: %d", resp.StatusCode)
	}
}

// TestHostileSlowUpload (issue 13 item 2): two uploads that stall midway,
// one chunked and one of 2 MiB by Content-Length, hold no runner: with one
// runner, a GET is answered meanwhile, and both uploads are answered
// correctly once they finish.
func TestHostileSlowUpload(t *testing.T) {
	for _, a := range bodyApps() {
		t.Run(a.lang, func(t *testing.T) {
			s := a.start(t, "--workers", "1")
			chunked := gwtest.Dial(t, s.URL)
			chunked.Send("POST " + a.hash + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
			big := strings.Repeat("s", 2<<20)
			sized := gwtest.Dial(t, s.URL)
			sized.Send("POST " + a.hash + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
				strconv.Itoa(len(big)) + "\r\n\r\n" + big[:1<<20])
			time.Sleep(200 * time.Millisecond) // both are in the gateway now

			quickGet(t, s.URL+a.quick)

			chunked.Send("6\r\n world\r\n0\r\n\r\n")
			if resp, got := chunked.Response("POST"); resp.StatusCode != 200 || strings.TrimSpace(got) != "11 "+sha("hello world") {
				t.Errorf("chunked upload: %d %q", resp.StatusCode, got)
			}
			sized.Send(big[1<<20:])
			if resp, got := sized.Response("POST"); resp.StatusCode != 200 || strings.TrimSpace(got) != fmt.Sprintf("%d %s", len(big), sha(big)) {
				t.Errorf("sized upload: %d %.80q", resp.StatusCode, got)
			}
		})
	}
}

// TestHostileBodyTimeout (item 2): a body that stops arriving is cut with
// 408 once body_timeout passes between two reads, and the connection
// closes (nginx's client_body_timeout).
func TestHostileBodyTimeout(t *testing.T) {
	a := pythonApp()
	for _, mode := range []string{"--request-buffering=true", "--request-buffering=false"} {
		s := a.start(t, "--workers", "1", "--body-timeout", "1s", mode)
		for _, tc := range []struct{ name, head, part string }{
			{"sized", "Content-Length: 100000", strings.Repeat("x", 10)},
			{"chunked", "Transfer-Encoding: chunked", "5\r\nhello\r\n"},
		} {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				c := gwtest.Dial(t, s.URL)
				c.Send("POST " + a.hash + " HTTP/1.1\r\nHost: x\r\n" + tc.head + "\r\n\r\n" + tc.part)
				resp, _ := c.Response("POST")
				if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
					t.Fatalf("stalled body: %d (close %v), want 408 and close", resp.StatusCode, resp.Close)
				}
			})
		}
	}
}

// TestHostileAbandonedUpload (item 3): a client that announces 10 MiB,
// sends 1 MiB and leaves frees the runner at once, in every language,
// buffered or streamed (php-cgi waited for the rest until the timeout).
func TestHostileAbandonedUpload(t *testing.T) {
	for _, a := range bodyApps() {
		for _, mode := range []string{"--request-buffering=true", "--request-buffering=false"} {
			t.Run(a.lang+"/"+mode, func(t *testing.T) {
				s := a.start(t, "--workers", "1", mode)
				c := gwtest.Dial(t, s.URL)
				c.Send("POST " + a.hash + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
					strconv.Itoa(10<<20) + "\r\n\r\n" + strings.Repeat("a", 1<<20))
				time.Sleep(200 * time.Millisecond)
				c.Close()
				quickGet(t, s.URL+a.quick)
			})
		}
	}
}

// TestHostileUnreadBodyLingers (item 5): an app answers a 4 MiB upload
// without reading it, to a client that writes the whole body before it
// reads (as Python's http.client does). Each of 10 tries must get the
// answer, not a reset: gw discards the rest after answering (nginx's
// lingering close).
func TestHostileUnreadBodyLingers(t *testing.T) {
	body := strings.Repeat("u", 4<<20)
	for _, a := range bodyApps() {
		for _, mode := range []string{"--request-buffering=true", "--request-buffering=false"} {
			t.Run(a.lang+"/"+mode, func(t *testing.T) {
				s := a.start(t, "--workers", "1", mode)
				addr := strings.TrimPrefix(s.URL, "http://")
				lost := 0
				for range 10 {
					if err := writeAllThenRead(addr, a.unread, body); err != nil {
						t.Log(err)
						lost++
					}
				}
				if lost > 0 {
					t.Errorf("lost the answer %d times in 10", lost)
				}
			})
		}
	}
}

// writeAllThenRead sends a POST with body in full, then reads the answer.
func writeAllThenRead(addr, path, body string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"+body)
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil || resp.StatusCode != 200 {
		return fmt.Errorf("answer: %d, %v", resp.StatusCode, err)
	}
	return nil
}

// TestHostileExpectContinue (item 6): a client that waits for "100
// Continue" before sending 4 MiB to a route that never reads it always
// gets a final answer, in both modes; and one whose body is over max_body
// gets 413 instead of a 100.
func TestHostileExpectContinue(t *testing.T) {
	a := pythonApp()
	const size = 4 << 20
	body := strings.Repeat("e", size)
	head := "POST " + a.unread + " HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n"
	for _, mode := range []string{"--request-buffering=true", "--request-buffering=false"} {
		t.Run(mode, func(t *testing.T) {
			s := a.start(t, "--workers", "1", mode)
			for i := range 10 {
				c := gwtest.Dial(t, s.URL)
				c.Send(head)
				resp, err := http.ReadResponse(c.R, nil)
				if err != nil {
					t.Fatalf("try %d: no answer to the head: %v", i, err)
				}
				if resp.StatusCode == http.StatusContinue {
					c.Send(body)
					if resp, err = http.ReadResponse(c.R, nil); err != nil {
						t.Fatalf("try %d: no final answer after the body: %v", i, err)
					}
				}
				if resp.StatusCode != 200 {
					t.Fatalf("try %d: %d, want 200", i, resp.StatusCode)
				}
				c.Close()
			}
		})
	}
	t.Run("over max_body", func(t *testing.T) {
		s := a.start(t, "--workers", "1", "--max-body", "1MiB")
		c := gwtest.Dial(t, s.URL)
		c.Send(head)
		if resp, _ := c.Response("POST"); resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
			t.Fatalf("%d (close %v), want 413 without a 100 first, and close", resp.StatusCode, resp.Close)
		}
	})
}

// TestHostileMalformedChunked (item 15): a chunked body with a bad or
// overlong chunk size or bare-LF lines gets 400 and a closed connection,
// never a 200 with an empty body.
func TestHostileMalformedChunked(t *testing.T) {
	a := pythonApp()
	for _, mode := range []string{"--request-buffering=true", "--request-buffering=false"} {
		s := a.start(t, "--workers", "1", mode)
		for _, tc := range []struct{ name, body string }{
			{"bad size", "zz\r\nhello\r\n0\r\n\r\n"},
			{"overlong size", "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"},
			{"bare LF", "5\nhello\n0\n\n"},
		} {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				c := gwtest.Dial(t, s.URL)
				c.Send("POST " + a.hash + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + tc.body)
				resp, got := c.Response("POST")
				if resp.StatusCode != http.StatusBadRequest || !resp.Close {
					t.Fatalf("%d %q (close %v), want 400 and close", resp.StatusCode, got, resp.Close)
				}
			})
		}
	}
}

// TestHostileRequestFraming (item 16) pins the framing rules of RFC 9112
// §6.1 and §6.3 on the HTTP listener (gw's own h1 server): a request with
// both Content-Length and Transfer-Encoding, and an HTTP/1.0 request with
// Transfer-Encoding, are refused with 400 and the connection closes, as
// nginx does, so bytes that follow are never read as another request.
// (The net/http listeners, HTTPS, close after such requests instead:
// gateway/framing.go.)
func TestHostileRequestFraming(t *testing.T) {
	a := pythonApp()
	s := a.start(t, "--workers", "1")
	smuggled := "GET " + a.quick + " HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name, req string
	}{
		{"CL and TE", "POST " + a.hash + " HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5\r\nhello\r\n0\r\n\r\n"},
		{"HTTP/1.0 with TE", "POST " + a.hash + " HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := gwtest.Dial(t, s.URL)
			c.Send(tc.req + smuggled)
			resp, got := c.Response("POST")
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("answer %d %q, want 400", resp.StatusCode, got)
			}
			if rest := c.Rest(); !resp.Close || rest != "" {
				t.Errorf("close %v, then %q; want the connection closed after the answer", resp.Close, rest)
			}
		})
	}
}
