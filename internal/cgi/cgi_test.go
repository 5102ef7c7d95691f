package cgi

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

type mapSink map[string]string

func (m mapSink) Add(name, value string) { m[name] = value }
func (m mapSink) AddHeader(canonical, value string) {
	m[string(AppendName(nil, canonical))] = value
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(r *http.Request)
		target string
		mount  string
		want   map[string]string
		absent []string
	}{
		{
			name: "root mount", target: "/a%20b/c?x=1", mount: "",
			want: map[string]string{"SCRIPT_NAME": "", "PATH_INFO": "/a b/c", "QUERY_STRING": "x=1",
				"REQUEST_URI": "/a%20b/c?x=1", "REQUEST_METHOD": "GET", "SERVER_NAME": "example.com",
				"SERVER_PORT": "80", "HTTP_HOST": "example.com", "SERVER_PROTOCOL": "HTTP/1.1"},
			absent: []string{"CONTENT_LENGTH", "CONTENT_TYPE"},
		},
		{
			name: "prefix mount", target: "/blog/post/1", mount: "/blog",
			want: map[string]string{"SCRIPT_NAME": "/blog", "PATH_INFO": "/post/1"},
		},
		{
			name: "mount itself", target: "/blog", mount: "/blog",
			want: map[string]string{"SCRIPT_NAME": "/blog", "PATH_INFO": ""},
		},
		{
			name: "headers joined and filtered", target: "/",
			setup: func(r *http.Request) {
				r.Header.Add("X-Dup", "a")
				r.Header.Add("X-Dup", "b")
				r.Header.Add("Cookie", "a=1")
				r.Header.Add("Cookie", "b=2")
				r.Header.Set("Connection", "keep-alive")
				r.Header.Set("Proxy", "http://evil")
				r.Header["X_Under"] = []string{"spoof"}
				r.Header.Set("Content-Type", "text/plain")
				r.Header.Set("Content-Length", "3")
				r.ContentLength = 3
				r.Host = "Example.COM:9000"
			},
			want: map[string]string{"HTTP_X_DUP": "a, b", "HTTP_COOKIE": "a=1; b=2", "CONTENT_TYPE": "text/plain",
				"CONTENT_LENGTH": "3", "SERVER_NAME": "example.com", "SERVER_PORT": "9000"},
			absent: []string{"HTTP_CONNECTION", "HTTP_PROXY", "HTTP_X_UNDER", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"},
		},
		{
			name: "absolute-form target", target: "http://abs.example/x/y?q=1",
			want: map[string]string{"REQUEST_URI": "/x/y?q=1", "PATH_INFO": "/x/y", "QUERY_STRING": "q=1"},
		},
		{
			name: "absolute-form without a path", target: "http://abs.example?q=1",
			want: map[string]string{"REQUEST_URI": "/?q=1"},
		},
		{
			name: "front server's params forwarded", target: "/blog/x", mount: "/blog",
			setup: func(r *http.Request) {
				*r = *r.WithContext(WithParams(r.Context(), map[string]string{
					"REMOTE_USER": "alice", "DOCUMENT_ROOT": "/srv", "MY_PARAM": "hello", "HTTPS": "on",
					"SCRIPT_NAME": "/evil", "PATH_INFO": "/evil", "CONTENT_LENGTH": "99", "REQUEST_URI": "/evil",
					"HTTP_CONNECTION": "close", "HTTP_X_ONLY_PARAM": "p", "UWSGI_FILE": "/tmp/x.py",
					"wsgi.input": "x", "rack.hijack": "x", "A B": "x",
				}))
			},
			want: map[string]string{"REMOTE_USER": "alice", "DOCUMENT_ROOT": "/srv", "MY_PARAM": "hello", "HTTPS": "on",
				"SCRIPT_NAME": "/blog", "PATH_INFO": "/x", "REQUEST_URI": "/blog/x"},
			absent: []string{"CONTENT_LENGTH", "HTTP_CONNECTION", "HTTP_X_ONLY_PARAM", "UWSGI_FILE", "wsgi.input", "rack.hijack", "A B"},
		},
		{
			name: "chunked has no length", target: "/",
			setup:  func(r *http.Request) { r.ContentLength = -1; r.TransferEncoding = []string{"chunked"} },
			absent: []string{"CONTENT_LENGTH"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.target, strings.NewReader(""))
			r.Host = "example.com"
			r.Header = http.Header{}
			if tc.setup != nil {
				tc.setup(r)
			}
			got := mapSink{}
			Build(got, r, Mount{ScriptName: tc.mount})
			for k, v := range tc.want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s = %q (present %v), want %q", k, g, ok, v)
				}
			}
			for _, k := range tc.absent {
				if v, ok := got[k]; ok {
					t.Errorf("%s present (%q), want absent", k, v)
				}
			}
		})
	}
}

func TestAppendName(t *testing.T) {
	for in, want := range map[string]string{"User-Agent": "HTTP_USER_AGENT", "X-Request-Id": "HTTP_X_REQUEST_ID", "Dnt": "HTTP_DNT"} {
		if got := string(AppendName(nil, in)); got != want {
			t.Errorf("%s -> %s, want %s", in, got, want)
		}
	}
}

func TestItoa(t *testing.T) {
	for _, n := range []int64{0, 7, 10, 12345, 1 << 40} {
		if got, want := itoa(n), strconv.FormatInt(n, 10); got != want {
			t.Errorf("itoa(%d) = %s", n, got)
		}
	}
}
