package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// proxyApps writes a WSGI app and a PHP app that print what they were told
// about the client, the scheme and the host.
func proxyApps(t *testing.T) (pyApp, phpDir string) {
	dir := t.TempDir()
	pyApp = filepath.Join(dir, "who.py")
	os.WriteFile(pyApp, []byte(`def application(env, start):
    start("200 OK", [("Content-Type", "text/plain")])
    keys = ["REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST", "SERVER_PORT", "HTTP_X_FORWARDED_FOR"]
    return ["|".join(str(env.get(k, "-")) for k in keys).encode()]
`), 0o644)
	phpDir = filepath.Join(dir, "php")
	os.Mkdir(phpDir, 0o755)
	os.WriteFile(filepath.Join(phpDir, "index.php"), []byte(`<?php
echo implode("|", array_map(fn($k) => $_SERVER[$k] ?? "-", ["REMOTE_ADDR", "HTTPS", "HTTP_HOST", "SERVER_PORT", "HTTP_X_FORWARDED_FOR"]));
`), 0o644)
	return pyApp, phpDir
}

// proxyASGIRack writes an ASGI app and a Rack app that print the same as
// proxyApps's: the ASGI scope's client, scheme and server port, Rack's
// REMOTE_ADDR and rack.url_scheme.
func proxyASGIRack(t *testing.T) (asgiApp, rackApp string) {
	dir := t.TempDir()
	asgiApp, rackApp = filepath.Join(dir, "who_asgi.py"), filepath.Join(dir, "who.ru")
	os.WriteFile(asgiApp, []byte(`async def app(scope, receive, send):
    h = dict(scope["headers"])
    vals = [scope["client"][0], scope["scheme"], h.get(b"host", b"-").decode(), str(scope["server"][1]),
            h.get(b"x-forwarded-for", b"-").decode()]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": "|".join(vals).encode()})
`), 0o644)
	os.WriteFile(rackApp, []byte(`run ->(env) { [200, { 'content-type' => 'text/plain' },
  [%w[REMOTE_ADDR rack.url_scheme HTTP_HOST SERVER_PORT HTTP_X_FORWARDED_FOR].map { |k| env[k] || '-' }.join('|')]] }
`), 0o644)
	return asgiApp, rackApp
}

// from is an HTTP client whose connections come from the loopback
// address ip, so gw and nginx (both on 127.0.0.1) tell clients apart.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}}}
}

func getFrom(t *testing.T, ip, url string, header ...string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := from(ip).Do(req)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", url, ip, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s from %s: %d %s", url, ip, resp.StatusCode, b)
	}
	return string(b)
}

