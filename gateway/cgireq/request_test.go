package cgireq

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// nginxGET is what Debian nginx 1.22's uwsgi_params/fastcgi_params send for
// `GET /u/a%20b?x=1` (protocols.md §1.4, §2.4).
func nginxGET() Vars {
	return Vars{
		"QUERY_STRING": "x=1", "REQUEST_METHOD": "GET", "CONTENT_TYPE": "", "CONTENT_LENGTH": "",
		"REQUEST_URI": "/u/a%20b?x=1", "PATH_INFO": "/u/a b", "DOCUMENT_ROOT": "/usr/share/nginx/html",
		"SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_SCHEME": "http", "REMOTE_ADDR": "127.0.0.1",
		"REMOTE_PORT": "50312", "SERVER_ADDR": "127.0.0.1", "SERVER_PORT": "8080", "SERVER_NAME": "_",
		"HTTP_HOST": "example.com", "HTTP_USER_AGENT": "curl/7.88.1", "HTTP_ACCEPT": "*/*",
	}
}

func with(v Vars, kv ...string) Vars {
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "<del>" {
			delete(v, kv[i])
		} else {
			v[kv[i]] = kv[i+1]
		}
	}
	return v
}

func TestRequest(t *testing.T) {
	tests := []struct {
		name  string
		vars  Vars
		check func(t *testing.T, r *http.Request)
	}{
		{"nginx GET", nginxGET(), func(t *testing.T, r *http.Request) {
			eq(t, "Method", r.Method, "GET")
			eq(t, "RequestURI", r.RequestURI, "/u/a%20b?x=1")
			eq(t, "URL.Path", r.URL.Path, "/u/a b")
			eq(t, "URL.RawQuery", r.URL.RawQuery, "x=1")
			eq(t, "Host", r.Host, "example.com")
			eq(t, "RemoteAddr", r.RemoteAddr, "127.0.0.1:50312")
			eq(t, "Proto", r.Proto, "HTTP/1.1")
			eq(t, "User-Agent", r.Header.Get("User-Agent"), "curl/7.88.1")
			if r.TLS != nil || r.ContentLength != 0 || r.Body != http.NoBody {
				t.Errorf("TLS %v, ContentLength %d, Body %T", r.TLS, r.ContentLength, r.Body)
			}
			// Trap 3: the empty CONTENT_* never become headers.
			if _, ok := r.Header["Content-Type"]; ok {
				t.Error("empty CONTENT_TYPE became a header")
			}
			if _, ok := r.Header["Content-Length"]; ok {
				t.Error("empty CONTENT_LENGTH became a header")
			}
			if _, ok := r.Header["Host"]; ok {
				t.Error("Host left in r.Header")
			}
			if la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr); la == nil || la.String() != "127.0.0.1:8080" {
				t.Errorf("LocalAddr = %v", la)
			}
			if p := Params(r.Context()); p["DOCUMENT_ROOT"] != "/usr/share/nginx/html" || p["CONTENT_LENGTH"] != "" {
				t.Errorf("Params = %v", p)
			}
		}},
		{"trap 2 headers dropped", with(nginxGET(), "HTTP_CONTENT_LENGTH", "5", "HTTP_CONTENT_TYPE", "text/plain",
			"HTTP_TRANSFER_ENCODING", "chunked", "HTTP_CONNECTION", "close", "HTTP_PROXY", "http://evil:1",
			"HTTP_EXPECT", "100-continue", "HTTP_TE", "trailers", "HTTP_UPGRADE", "h2c", "HTTP_X_OK", "yes"),
			func(t *testing.T, r *http.Request) {
				for _, h := range []string{"Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Proxy", "Expect", "Te", "Upgrade"} {
					if _, ok := r.Header[h]; ok {
						t.Errorf("%s reached r.Header", h)
					}
				}
				eq(t, "X-Ok", r.Header.Get("X-Ok"), "yes")
				if Params(r.Context())["HTTP_PROXY"] == "" {
					t.Error("Params lost HTTP_PROXY (it keeps everything)")
				}
			}},
		{"lower-case or odd HTTP_ names ignored", with(nginxGET(), "HTTP_x_a", "1", "HTTP_", "2", "HTTP_A.B", "3"),
			func(t *testing.T, r *http.Request) {
				if len(r.Header) != 2 {
					t.Errorf("header = %v", r.Header)
				}
			}},
		{"HTTPS=on", with(nginxGET(), "HTTPS", "on", "REQUEST_SCHEME", "https"), func(t *testing.T, r *http.Request) {
			if r.TLS == nil {
				t.Error("r.TLS nil with HTTPS=on")
			}
		}},
		{"no REQUEST_URI: SCRIPT_NAME+PATH_INFO re-escaped", with(nginxGET(), "REQUEST_URI", "<del>", "SCRIPT_NAME", "/app"),
			func(t *testing.T, r *http.Request) {
				eq(t, "RequestURI", r.RequestURI, "/app/u/a%20b?x=1")
				eq(t, "URL.Path", r.URL.Path, "/app/u/a b")
			}},
		{"no Host: SERVER_NAME:SERVER_PORT", with(nginxGET(), "HTTP_HOST", "<del>", "SERVER_NAME", "srv.example"),
			func(t *testing.T, r *http.Request) { eq(t, "Host", r.Host, "srv.example:8080") }},
		{"absolute-form target wins", with(nginxGET(), "REQUEST_URI", "http://abs.example/p?q", "PATH_INFO", "<del>", "QUERY_STRING", "<del>"),
			func(t *testing.T, r *http.Request) {
				eq(t, "Host", r.Host, "abs.example")
				eq(t, "URL.Path", r.URL.Path, "/p")
				eq(t, "URL.RawQuery", r.URL.RawQuery, "q")
			}},
		// Issue 13 item 1: the path is what nginx resolved, REQUEST_URI
		// what the client sent.
		{"PATH_INFO: dot segments nginx removed", with(nginxGET(), "REQUEST_URI", "/admin/..%2fx?y", "PATH_INFO", "/x", "QUERY_STRING", "y"),
			func(t *testing.T, r *http.Request) {
				eq(t, "URL.Path", r.URL.Path, "/x")
				eq(t, "RequestURI", r.RequestURI, "/admin/..%2fx?y")
				eq(t, "URL.RawQuery", r.URL.RawQuery, "y")
			}},
		{"rewrite ... break: new path and args", with(nginxGET(), "REQUEST_URI", "/old/p?a=1", "PATH_INFO", "/new/p", "QUERY_STRING", "a=1&b=2"),
			func(t *testing.T, r *http.Request) {
				eq(t, "URL.Path", r.URL.Path, "/new/p")
				eq(t, "URL.RawQuery", r.URL.RawQuery, "a=1&b=2")
				eq(t, "RequestURI", r.RequestURI, "/old/p?a=1")
			}},
		{"fastcgi_params: SCRIPT_NAME is the path", with(nginxGET(), "PATH_INFO", "<del>", "SCRIPT_NAME", "/u/a b", "DOCUMENT_URI", "/u/a b"),
			func(t *testing.T, r *http.Request) { eq(t, "URL.Path", r.URL.Path, "/u/a b") }},
		{"fastcgi_split_path_info: SCRIPT_NAME+PATH_INFO", with(nginxGET(), "SCRIPT_NAME", "/index.php", "PATH_INFO", "/x"),
			func(t *testing.T, r *http.Request) { eq(t, "URL.Path", r.URL.Path, "/index.php/x") }},
		{"OPTIONS *", with(nginxGET(), "REQUEST_METHOD", "OPTIONS", "REQUEST_URI", "*", "PATH_INFO", "<del>"),
			func(t *testing.T, r *http.Request) { eq(t, "URL.Path", r.URL.Path, "*") }},
		{"HTTP/2.0 from nginx h2", with(nginxGET(), "SERVER_PROTOCOL", "HTTP/2.0"),
			func(t *testing.T, r *http.Request) {
				if r.ProtoMajor != 2 {
					t.Errorf("ProtoMajor %d", r.ProtoMajor)
				}
			}},
		{"POST with body", with(nginxGET(), "REQUEST_METHOD", "POST", "CONTENT_LENGTH", "5", "CONTENT_TYPE", "text/plain"),
			func(t *testing.T, r *http.Request) {
				eq(t, "Content-Type", r.Header.Get("Content-Type"), "text/plain")
				eq(t, "Content-Length", r.Header.Get("Content-Length"), "5")
				if r.ContentLength != 5 {
					t.Errorf("ContentLength %d", r.ContentLength)
				}
				b, err := io.ReadAll(r.Body)
				eq(t, "body", string(b), "hello")
				if err != nil {
					t.Error(err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stream io.Reader
			if tc.vars["CONTENT_LENGTH"] != "" {
				stream = strings.NewReader("hello, and more")
			}
			r, err := Request(context.Background(), tc.vars, stream)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

func eq(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func TestRequestErrors(t *testing.T) {
	tests := []struct {
		name string
		vars Vars
		want string
	}{
		{"no method", with(nginxGET(), "REQUEST_METHOD", "<del>"), "REQUEST_METHOD"},
		{"method with space", with(nginxGET(), "REQUEST_METHOD", "GET /"), "REQUEST_METHOD"},
		{"bad protocol", with(nginxGET(), "SERVER_PROTOCOL", "SPDY/3"), "SERVER_PROTOCOL"},
		{"CONTENT_LENGTH +5", with(nginxGET(), "CONTENT_LENGTH", "+5"), "CONTENT_LENGTH"},
		{"CONTENT_LENGTH -1", with(nginxGET(), "CONTENT_LENGTH", "-1"), "CONTENT_LENGTH"},
		{"CONTENT_LENGTH huge", with(nginxGET(), "CONTENT_LENGTH", "99999999999999999999"), "CONTENT_LENGTH"},
		{"REQUEST_URI relative", with(nginxGET(), "REQUEST_URI", "no-slash"), "REQUEST_URI"},
		{"CRLF in a header", with(nginxGET(), "HTTP_X_A", "a\r\nSet-Cookie: x"), "HTTP_X_A"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Request(context.Background(), tc.vars, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %s", err, tc.want)
			}
		})
	}
}

// TestVarsAdd is trap 4: nginx ≤1.22 sends one variable per header line.
func TestVarsAdd(t *testing.T) {
	v := Vars{}
	for _, kv := range [][2]string{
		{"HTTP_COOKIE", "a=1"}, {"HTTP_COOKIE", "b=2"}, {"HTTP_X_DUP", "x"}, {"HTTP_X_DUP", "y"},
		{"HTTP_X_DUP", "z"}, {"SCRIPT_FILENAME", "/a"}, {"SCRIPT_FILENAME", "/b"}, {"HTTP_X_E", ""},
	} {
		v.Add(kv[0], kv[1])
	}
	eq(t, "HTTP_COOKIE", v["HTTP_COOKIE"], "a=1; b=2")
	eq(t, "HTTP_X_DUP", v["HTTP_X_DUP"], "x, y, z")
	eq(t, "SCRIPT_FILENAME", v["SCRIPT_FILENAME"], "/b")
	if e, ok := v["HTTP_X_E"]; !ok || e != "" {
		t.Errorf("empty value lost")
	}
	r, err := Request(context.Background(), with(v, "REQUEST_METHOD", "GET", "REQUEST_URI", "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Cookies(); len(c) != 2 || c[1].Value != "2" {
		t.Errorf("cookies = %v", c)
	}
	if h, ok := r.Header["X-E"]; !ok || h[0] != "" {
		t.Errorf("X-E = %q, %v", h, ok)
	}
}

func TestBodyFraming(t *testing.T) {
	read := func(cl string, stream io.Reader) (string, int64, error) {
		r, err := Request(context.Background(), Vars{"REQUEST_METHOD": "POST", "REQUEST_URI": "/", "CONTENT_LENGTH": cl}, stream)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r.Body)
		return string(b), r.ContentLength, err
	}
	tests := []struct {
		name    string
		cl      string
		stream  io.Reader
		body    string
		n       int64
		wantErr error
	}{
		{"exact", "5", strings.NewReader("hello"), "hello", 5, nil},
		{"stream longer than CONTENT_LENGTH", "2", strings.NewReader("hello"), "he", 2, nil},
		{"short: 5 announced, 2 sent", "5", strings.NewReader("he"), "he", 5, ErrShortBody},
		{"CONTENT_LENGTH with no stream", "3", nil, "", 3, ErrShortBody},
		{"CONTENT_LENGTH=0", "0", strings.NewReader("junk"), "", 0, nil},
		{"no CONTENT_LENGTH, no stream", "", nil, "", 0, nil},
		{"no CONTENT_LENGTH, self-delimited stream", "", strings.NewReader("all of it"), "all of it", -1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, n, err := read(tc.cl, tc.stream)
			if body != tc.body || n != tc.n || !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %q, ContentLength %d, %v; want %q, %d, %v", body, n, err, tc.body, tc.n, tc.wantErr)
			}
		})
	}
	r, _ := Request(context.Background(), Vars{"REQUEST_METHOD": "POST", "REQUEST_URI": "/", "CONTENT_LENGTH": "3"}, strings.NewReader("abc"))
	r.Body.Close()
	if _, err := r.Body.Read(make([]byte, 1)); err == nil {
		t.Error("read after Close succeeded")
	}
}
