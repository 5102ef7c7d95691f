package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRedirectHTTPS(t *testing.T) {
	for _, tc := range []struct {
		name, host, target, port string
		code                     int
		location                 string
	}{
		{"default port", "example.org", "/a/b?c=d", "", 308, "https://example.org/a/b?c=d"},
		{"host port replaced", "example.org:8080", "/", ":8443", 308, "https://example.org:8443/"},
		{"ipv6", "[::1]:8080", "/x", ":8443", 308, "https://[::1]:8443/x"},
		{"absolute form", "example.org", "http://example.org/p?q", "", 308, "https://example.org/p?q"},
		{"no host", "", "/", "", 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", tc.target, nil)
			r.Host = tc.host
			w := httptest.NewRecorder()
			redirectHTTPS(w, r, tc.port)
			if w.Code != tc.code || w.Header().Get("Location") != tc.location {
				t.Errorf("%d %q, want %d %q", w.Code, w.Header().Get("Location"), tc.code, tc.location)
			}
		})
	}
}

// TestRedirectSparesTLSFromProxy: a request a trusted proxy received over
// TLS (r.TLS set by the forwarded headers) is served, not redirected,
// or a TLS-terminating proxy in front would loop.
func TestRedirectSparesTLSFromProxy(t *testing.T) {
	port := ""
	g := &Gateway{}
	e := httpEntry{g: g, redirect: &port}
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	if w.Code != http.StatusPermanentRedirect {
		t.Fatalf("plain request: %d, want 308", w.Code)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.TLS = forwardedTLS
	w = httptest.NewRecorder()
	func() {
		// An empty Gateway has no route table, so the request panics
		// past the redirect: what counts is that it got past it.
		defer func() { recover() }()
		e.ServeHTTP(w, r)
	}()
	if w.Code == http.StatusPermanentRedirect || w.Header().Get("Location") != "" {
		t.Errorf("request received over TLS by a trusted proxy redirected: %d %q", w.Code, w.Header().Get("Location"))
	}
}
