package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestProxyConfig(t *testing.T) {
	for i, tc := range []struct {
		yaml    string
		want    Proxy
		problem string // substring of the problem, "" = none
	}{
		{"", Proxy{Headers: "x-forwarded"}, ""},
		{"proxy:\n  trusted: [10.0.0.0/8, 127.0.0.1, '::1', unix]\n  headers: forwarded\n",
			Proxy{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
				TrustUnix: true, Headers: "forwarded"}, ""},
		{"proxy:\n  trusted: ['*']\n", Proxy{Trusted: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}, TrustUnix: true, Headers: "x-forwarded"}, ""},
		{"proxy:\n  trusted: [10.0.0.0/8, 10.0.0.300/8]\n", Proxy{}, "2:25: proxy.trusted[1]: trusted proxy \"10.0.0.300/8\" is not a CIDR"},
		{"proxy:\n  trusted: [10.0.0.1/8]\n", Proxy{}, "host bits set; did you mean 10.0.0.0/8"},
		{"proxy:\n  trusted: [proxy.example]\n", Proxy{}, "host names are not looked up"},
		{"proxy:\n  trusted: 10.0.0.0/8\n", Proxy{}, "want a list"},
		{"proxy:\n  headers: x-real-ip\n", Proxy{}, "proxy headers must be x-forwarded or forwarded"},
		{"listen:\n  proxy_protocol: true\n", Proxy{}, "the PROXY protocol needs proxy.trusted"},
	} {
		dir := t.TempDir()
		file := filepath.Join(dir, "gw.yaml")
		os.WriteFile(filepath.Join(dir, "app.py"), []byte("def application(e, s): pass\n"), 0o644)
		os.WriteFile(file, []byte(tc.yaml+"apps:\n  - path: app.py\n"), 0o644)
		cfg, err := Load(Sources{File: file})
		switch {
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
			t.Errorf("%d: err = %v, want %q", i, err, tc.problem)
		case tc.problem == "" && err != nil:
			t.Errorf("%d: %v", i, err)
		case tc.problem == "" && !reflect.DeepEqual(cfg.Proxy, tc.want):
			t.Errorf("%d: got %+v, want %+v", i, cfg.Proxy, tc.want)
		}
	}
}

func TestProxyFlags(t *testing.T) {
	app := filepath.Join(t.TempDir(), "app.py")
	os.WriteFile(app, []byte("def application(e, s): pass\n"), 0o644)
	cfg, err := Load(Sources{Environ: []string{"GW_TRUSTED_PROXY=10.0.0.0/8,192.168.1.1", "GW_PROXY_PROTOCOL=true"}, Args: []string{app}})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.1/32")}
	if !reflect.DeepEqual(cfg.Proxy.Trusted, want) || !cfg.Listen.ProxyProtocol {
		t.Errorf("got %+v, proxy_protocol %v", cfg.Proxy, cfg.Listen.ProxyProtocol)
	}
}
