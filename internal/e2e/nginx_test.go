package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// frontApp is one language's app behind the protocol listeners.
type frontApp struct {
	name, lang, mount, app, interp string
	hash                           string // body-hash endpoint under the mount
}

func allLangApps(t *testing.T) []frontApp {
	return []frontApp{
		{"py", "python", "/py", "python/suite.py", gwtest.RequirePython(t), "/hash"},
		{"rb", "ruby", "/rb", "ruby/suite.ru", gwtest.RequireInterpreter(t, "ruby"), "/hash"},
		{"pl", "perl", "/pl", "perl/suite.psgi", gwtest.RequireInterpreter(t, "perl"), "/hash"},
		{"php", "php", "/php", "php/site", gwtest.RequireInterpreter(t, "php-cgi"), "/hash.php"},
	}
}

// startAllListeners serves every language over HTTP, uwsgi and FastCGI
// (the latter two on unix sockets, as nginx setups usually have them).
func startAllListeners(t *testing.T, apps []frontApp) (s *gwtest.Server, uwsgiSock, fcgiSock string) {
	dir := t.TempDir()
	uwsgiSock, fcgiSock = filepath.Join(dir, "uwsgi.sock"), filepath.Join(dir, "fcgi.sock")
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "listen: {http: \"127.0.0.1:0\", uwsgi: \"unix:%s\", fastcgi: \"unix:%s\", chmod_socket: \"0600\"}\napps:\n", uwsgiSock, fcgiSock)
	for _, a := range apps {
		fmt.Fprintf(&cfg, "  - {name: %s, lang: %s, path: %s, interpreter: %s, mount: %s, workers: 1}\n",
			a.name, a.lang, suitePath(a.app), a.interp, a.mount)
	}
	return gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg.String())), uwsgiSock, fcgiSock
}

// TestBehindNginx: nginx's stock uwsgi_pass and fastcgi_pass configs reach
// every language's app through gw and get the same answers as plain HTTP,
// a 10 MiB upload included.
func TestBehindNginx(t *testing.T) {
	apps := allLangApps(t)
	s, uwsgiSock, fcgiSock := startAllListeners(t, apps)
	for _, sock := range []string{uwsgiSock, fcgiSock} {
		fi, err := os.Stat(sock)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600 from chmod_socket", sock, fi.Mode().Perm(), err)
		}
	}
	fronts := map[string]string{
		"http":    s.URL,
		"uwsgi":   gwtest.StartNginx(t, "", "location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:"+uwsgiSock+"; }"),
		"fastcgi": gwtest.StartNginx(t, "", "location / { include /etc/nginx/fastcgi_params; fastcgi_pass unix:"+fcgiSock+"; }"),
	}
	big := make([]byte, 10<<20)
	rand.Read(big)
	for proto, base := range fronts {
		for _, a := range apps {
			t.Run(proto+"/"+a.lang, func(t *testing.T) {
				for _, body := range [][]byte{[]byte("hello"), big} {
					resp, got := post(t, base+a.mount+a.hash, bytes.NewReader(body))
					if want := fmt.Sprintf("%d %s", len(body), sha(string(body))); resp.StatusCode != 200 || got != want {
						t.Fatalf("%d-byte upload: %d %q, want %q", len(body), resp.StatusCode, got, want)
					}
				}
				if a.lang == "php" {
					if code, body := gwtest.Get(t, base+"/php/style.css"); code != 200 || body != "body { color: green; }\n" {
						t.Errorf("static file: %d %q", code, body)
					}
					return
				}
				code, env := gwtest.Get(t, base+a.mount+"/x/env?q=1")
				if code != 200 || !strings.Contains(env, `/x/env`) || !strings.Contains(env, `q=1`) {
					t.Errorf("env: %d %.300s", code, env)
				}
			})
		}
	}
}

// TestCgiFcgi drives gw's FastCGI listener with libfcgi's cgi-fcgi, the
// reference client, the way a CGI script's environment would.
func TestCgiFcgi(t *testing.T) {
	bin := gwtest.RequireInterpreter(t, "cgi-fcgi")
	apps := allLangApps(t)[:1]
	_, _, fcgiSock := startAllListeners(t, apps)
	cmd := exec.Command(bin, "-bind", "-connect", fcgiSock)
	cmd.Env = []string{"REQUEST_METHOD=POST", "REQUEST_URI=/py/hash", "SCRIPT_NAME=", "QUERY_STRING=",
		"CONTENT_LENGTH=5", "SERVER_NAME=localhost", "SERVER_PORT=80", "SERVER_PROTOCOL=HTTP/1.1", "REMOTE_ADDR=127.0.0.1"}
	cmd.Stdin = strings.NewReader("hello")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "5 "+sha("hello")) || !strings.HasPrefix(string(out), "Status: 200") {
		t.Fatalf("cgi-fcgi: %v\n%s", err, out)
	}
}

