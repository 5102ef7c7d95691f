package sdk

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/gwhq/gw/proto/pluginpb"
)

func discardLog() hclog.Logger { return hclog.NewNullLogger() }

func TestNewRequest(t *testing.T) {
	body := io.NopCloser(nil)
	for _, tc := range []struct {
		name  string
		head  *pluginpb.RequestHead
		body  io.ReadCloser
		check func(t *testing.T, r *http.Request)
	}{
		{"path and query", &pluginpb.RequestHead{Method: "GET", Target: []byte("/a%20b/c?x=1&y"), Proto: "HTTP/1.1", Host: "h.test"}, nil,
			func(t *testing.T, r *http.Request) {
				if r.URL.Path != "/a b/c" || r.URL.RawPath != "" || r.URL.RawQuery != "x=1&y" || r.RequestURI != "/a%20b/c?x=1&y" ||
					r.Host != "h.test" || r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.Body != http.NoBody || r.TLS != nil {
					t.Errorf("%+v", r)
				}
			}},
		{"OPTIONS *", &pluginpb.RequestHead{Method: "OPTIONS", Target: []byte("*"), Proto: "HTTP/1.1"}, nil,
			func(t *testing.T, r *http.Request) {
				if r.URL.Path != "*" {
					t.Errorf("path %q", r.URL.Path)
				}
			}},
		{"CONNECT authority", &pluginpb.RequestHead{Method: "CONNECT", Target: []byte("example.com:443"), Proto: "HTTP/1.1"}, nil,
			func(t *testing.T, r *http.Request) {
				if r.URL.Host != "example.com:443" || r.URL.Scheme != "" {
					t.Errorf("url %#v", r.URL)
				}
			}},
		{"https, HTTP/2, body of unknown length", &pluginpb.RequestHead{Method: "POST", Target: []byte("/"), Proto: "HTTP/2.0", Scheme: "https", ContentLength: -1,
			Headers: []*pluginpb.Header{{Name: []byte("x-dup"), Value: []byte("1")}, {Name: []byte("X-Dup"), Value: []byte("2")}}}, body,
			func(t *testing.T, r *http.Request) {
				if r.TLS == nil || r.ProtoMajor != 2 || r.ContentLength != -1 || len(r.TransferEncoding) != 0 || r.Body != body {
					t.Errorf("%+v", r)
				}
				if got := r.Header.Values("X-Dup"); len(got) != 2 || got[0] != "1" || got[1] != "2" {
					t.Errorf("X-Dup %q", got)
				}
			}},
		{"empty body is NoBody", &pluginpb.RequestHead{Method: "POST", Target: []byte("/"), Proto: "HTTP/1.1"}, body,
			func(t *testing.T, r *http.Request) {
				if r.Body != http.NoBody {
					t.Errorf("body %v", r.Body)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := newRequest(context.Background(), tc.head, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
	if _, err := newRequest(context.Background(), &pluginpb.RequestHead{Method: "GET", Target: []byte("no-slash")}, nil); err == nil {
		t.Error("a target that is not a request-target parsed")
	}
}
