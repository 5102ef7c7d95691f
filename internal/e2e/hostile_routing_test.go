package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/fcgi"
	"github.com/gwhq/gw/internal/gwtest"
)

// echoApp answers every path with the CGI variables the routing tests
// look at (null for an absent one).
const echoApp = `import json
KEYS = ("SCRIPT_NAME", "PATH_INFO", "REQUEST_URI", "QUERY_STRING", "REMOTE_USER",
        "DOCUMENT_ROOT", "MY_PARAM", "UWSGI_FILE")
def application(environ, start_response):
    body = json.dumps({k: environ.get(k) for k in KEYS}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
`

// startAdminRoot serves echoApp twice, mounted at /admin and at /, over
// HTTP, uwsgi and FastCGI.
func startAdminRoot(t *testing.T) (s *gwtest.Server, uwsgiSock, fcgiSock string) {
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	uwsgiSock, fcgiSock = filepath.Join(dir, "uwsgi.sock"), filepath.Join(dir, "fcgi.sock")
	appPath := writeFile(t, "echo.py", echoApp)
	cfg := fmt.Sprintf(`listen: {http: "127.0.0.1:0", uwsgi: "unix:%s", fastcgi: "unix:%s"}
apps:
  - {name: admin, lang: python, path: %[3]s, interpreter: %[4]s, mount: /admin, workers: 1}
  - {name: root, lang: python, path: %[3]s, interpreter: %[4]s, mount: /, workers: 1}
`, uwsgiSock, fcgiSock, appPath, py)
	return gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg)), uwsgiSock, fcgiSock
}

// echoed is what echoApp answered.
type echoed struct {
	ScriptName  *string `json:"SCRIPT_NAME"`
	PathInfo    *string `json:"PATH_INFO"`
	RequestURI  *string `json:"REQUEST_URI"`
	Query       *string `json:"QUERY_STRING"`
	RemoteUser  *string `json:"REMOTE_USER"`
	DocRoot     *string `json:"DOCUMENT_ROOT"`
	MyParam     *string `json:"MY_PARAM"`
	UwsgiFile   *string `json:"UWSGI_FILE"`
	status      int
	unparseable string
}

func str(p *string) string {
	if p == nil {
		return "<absent>"
	}
	return *p
}

func (e echoed) String() string {
	if e.unparseable != "" {
		return fmt.Sprintf("%d %.200q", e.status, e.unparseable)
	}
	return fmt.Sprintf("%d SCRIPT_NAME=%q PATH_INFO=%q REQUEST_URI=%q QUERY_STRING=%q",
		e.status, str(e.ScriptName), str(e.PathInfo), str(e.RequestURI), str(e.Query))
}

// rawGet sends target exactly as given (no client-side cleaning) to base.
func rawGet(t *testing.T, base, target string, header ...string) echoed {
	t.Helper()
	c := gwtest.Dial(t, base)
	c.Send("GET " + target + " HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n" + strings.Join(header, "") + "\r\n")
	resp, body := c.Response("GET")
	e := echoed{status: resp.StatusCode}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &e) != nil {
		e.unparseable = body
	}
	return e
}

// TestDotSegmentsBehindNginx is issue 13 item 1: behind
// `location /admin { deny all; }`, what nginx resolved outside /admin must
// not reach the app mounted at /admin, over proxy_pass, uwsgi_pass and
// fastcgi_pass alike; the app sees the path nginx resolved, and
// REQUEST_URI as the client sent it. A `rewrite ... break` into /admin
// reaches the /admin app.
func TestDotSegmentsBehindNginx(t *testing.T) {
	s, uwsgiSock, fcgiSock := startAdminRoot(t)
	passes := map[string]string{
		"proxy":   "proxy_pass http://" + strings.TrimPrefix(s.URL, "http://") + ";",
		"uwsgi":   "include /etc/nginx/uwsgi_params; uwsgi_pass unix:" + uwsgiSock + ";",
		"fastcgi": "include /etc/nginx/fastcgi_params; fastcgi_pass unix:" + fcgiSock + ";",
	}
	for front, pass := range passes {
		t.Run(front, func(t *testing.T) {
			base := gwtest.StartNginx(t, "", `location /admin { deny all; }
		location /old/ { rewrite ^/old/(.*)$ /admin/$1 break; `+pass+` }
		location / { `+pass+` }`)
			if e := rawGet(t, base, "/admin/y"); e.status != 403 {
				t.Fatalf("/admin/y: %v, want nginx's 403", e)
			}
			for _, target := range []string{"/admin/../x", "/admin/%2e%2e/x", "/admin/..%2fx", "/admin//../x"} {
				e := rawGet(t, base, target)
				if e.status != 200 || str(e.ScriptName) != "" || str(e.PathInfo) != "/x" || str(e.RequestURI) != target {
					t.Errorf("%s: %v; want the / app with PATH_INFO=/x, REQUEST_URI as sent", target, e)
				}
			}
			uri := "/old/p?a=1" // REQUEST_URI is nginx's $request_uri: the client's
			if front == "proxy" {
				uri = "/admin/p?a=1" // proxy_pass sends the rewritten URI
			}
			e := rawGet(t, base, "/old/p?a=1")
			if e.status != 200 || str(e.ScriptName) != "/admin" || str(e.PathInfo) != "/p" || str(e.RequestURI) != uri || str(e.Query) != "a=1" {
				t.Errorf("rewrite into /admin: %v; want the /admin app with PATH_INFO=/p, REQUEST_URI=%s", e, uri)
			}
		})
	}
}

