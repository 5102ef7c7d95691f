package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
	"github.com/gwhq/gw/runners/goplugin/goplugintest"
)

// TestASGIClientGone: an ASGI app on one runner with one slot hears
// http.disconnect when its client leaves while it answers (CLIENT_GONE on
// the bridge): a Starlette stream that never ends on its own stops, a long
// poll waiting on receive() returns, and each time the slot serves the
// next request. The client leaves by closing its HTTP/1.1 connection (gw's
// own server: a failed write or its watch of the connection) or by
// cancelling an HTTP/2 stream (net/http's request context).
func TestASGIClientGone(t *testing.T) {
	py := requireModules(t, "starlette")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := writeCert(t, certFile, keyFile, 1)
	s := gwtest.Start(t, "--https", "127.0.0.1:0", "--cert", certFile, "--key", keyFile,
		"--interpreter", py, "--workers", "1", "--threads", "1",
		"--dir", testdataDir(t), "asgi.hints_app:app")
	h2c := tlsClient(h2, false, cert)
	want := map[string]int{}
	for _, tc := range []struct {
		name  string
		leave func(t *testing.T) // makes a request and leaves while the app answers
		count []string           // the counters it moves
	}{
		{"stream, HTTP/1.1 connection closed", func(t *testing.T) {
			c, br := rawRequest(t, s.URL, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
			defer c.Close()
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if line, err := bufio.NewReader(resp.Body).ReadString('\n'); resp.StatusCode != 200 || !strings.HasPrefix(line, "tick ") {
				t.Fatalf("%d %q %v", resp.StatusCode, line, err)
			}
		}, []string{"disconnects", "ended", "started"}},
		{"long poll, HTTP/1.1 connection closed", func(t *testing.T) {
			c, _ := rawRequest(t, s.URL, "GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
			time.Sleep(300 * time.Millisecond) // the app is in receive() by now, most likely; if not, it is soon
			c.Close()
		}, []string{"polls"}},
		{"stream, HTTP/2 stream cancelled", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", s.HTTPS+"/stream", nil)
			resp, err := h2c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if line, err := bufio.NewReader(resp.Body).ReadString('\n'); resp.Proto != "HTTP/2.0" || !strings.HasPrefix(line, "tick ") {
				t.Fatalf("%s %q %v", resp.Proto, line, err)
			}
		}, []string{"disconnects", "ended", "started"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.leave(t)
			start := time.Now()
			for _, k := range tc.count {
				want[k]++
			}
			wantText := fmt.Sprintf("disconnects=%d ended=%d started=%d polls=%d",
				want["disconnects"], want["ended"], want["started"], want["polls"])
			// /seen needs the one slot: it answers once the app let go.
			var body string
			for time.Since(start) < 20*time.Second {
				var code int
				code, body = gwtest.Get(t, s.URL+"/seen")
				if code == 200 && body == wantText {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if body != wantText {
				t.Fatalf("/seen says %q, want %q; log:\n%s", body, wantText, s.Log())
			}
			t.Logf("slot back %v after the client left", time.Since(start).Round(time.Millisecond))
		})
	}
}

// rawRequest sends req on a fresh connection to base.
func rawRequest(t *testing.T, base, req string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// earlyHintsWant is what both test apps hint.
var earlyHintsWant = []string{"</style.css>; rel=preload; as=style", "</app.js>; rel=preload; as=script"}

// TestEarlyHints: an ASGI app's http.response.early_hint, a Rack app's
// rack.early_hints and a Go plugin's WriteHeader(103) reach the client as a 103 before the 200: as raw bytes
// on gw's HTTP/1.1 listener (none to an HTTP/1.0 client), through Go's
// client over HTTPS, HTTP/1.1 and HTTP/2, and through quic-go's over HTTP/3.
func TestEarlyHints(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := writeCert(t, certFile, keyFile, 1)
	tlsArgs := []string{"--https", "127.0.0.1:0", "--http3", "127.0.0.1:0", "--cert", certFile, "--key", keyFile, "--workers", "1"}
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
		{"go", func(t *testing.T) *gwtest.Server {
			return gwtest.Start(t, append(tlsArgs, "--lang", "go", goplugintest.Example(t))...)
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
			// quic-go's server writes a 1xx at once (http3/response_writer.go,
			// WriteHeader: "immediately write 1xx headers") and its client
			// reports it to Got1xxResponse (http3/client.go).
			t.Run("HTTP/3", func(t *testing.T) {
				checkHintsClient(t, h3Client(t, cert), "https://"+s.Addr("http3")+"/early", "HTTP/3.0")
			})
		})
	}
}

// rawExchange sends req on a fresh connection to base and reads the
// connection to its end.
func rawExchange(t *testing.T, base, req string) string {
	t.Helper()
	c, br := rawRequest(t, base, req)
	defer c.Close()
	b, err := io.ReadAll(br)
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

// TestEarlyHintsBehindNginx: on the uwsgi and FastCGI listeners a 103 is
// dropped (neither protocol can carry one): nginx's client gets the
// answer alone, without the hint's Link fields.
func TestEarlyHintsBehindNginx(t *testing.T) {
	py := requireModules(t, "starlette")
	gwtest.RequireInterpreter(t, "nginx")
	dir := t.TempDir()
	uwsgiSock, fcgiSock := filepath.Join(dir, "uwsgi.sock"), filepath.Join(dir, "fcgi.sock")
	cfg := fmt.Sprintf(`
listen: {http: "127.0.0.1:0", uwsgi: "unix:%s", fastcgi: "unix:%s"}
apps:
  - {name: hints, path: %s, callable: app, interpreter: %s, workers: 1}
`, uwsgiSock, fcgiSock, asgiApp("hints_app.py"), py)
	gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	for name, base := range map[string]string{
		"uwsgi":   gwtest.StartNginx(t, "", "location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:"+uwsgiSock+"; }"),
		"fastcgi": gwtest.StartNginx(t, "", "location / { include /etc/nginx/fastcgi_params; fastcgi_pass unix:"+fcgiSock+"; }"),
	} {
		t.Run(name, func(t *testing.T) {
			got := rawExchange(t, base, "GET /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || strings.Contains(got, " 103 ") ||
				strings.Contains(strings.ToLower(got), "link:") || !strings.HasSuffix(got, "hinted") {
				t.Errorf("through nginx:\n%s", got)
			}
		})
	}
}
