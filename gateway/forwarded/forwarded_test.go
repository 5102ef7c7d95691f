package forwarded

import (
	"net/http"
	"net/netip"
	"testing"
)

func policy(mode Mode) *Policy {
	return New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("127.0.0.1/32")}, true, mode)
}

func TestRead(t *testing.T) {
	ap := netip.MustParseAddrPort
	for i, tc := range []struct {
		name string
		mode Mode
		h    http.Header
		want Result
	}{
		{"one proxy", XForwarded, http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"https"}},
			Result{Client: ap("203.0.113.7:0"), Scheme: "https"}},
		{"trusted hops skipped", XForwarded, http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.7, 10.1.1.1, 10.2.2.2"}},
			Result{Client: ap("203.0.113.7:0")}},
		{"spoofed left of the client", XForwarded, http.Header{"X-Forwarded-For": {"1.2.3.4", "203.0.113.7,10.1.1.1"}},
			Result{Client: ap("203.0.113.7:0")}},
		{"all trusted: the leftmost", XForwarded, http.Header{"X-Forwarded-For": {"10.9.9.9, 10.1.1.1"}},
			Result{Client: ap("10.9.9.9:0")}},
		{"garbage stops at the hop before", XForwarded, http.Header{"X-Forwarded-For": {"<script>, 10.1.1.1"}},
			Result{Client: ap("10.1.1.1:0")}},
		{"garbage first", XForwarded, http.Header{"X-Forwarded-For": {"unknown"}}, Result{}},
		{"ipv6", XForwarded, http.Header{"X-Forwarded-For": {"2001:db8::7, fd00::1"}}, Result{Client: ap("[2001:db8::7]:0")}},
		{"ipv6 bracketed with port", XForwarded, http.Header{"X-Forwarded-For": {"[2001:db8::7]:4711"}}, Result{Client: ap("[2001:db8::7]:4711")}},
		{"ipv4 with port", XForwarded, http.Header{"X-Forwarded-For": {"203.0.113.7:4711"}}, Result{Client: ap("203.0.113.7:4711")}},
		{"v4-mapped", XForwarded, http.Header{"X-Forwarded-For": {"::ffff:203.0.113.7, ::ffff:10.0.0.1"}}, Result{Client: ap("203.0.113.7:0")}},
		{"empty elements", XForwarded, http.Header{"X-Forwarded-For": {" , 203.0.113.7 ,"}}, Result{Client: ap("203.0.113.7:0")}},
		{"proto rightmost", XForwarded, http.Header{"X-Forwarded-Proto": {"http, HTTPS"}}, Result{Scheme: "https"}},
		{"proto unknown", XForwarded, http.Header{"X-Forwarded-Proto": {"gopher"}}, Result{}},
		{"host and port", XForwarded, http.Header{"X-Forwarded-Host": {"shop.example"}, "X-Forwarded-Port": {"8443"}},
			Result{Host: "shop.example", Port: 8443}},
		{"host with port", XForwarded, http.Header{"X-Forwarded-Host": {"shop.example:8443"}}, Result{Host: "shop.example:8443", Port: 8443}},
		{"host ipv6", XForwarded, http.Header{"X-Forwarded-Host": {"[2001:db8::1]:8080"}}, Result{Host: "[2001:db8::1]:8080", Port: 8080}},
		{"host with a path", XForwarded, http.Header{"X-Forwarded-Host": {"evil.example/x"}}, Result{}},
		{"host with userinfo", XForwarded, http.Header{"X-Forwarded-Host": {"a@evil.example"}}, Result{}},
		{"bad port", XForwarded, http.Header{"X-Forwarded-Port": {"99999"}}, Result{}},
		{"x-forwarded mode ignores Forwarded", XForwarded, http.Header{"Forwarded": {"for=203.0.113.7"}}, Result{}},

		{"forwarded", Forwarded, http.Header{"Forwarded": {"for=203.0.113.7;proto=https;host=shop.example"}},
			Result{Client: ap("203.0.113.7:0"), Scheme: "https", Host: "shop.example"}},
		{"forwarded ipv6 quoted with port", Forwarded, http.Header{"Forwarded": {`for="[2001:db8:cafe::17]:4711"`}},
			Result{Client: ap("[2001:db8:cafe::17]:4711")}},
		{"forwarded case and spaces", Forwarded, http.Header{"Forwarded": {`For=203.0.113.7 ; Proto=HTTPS`}},
			Result{Client: ap("203.0.113.7:0"), Scheme: "https"}},
		{"forwarded chain", Forwarded, http.Header{"Forwarded": {"for=1.2.3.4;proto=http", "for=203.0.113.7;proto=https;host=a.example, for=10.1.1.1;proto=http;host=inner"}},
			Result{Client: ap("203.0.113.7:0"), Scheme: "https", Host: "a.example"}},
		{"forwarded obfuscated", Forwarded, http.Header{"Forwarded": {"for=_hidden;proto=https, for=10.1.1.1"}},
			Result{Client: ap("10.1.1.1:0"), Scheme: "https"}},
		{"forwarded unknown", Forwarded, http.Header{"Forwarded": {"for=unknown;proto=https"}}, Result{Scheme: "https"}},
		{"forwarded obfuscated port", Forwarded, http.Header{"Forwarded": {`for="203.0.113.7:_abc"`}}, Result{}},
		{"forwarded unbracketed ipv6", Forwarded, http.Header{"Forwarded": {`for="2001:db8::1"`}}, Result{}},
		{"forwarded quoted escapes", Forwarded, http.Header{"Forwarded": {`for="203.0.113.7";host="a\.example"`}},
			Result{Client: ap("203.0.113.7:0"), Host: "a.example"}},
		{"forwarded comma in quotes", Forwarded, http.Header{"Forwarded": {`for=203.0.113.7;ext="a,b"`}}, Result{Client: ap("203.0.113.7:0")}},
		{"forwarded malformed", Forwarded, http.Header{"Forwarded": {`for="203.0.113.7`}}, Result{}},
		{"forwarded no value", Forwarded, http.Header{"Forwarded": {`for=;proto=https`}}, Result{}},
		{"forwarded mode ignores XFF", Forwarded, http.Header{"X-Forwarded-For": {"203.0.113.7"}}, Result{}},
	} {
		if got := policy(tc.mode).Read(tc.h); got != tc.want {
			t.Errorf("%d %s: got %+v, want %+v", i, tc.name, got, tc.want)
		}
	}
}