// TestDotSegmentsDirect is issue 13 items 1 and 21 on gw's own HTTP
// listener: dot segments are removed before mount matching (RFC 3986
// §5.2.4, slashes merged as nginx does), and an absolute-form target gives
// REQUEST_URI its path and query, as nginx's $request_uri.
func TestDotSegmentsDirect(t *testing.T) {
	s, _, _ := startAdminRoot(t)
	tests := []struct{ target, scriptName, pathInfo, requestURI string }{
		{"/admin/../x", "", "/x", "/admin/../x"},
		{"/admin/%2e%2e/x", "", "/x", "/admin/%2e%2e/x"},
		{"/admin/..%2fx", "", "/x", "/admin/..%2fx"},
		{"/admin//..", "", "/", "/admin//.."},
		{"/admin/./y/../z", "/admin", "/z", "/admin/./y/../z"},
		{"/x/../admin/y", "/admin", "/y", "/x/../admin/y"},
		{"/../../admin", "/admin", "", "/../../admin"},
		{"http://gw.test/admin/y?z=1", "/admin", "/y", "/admin/y?z=1"},
		{"http://gw.test?z=1", "", "/", "/?z=1"},
	}
	for _, tc := range tests {
		e := rawGet(t, s.URL, tc.target)
		if e.status != 200 || str(e.ScriptName) != tc.scriptName || str(e.PathInfo) != tc.pathInfo || str(e.RequestURI) != tc.requestURI {
			t.Errorf("%s: %v; want SCRIPT_NAME=%q PATH_INFO=%q REQUEST_URI=%q", tc.target, e, tc.scriptName, tc.pathInfo, tc.requestURI)
		}
	}
}

// TestFrontParamsReachApp is issue 13 item 14: REMOTE_USER (nginx
// auth_basic), DOCUMENT_ROOT and a site's own uwsgi_param/fastcgi_param
// reach the app as they came; UWSGI_* never do.
func TestFrontParamsReachApp(t *testing.T) {
	_, uwsgiSock, fcgiSock := startAdminRoot(t)
	htpasswd := writeFile(t, "htpasswd", "alice:{PLAIN}secret\n")
	passes := map[string]string{
		"uwsgi": "include /etc/nginx/uwsgi_params; uwsgi_param REMOTE_USER $remote_user; uwsgi_param MY_PARAM hello; " +
			"uwsgi_param UWSGI_FILE /tmp/evil.py; uwsgi_pass unix:" + uwsgiSock + ";",
		"fastcgi": "include /etc/nginx/fastcgi_params; fastcgi_param MY_PARAM hello; " +
			"fastcgi_param UWSGI_FILE /tmp/evil.py; fastcgi_pass unix:" + fcgiSock + ";",
	}
	for front, pass := range passes {
		t.Run(front, func(t *testing.T) {
			base := gwtest.StartNginx(t, "", `location / { root /srv/gw-docroot; auth_basic "gw"; auth_basic_user_file `+htpasswd+"; "+pass+" }")
			e := rawGet(t, base, "/who", "Authorization: Basic YWxpY2U6c2VjcmV0\r\n") // alice:secret
			if e.status != 200 || str(e.RemoteUser) != "alice" || str(e.DocRoot) != "/srv/gw-docroot" || str(e.MyParam) != "hello" {
				t.Errorf("%v REMOTE_USER=%q DOCUMENT_ROOT=%q MY_PARAM=%q; want alice, /srv/gw-docroot, hello",
					e, str(e.RemoteUser), str(e.DocRoot), str(e.MyParam))
			}
			if e.UwsgiFile != nil {
				t.Errorf("UWSGI_FILE reached the app: %q", *e.UwsgiFile)
			}
			if str(e.PathInfo) != "/who" {
				t.Errorf("PATH_INFO %q: a forwarded param overrode gw's", str(e.PathInfo))
			}
		})
	}
}

