package gateway

import (
	"testing"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/pool"
)

func TestRouteMatch(t *testing.T) {
	apps := []config.App{
		{Name: "root", Mount: "/"},
		{Name: "a", Mount: "/a"},
		{Name: "ab", Mount: "/a/b"},
		{Name: "blog", Mount: "/", Host: "blog.example.com"},
		{Name: "blog-admin", Mount: "/admin", Host: "blog.example.com"},
	}
	tab, err := newTable(apps, nil, make([]*pool.Pool, len(apps)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ host, path, want string }{
		{"x.org", "/", "root"},
		{"x.org", "/a", "a"},
		{"x.org", "/a/", "a"},
		{"x.org", "/ab", "root"},
		{"x.org", "/a/b/c", "ab"},
		{"x.org", "/a/bc", "a"},
		{"blog.example.com", "/a", "blog"},
		{"BLOG.example.com:8080", "/admin/x", "blog-admin"},
		{"blog.example.com", "/administrator", "blog"},
	}
	for _, tc := range tests {
		t.Run(tc.host+tc.path, func(t *testing.T) {
			r := tab.match(tc.host, tc.path)
			if r == nil || r.name != tc.want {
				t.Fatalf("got %v, want %s", r, tc.want)
			}
		})
	}
	t.Run("no match without a root app", func(t *testing.T) {
		tab, _ := newTable(apps[1:3], nil, make([]*pool.Pool, 2))
		if r := tab.match("x", "/c"); r != nil {
			t.Fatalf("got %s", r.name)
		}
	})
	t.Run("duplicate mount refused", func(t *testing.T) {
		if _, err := newTable([]config.App{{Name: "x", Mount: "/m"}, {Name: "y", Mount: "/m/"}}, nil, make([]*pool.Pool, 2)); err == nil {
			t.Fatal("duplicate mount accepted")
		}
	})
}