// TestProxyHeadersBehindNginx: nginx on loopback proxies with the usual
// X-Forwarded-For/Proto; gw trusts nginx (127.0.0.1) only. The apps (WSGI,
// PHP, ASGI, Rack) see
// the address nginx saw (127.0.0.2), the forwarded scheme and port; a
// client that reaches gw directly (127.0.0.3) with forged headers has
// them stripped, and the access log names the real client either way.
func TestProxyHeadersBehindNginx(t *testing.T) {
	py, php := proxyApps(t)
	asgi, rack := proxyASGIRack(t)
	python := gwtest.RequirePython(t)
	accessLog := filepath.Join(t.TempDir(), "access.log")
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
proxy: {trusted: [127.0.0.1/32]}
log: {access: %s}
apps:
  - {name: py, lang: python, path: %s, interpreter: %s, mount: /py, workers: 1}
  - {name: php, lang: php, path: %s, interpreter: %s, mount: /php, workers: 1}
  - {name: asgi, lang: python, path: %s, callable: app, interpreter: %s, mount: /asgi, workers: 1}
  - {name: rb, lang: ruby, path: %s, interpreter: %s, mount: /rb, workers: 1}
`, accessLog, py, python, php, gwtest.RequireInterpreter(t, "php-cgi"), asgi, python, rack, gwtest.RequireInterpreter(t, "ruby"))))
	gwAddr := strings.TrimPrefix(s.URL, "http://")
	nginx := gwtest.StartNginx(t, "", `
		location / {
			proxy_pass http://`+gwAddr+`;
			proxy_set_header Host $host;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto $scheme;
		}
		location /tls/ {
			# As an nginx that terminated TLS on 443 sends it.
			proxy_pass http://`+gwAddr+`/;
			proxy_set_header Host shop.example;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto https;
		}`)
	for i, tc := range []struct {
		ip, url string
		header  []string
		want    string
	}{
		{"127.0.0.2", nginx + "/py/", nil, "127.0.0.2|http|127.0.0.1|80|127.0.0.2"},
		// The client's own X-Forwarded-For is left of what nginx adds: not believed.
		{"127.0.0.2", nginx + "/py/", []string{"X-Forwarded-For", "6.6.6.6"}, "127.0.0.2|http|127.0.0.1|80|6.6.6.6, 127.0.0.2"},
		{"127.0.0.2", nginx + "/tls/py/", nil, "127.0.0.2|https|shop.example|443|127.0.0.2"},
		{"127.0.0.2", nginx + "/tls/php/", nil, "127.0.0.2|on|shop.example|443|127.0.0.2"},
		{"127.0.0.2", nginx + "/php/", nil, "127.0.0.2|-|127.0.0.1|80|127.0.0.2"},
		{"127.0.0.2", nginx + "/tls/asgi/", nil, "127.0.0.2|https|shop.example|443|127.0.0.2"},
		{"127.0.0.2", nginx + "/tls/rb/", nil, "127.0.0.2|https|shop.example|443|127.0.0.2"},
		// Straight to gw from an untrusted peer: forged headers stripped.
		{"127.0.0.3", s.URL + "/py/", []string{"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example"},
			"127.0.0.3|http|" + gwAddr + "|" + gwAddr[strings.LastIndexByte(gwAddr, ':')+1:] + "|-"},
		{"127.0.0.3", s.URL + "/php/", []string{"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Proto", "https"},
			"127.0.0.3|-|" + gwAddr + "|" + gwAddr[strings.LastIndexByte(gwAddr, ':')+1:] + "|-"},
		{"127.0.0.3", s.URL + "/asgi/", []string{"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Proto", "https"},
			"127.0.0.3|http|" + gwAddr + "|" + gwAddr[strings.LastIndexByte(gwAddr, ':')+1:] + "|-"},
		{"127.0.0.3", s.URL + "/rb/", []string{"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Proto", "https"},
			"127.0.0.3|http|" + gwAddr + "|" + gwAddr[strings.LastIndexByte(gwAddr, ':')+1:] + "|-"},
	} {
		if got := getFrom(t, tc.ip, tc.url, tc.header...); got != tc.want {
			t.Errorf("%d: %s from %s: got %q, want %q", i, tc.url, tc.ip, got, tc.want)
		}
	}
	waitFor(t, "access log names the clients 127.0.0.2 (through nginx) and 127.0.0.3", func() bool {
		b, _ := os.ReadFile(accessLog)
		return strings.Contains(string(b), "127.0.0.2") && strings.Contains(string(b), "127.0.0.3")
	})
	if b, _ := os.ReadFile(accessLog); strings.Contains(string(b), "6.6.6.6") {
		t.Errorf("a forged address reached the access log:\n%s", b)
	}
}

// TestProxyProtocolBehindNginx: nginx's stream proxy sends the PROXY
// protocol to gw's HTTP listener (listen.proxy_protocol); REMOTE_ADDR is
// the address in the header. A direct connection from an untrusted peer
// is closed before any answer, and so is a trusted one without a header.
func TestProxyProtocolBehindNginx(t *testing.T) {
	py, _ := proxyApps(t)
	accessLog := filepath.Join(t.TempDir(), "access.log")
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", fmt.Sprintf(`listen: {http: "127.0.0.1:0", proxy_protocol: true}
proxy: {trusted: [127.0.0.1]}
log: {access: %s}
apps:
  - {name: py, lang: python, path: %s, interpreter: %s, workers: 1}
`, accessLog, py, gwtest.RequirePython(t))))
	gwAddr := strings.TrimPrefix(s.URL, "http://")
	nginx := gwtest.StartNginxStream(t, gwAddr)
	for range 3 { // keep-alive reuses the connection: the header is read once
		if got, want := getFrom(t, "127.0.0.2", nginx+"/"), "127.0.0.2|http|"+strings.TrimPrefix(nginx, "http://")+"|"; !strings.HasPrefix(got, want) {
			t.Errorf("through nginx: got %q, want %q...", got, want)
		}
	}
	for _, ip := range []string{"127.0.0.3", "127.0.0.1"} {
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).Dial("tcp", gwAddr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if len(b) > 0 || err != nil && !strings.Contains(err.Error(), "reset") {
			t.Errorf("direct from %s without a PROXY header: read %q, %v; want the connection closed", ip, b, err)
		}
	}
	waitFor(t, "access log names 127.0.0.2 for each request", func() bool {
		b, _ := os.ReadFile(accessLog)
		return strings.Count(string(b), "127.0.0.2") >= 3
	})
}
