package gateway

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/gwhq/gw/gateway/forwarded"
)

// TestApplyProxy: what reaches the runners (RemoteAddr, r.TLS, Host and
// the SERVER_PORT source) for trusted and untrusted peers.
func TestApplyProxy(t *testing.T) {
	p := forwarded.New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, false, forwarded.XForwarded)
	for i, tc := range []struct {
		remote, host string
		h            http.Header
		wantRemote   string
		wantTLS      bool
		wantHost     string
		wantPort     int // the local address SERVER_PORT falls back to; 0 = untouched
		wantHeaders  int
	}{
		{"10.0.0.1:5000", "a.example", http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"https"}},
			"203.0.113.7:0", true, "a.example", 443, 2},
		{"10.0.0.1:5000", "a.example", http.Header{"X-Forwarded-Proto": {"http"}, "X-Forwarded-Port": {"8080"}},
			"10.0.0.1:5000", false, "a.example:8080", 0, 2},
		{"10.0.0.1:5000", "a.example:8443", http.Header{"X-Forwarded-Proto": {"https"}},
			"10.0.0.1:5000", true, "a.example:8443", 0, 1},
		{"10.0.0.1:5000", "inner", http.Header{"X-Forwarded-Host": {"shop.example"}},
			"10.0.0.1:5000", false, "shop.example", 0, 1},
		{"10.0.0.1:5000", "a.example", http.Header{"X-Forwarded-For": {"[2001:db8::7]:4711"}},
			"[2001:db8::7]:4711", false, "a.example", 0, 1},
		{"203.0.113.9:5000", "a.example", http.Header{"X-Forwarded-For": {"1.1.1.1"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Ssl": {"on"}, "Accept": {"*/*"}},
			"203.0.113.9:5000", false, "a.example", 0, 1},
	} {
		r := httptest.NewRequest("GET", "http://"+tc.host+"/", nil)
		r.RemoteAddr, r.Header = tc.remote, tc.h
		r = applyProxy(p, r)
		la, _ := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
		port := 0
		if la != nil {
			port = la.Port
		}
		if r.RemoteAddr != tc.wantRemote || (r.TLS != nil) != tc.wantTLS || r.Host != tc.wantHost || port != tc.wantPort || len(r.Header) != tc.wantHeaders {
			t.Errorf("%d: got %s tls=%v host=%s port=%d headers=%v", i, r.RemoteAddr, r.TLS != nil, r.Host, port, r.Header)
		}
	}
}