// uwsgiPacket builds a uwsgi request packet (protocols.md §1.1).
func uwsgiPacket(m1 byte, vars ...string) []byte {
	var block []byte
	for _, s := range vars {
		block = append(block, byte(len(s)), byte(len(s)>>8))
		block = append(block, s...)
	}
	return append([]byte{m1, byte(len(block)), byte(len(block) >> 8), 0}, block...)
}

// TestUwsgiNeverLoadsClientCode: uWSGI 2.0 loads the file a UWSGI_FILE var
// names (trap 1). gw must ignore such vars (and say so in its log) and refuse
// management modifiers such as 22, raw code eval.
func TestUwsgiNeverLoadsClientCode(t *testing.T) {
	apps := allLangApps(t)[:1]
	s, uwsgiSock, _ := startAllListeners(t, apps)
	marker := filepath.Join(t.TempDir(), "pwned")
	evil := writeFile(t, "evil.py", fmt.Sprintf("open(%q, 'w').write('x')\ndef application(e, s):\n    s('200 OK', [])\n    return [b'evil']\n", marker))
	roundTrip := func(pkt []byte) string {
		c, err := net.Dial("unix", uwsgiSock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(pkt)
		var out bytes.Buffer
		out.ReadFrom(c)
		return out.String()
	}
	get := []string{"REQUEST_METHOD", "GET", "REQUEST_URI", "/py/pid", "PATH_INFO", "/py/pid", "QUERY_STRING", "",
		"SERVER_NAME", "localhost", "SERVER_PORT", "80", "SERVER_PROTOCOL", "HTTP/1.1"}
	withEvil := append(append([]string(nil), get...), "UWSGI_FILE", evil, "UWSGI_SCRIPT", "evil", "UWSGI_CHDIR", "/", "UWSGI_PYHOME", "/tmp")
	out := roundTrip(uwsgiPacket(0, withEvil...))
	if !strings.HasPrefix(out, "HTTP/1.1 200") || strings.Contains(out, "evil") {
		t.Errorf("request with UWSGI_FILE: %q", out)
	}
	for _, m1 := range []byte{22, 10, 97, 98, 111, 173} {
		pkt := uwsgiPacket(m1, append([]string{"UWSGI_FILE", evil}, get...)...)
		pkt[3] = 0 // modifier2 0: Python for m1=22
		if out := roundTrip(pkt); out != "" {
			t.Errorf("modifier1 %d answered %q, want a refusal (closed connection)", m1, out)
		}
	}
	for _, m1 := range []byte{0, 5, 7, 9, 14} {
		if out := roundTrip(uwsgiPacket(m1, get...)); !strings.HasPrefix(out, "HTTP/1.1 200") {
			t.Errorf("request modifier1 %d: %q", m1, out)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a client-named file was executed")
	}
	for _, want := range []string{"ignored UWSGI_FILE", "refused modifier1 22"} {
		if !strings.Contains(s.Log(), want) {
			t.Errorf("log lacks %q:\n%s", want, s.Log())
		}
	}
}

// TestUnixSocketListeners: a stale socket file from a dead process is
// replaced; a socket a live gw serves is never stolen.
func TestUnixSocketListeners(t *testing.T) {
	py := gwtest.RequirePython(t)
	sock := filepath.Join(t.TempDir(), "gw.sock")
	// A stale socket: bound, then the "process" went away without unlinking.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	s := gwtest.Start(t, "--interpreter", py, "--workers", "1", "--uwsgi", "unix:"+sock, "--http", "127.0.0.1:0", app("hello.py"))
	if code, body := gwtest.Get(t, s.URL+"/"); code != 200 || body != "Hello, World!" {
		t.Fatalf("%d %q", code, body)
	}
	code, out := gwtest.Run(t, 30*time.Second, "run", "--interpreter", py, "--workers", "1", "--uwsgi", "unix:"+sock,
		"--http", "127.0.0.1:0", app("hello.py"))
	if code != 1 || !strings.Contains(out, "another process is serving on it") {
		t.Fatalf("second gw on a live socket: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the live gw's socket was removed: %v", err)
	}
}
