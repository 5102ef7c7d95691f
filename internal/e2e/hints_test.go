package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// TestASGIClientGone: a Starlette app streaming forever, on one runner
// with one slot, hears http.disconnect when its client leaves (CLIENT_GONE
// on the bridge), its stream ends, and the slot serves the next request.
func TestASGIClientGone(t *testing.T) {
	py := requireModules(t, "starlette")
	s := gwtest.Start(t, "--interpreter", py, "--workers", "1", "--threads", "1",
		"--dir", testdataDir(t), "asgi.hints_app:app")
	for round := 1; round <= 2; round++ { // twice: the slot is whole afterwards
		c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if resp.StatusCode != 200 || !strings.HasPrefix(line, "tick ") {
			t.Fatalf("round %d: %d %q %v", round, resp.StatusCode, line, err)
		}
		c.Close()

		// /seen needs the one slot: it answers only once the stream ended.
		want := "disconnects=" + strconv.Itoa(round) + " ended=" + strconv.Itoa(round) + " started=" + strconv.Itoa(round)
		start := time.Now()
		var body string
		for time.Since(start) < 20*time.Second {
			var code int
			code, body = gwtest.Get(t, s.URL+"/seen")
			if code == 200 && body == want {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if body != want {
			t.Fatalf("round %d: /seen says %q, want %q; log:\n%s", round, body, want, s.Log())
		}
		t.Logf("round %d: slot back %v after the client left", round, time.Since(start).Round(time.Millisecond))
	}
}

// earlyHintsWant is what both test apps hint.
var earlyHintsWant = []string{"</style.css>; rel=preload; as=style", "</app.js>; rel=preload; as=script"}

// TestEarlyHints: an ASGI app's http.response.early_hint and a Rack app's
// rack.early_hints reach the client as a 103 before the 200: as raw bytes
// on gw's HTTP/1.1 listener (none to an HTTP/1.0 client), and through Go's
// client over HTTPS, HTTP/1.1 and HTTP/2.
func TestEarlyHints(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := writeCert(t, certFile, keyFile, 1)
	tlsArgs := []string{"--https", "127.0.0.1:0", "--cert", certFile, "--key", keyFile, "--workers", "1"}
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *gwtest.Server
	}{
		{"asgi", func(t *testing.T) *gwtest.Server {
			py := requireModules(t, "starlette")
			return gwtest.Start(t, append(tlsArgs, "--interpreter", py, "--dir", testdataDir(t), "asgi.hints_app:app")...)
		}},
		{"rack", func(t *testing.T) *gwtest.Server {
			ruby := gwtest.RequireInterpreter(t, "ruby")
			return gwtest.Start(t, append(tlsArgs, "--interpreter", ruby, suitePath("ruby/hints.ru"))...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.start(t)
			t.Run("raw HTTP/1.1", func(t *testing.T) {
				got := rawExchange(t, s.URL, "GET /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				interim, final, ok := strings.Cut(got, "\r\n\r\n")
				if !ok || !strings.HasPrefix(interim, "HTTP/1.1 103 Early Hints\r\n") {
					t.Fatalf("answer does not start with a 103:\n%s", got)
				}
				var links []string
				for _, l := range strings.Split(interim, "\r\n")[1:] {
					if v, ok := strings.CutPrefix(l, "Link: "); ok {
						links = append(links, v)
					}
				}
				if !reflect.DeepEqual(links, earlyHintsWant) {
					t.Errorf("103 Links %q, want %q", links, earlyHintsWant)
				}
				if !strings.HasPrefix(final, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(final, "hinted") ||
					strings.Contains(final, "Link:") {
					t.Errorf("final answer after the 103:\n%s", final)
				}
			})
			t.Run("raw HTTP/1.0", func(t *testing.T) {
				got := rawExchange(t, s.URL, "GET /early HTTP/1.0\r\nHost: x\r\n\r\n")
				if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || strings.Contains(got, " 103 ") || !strings.HasSuffix(got, "hinted") {
					t.Errorf("HTTP/1.0 answer:\n%s", got)
				}
			})
			for _, p := range []struct {
				name  string
				set   func(*http.Protocols)
				proto string
			}{{"HTTPS HTTP/1.1", h1, "HTTP/1.1"}, {"HTTPS HTTP/2", h2, "HTTP/2.0"}} {
				t.Run(p.name, func(t *testing.T) {
					checkHintsClient(t, tlsClient(p.set, true, cert), s.HTTPS+"/early", p.proto)
				})
			}
		})
	}
}

// rawExchange sends req on a fresh connection to base and reads the
// connection to its end.
func rawExchange(t *testing.T, base, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, req)
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%v after %q", err, b)
	}
	return string(b)
}

// checkHintsClient gets url with Go's client, which reports each 1xx to
// httptrace's Got1xxResponse.
func checkHintsClient(t *testing.T, client *http.Client, url, proto string) {
	t.Helper()
	var codes []int
	var links []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		codes = append(codes, code)
		links = append(links, h["Link"]...)
		return nil
	}}
	req, _ := http.NewRequest("GET", url, nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.Proto != proto || resp.StatusCode != 200 || string(body) != "hinted" || resp.Header["Link"] != nil {
		t.Errorf("%s %d %q %v", resp.Proto, resp.StatusCode, body, resp.Header)
	}
	if !reflect.DeepEqual(codes, []int{103}) || !reflect.DeepEqual(links, earlyHintsWant) {
		t.Errorf("1xx %v with Links %q, want one 103 with %q", codes, links, earlyHintsWant)
	}
}
