package gateway

import (
	"net/http/httptest"
	"testing"

	"github.com/gwhq/gw/internal/cgi"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/pool"
)

func TestCleanPath(t *testing.T) {
	// The merged column is what nginx 1.22 made of each as $uri.
	tests := []struct{ in, merged, kept string }{
		{"/", "/", "/"},
		{"/a/b", "/a/b", "/a/b"},
		{"/admin/../x", "/x", "/x"},
		{"/admin//..", "/", "/admin/"},
		{"//admin/x", "/admin/x", "//admin/x"},
		{"/x/../admin/y", "/admin/y", "/admin/y"},
		{"/a/b/..", "/a/", "/a/"},
		{"/a/./b/.", "/a/b/", "/a/b/"},
		{"/a/", "/a/", "/a/"},
		{"/a//b/", "/a/b/", "/a//b/"},
		{"/../../x", "/x", "/x"},
		{"/..", "/", "/"},
		{"/.well-known/x", "/.well-known/x", "/.well-known/x"},
		{"/a/..b/.../c.", "/a/..b/.../c.", "/a/..b/.../c."},
		{"*", "*", "*"},
		{"", "", ""},
	}
	for _, tc := range tests {
		if got := cleanPath(tc.in, true); got != tc.merged {
			t.Errorf("cleanPath(%q, merge) = %q, want %q", tc.in, got, tc.merged)
		}
		if got := cleanPath(tc.in, false); got != tc.kept {
			t.Errorf("cleanPath(%q, keep slashes) = %q, want %q", tc.in, got, tc.kept)
		}
	}
}

func TestRouteCleansPath(t *testing.T) {
	apps := []config.App{{Name: "root", Mount: "/"}, {Name: "admin", Mount: "/admin"}}
	tab, err := newTable(apps, nil, make([]*pool.Pool, len(apps)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		target, app, path string
		cgi               bool // came over uwsgi/FastCGI
	}{
		{"/admin/x", "admin", "/admin/x", false},
		{"/admin/../x", "root", "/x", false},
		{"/admin/%2e%2e/x", "root", "/x", false},
		{"/admin/..%2fx", "root", "/x", false},
		{"/admin//..", "root", "/", false},
		{"/x/../admin/y?q=1", "admin", "/admin/y", false},
		{"//admin/x", "admin", "/admin/x", false},
		{"http://h?q", "root", "/", false},
		{"//admin/x", "root", "//admin/x", true}, // nginx kept the slashes: so do we
		{"/admin/../x", "root", "/x", true},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", tc.target, nil)
		if tc.cgi {
			r = r.WithContext(cgi.WithParams(r.Context(), map[string]string{}))
		}
		orig := r.URL.Path
		r2, rt := tab.route(r)
		if rt == nil || rt.name != tc.app || r2.URL.Path != tc.path {
			t.Errorf("%s (cgi %v): app %v, path %q; want %s, %q", tc.target, tc.cgi, rt, r2.URL.Path, tc.app, tc.path)
		}
		if r.URL.Path != orig || r2.RequestURI != tc.target {
			t.Errorf("%s: the original request changed (%q) or RequestURI lost (%q)", tc.target, r.URL.Path, r2.RequestURI)
		}
	}
}