func TestTrustsPeer(t *testing.T) {
	p := policy(XForwarded)
	for _, tc := range []struct {
		remote string
		want   bool
	}{
		{"10.1.2.3:5555", true}, {"127.0.0.1:1", true}, {"127.0.0.2:1", false}, {"[fd00::5]:80", true},
		{"[::ffff:10.0.0.1]:80", true}, {"203.0.113.7:80", false}, {"", true}, {"@", true},
	} {
		if got := p.TrustsPeer(tc.remote); got != tc.want {
			t.Errorf("TrustsPeer(%q) = %v", tc.remote, got)
		}
	}
	if New(nil, false, XForwarded) != nil {
		t.Error("a policy that trusts nobody must be nil")
	}
	if New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, false, XForwarded).TrustsPeer("") {
		t.Error("a unix peer trusted without unix")
	}
}

func TestStrip(t *testing.T) {
	h := http.Header{"X-Forwarded-For": {"1.2.3.4"}, "Forwarded": {"for=1.2.3.4"}, "X-Real-Ip": {"1.2.3.4"},
		"X-Forwarded-Ssl": {"on"}, "X-Forwarded-Host": {"evil"}, "Accept": {"*/*"}}
	Strip(h)
	if len(h) != 1 || h.Get("Accept") == "" {
		t.Errorf("after Strip: %v", h)
	}
}

// BenchmarkRead is the cost per request behind one nginx.
func BenchmarkRead(b *testing.B) {
	p := policy(XForwarded)
	h := http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"https"}}
	b.ReportAllocs()
	for b.Loop() {
		p.Read(h)
	}
}