// TestShortBodyOverFastCGI is issue 13 item 15: STDIN that ends before
// CONTENT_LENGTH bytes gets 400, not a 200 with an empty body.
func TestShortBodyOverFastCGI(t *testing.T) {
	_, _, fcgiSock := startAdminRoot(t)
	if out := shortStdin(t, fcgiSock, "/x", 10, 3); !strings.HasPrefix(out, "Status: 400") {
		t.Fatalf("truncated STDIN answered %.200q, want Status: 400", out)
	}
}

// TestShortBigBodyToPHP: a truncated STDIN too big to be read whole before
// queueing streams to php-cgi, which waits for the rest forever (trap 6);
// it must get its 400 at once, not hang until the request deadline.
func TestShortBigBodyToPHP(t *testing.T) {
	php := gwtest.RequireInterpreter(t, "php-cgi")
	sock := filepath.Join(t.TempDir(), "fcgi.sock")
	cfg := fmt.Sprintf("listen: {http: \"127.0.0.1:0\", fastcgi: \"unix:%s\"}\napps:\n"+
		"  - {name: php, lang: php, path: %s, interpreter: %s, mount: /php, workers: 1, timeout: 60s}\n",
		sock, suitePath("php/site"), php)
	gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	if out := shortStdin(t, sock, "/php/hash.php", 300000, 150000); !strings.HasPrefix(out, "Status: 400") {
		t.Fatalf("truncated STDIN answered %.200q, want Status: 400", out)
	}
}

// shortStdin sends a FastCGI POST announcing length body bytes, sends
// only sent of them and ends STDIN, and returns the STDOUT it gets.
func shortStdin(t *testing.T, sock, uri string, length, sent int) string {
	t.Helper()
	c := dialUnix(t, sock)
	var enc fcgi.ParamsEncoder
	enc.Reset(fcgi.AppendBeginRequest(nil, 1, fcgi.RoleResponder, false), 1)
	for _, kv := range [][2]string{{"REQUEST_METHOD", "POST"}, {"REQUEST_URI", uri}, {"SERVER_PROTOCOL", "HTTP/1.1"},
		{"CONTENT_LENGTH", fmt.Sprint(length)}, {"CONTENT_TYPE", "application/octet-stream"}} {
		enc.Add(kv[0], kv[1])
	}
	msg, err := enc.Finish()
	if err != nil {
		t.Fatal(err)
	}
	for chunk := make([]byte, 30000); sent > 0; sent -= len(chunk) {
		chunk = chunk[:min(sent, len(chunk))]
		msg = fcgi.AppendRecord(msg, fcgi.TypeStdin, 1, chunk)
	}
	msg = fcgi.AppendRecord(msg, fcgi.TypeStdin, 1, nil) // the end of STDIN, too early
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	var stdout []byte
	rd := fcgi.NewReader(bufio.NewReader(c))
	for {
		h, content, err := rd.Next()
		if err != nil {
			t.Fatalf("no END_REQUEST: %v (stdout so far %.200q)", err, stdout)
		}
		if h.Type == fcgi.TypeStdout {
			stdout = append(stdout, content...)
		}
		if h.Type == fcgi.TypeEndRequest {
			return string(stdout)
		}
	}
}

// TestShortBodyOverUwsgi is issue 13 item 15: a uwsgi peer that half-closes
// before CONTENT_LENGTH body bytes gets 400, not a 200 with an empty body.
func TestShortBodyOverUwsgi(t *testing.T) {
	_, uwsgiSock, _ := startAdminRoot(t)
	c := dialUnix(t, uwsgiSock)
	pkt := uwsgiPacket(0, "REQUEST_METHOD", "POST", "REQUEST_URI", "/x", "PATH_INFO", "/x", "SERVER_PROTOCOL", "HTTP/1.1",
		"CONTENT_LENGTH", "10")
	if _, err := c.Write(append(pkt, "abc"...)); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite() // 7 bytes short, and no more coming
	resp := make([]byte, 0, 512)
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		resp = append(resp, buf[:n]...)
		if err != nil {
			break
		}
	}
	if !strings.HasPrefix(string(resp), "HTTP/1.1 400") {
		t.Fatalf("short body answered %.200q, want HTTP/1.1 400", resp)
	}
}

// dialUnix connects to a unix socket; every read and write is bounded by a
// 10 s deadline, and the connection is closed at cleanup.
func dialUnix(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.UnixConn)
}
