package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestACMEConfig(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	os.WriteFile(root, []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "app.py"), []byte("def application(e, s): pass\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "c.pem"), []byte("x"), 0o644)
	const le = "https://acme-v02.api.letsencrypt.org/directory"
	for _, tc := range []struct {
		name     string
		yaml     string
		want     *ACME
		redirect bool
		problem  string // substring of the problem, "" = none
	}{
		{"none", "listen: {http: ':80'}\n", nil, false, ""},
		{"full", "listen:\n  http: ':80'\n  https: ':443'\n  redirect_https: true\n  tls:\n    acme: {domains: [Example.org, www.example.org], email: ops@example.org, ca: 'https://ca.internal/dir', ca_root: root.pem, storage: certs, renew_interval: 1h}\n",
			&ACME{Domains: []string{"example.org", "www.example.org"}, Email: "ops@example.org", CA: "https://ca.internal/dir",
				CARoot: root, Storage: filepath.Join(dir, "certs"), RenewInterval: time.Hour}, true, ""},
		{"defaults", "listen:\n  https: ':443'\n  tls: {acme: {domains: [example.org], storage: /s}}\n",
			&ACME{Domains: []string{"example.org"}, CA: le, Storage: "/s", RenewInterval: 10 * time.Minute}, false, ""},
		{"both", "listen:\n  https: ':443'\n  tls: {cert: c.pem, key: c.pem, acme: {domains: [example.org]}}\n", nil, false, "tls.cert and tls.key, or tls.acme: set one of the two, not both"},
		{"neither", "listen:\n  https: ':443'\n", nil, false, "or tls.acme with domains"},
		{"no https", "listen:\n  http: ':80'\n  tls: {acme: {domains: [example.org]}}\n", nil, false, "tls.acme needs an HTTPS listener"},
		{"no domains", "listen:\n  https: ':443'\n  tls: {acme: {email: a@b.c}}\n", nil, false, "tls.acme needs domains"},
		{"domains not a list", "listen:\n  https: ':443'\n  tls: {acme: {domains: example.org}}\n", nil, false, "want a list"},
		{"wildcard", "listen:\n  https: ':443'\n  tls: {acme: {domains: ['*.example.org']}}\n", nil, false, "needs the DNS-01 challenge"},
		{"port in domain", "listen:\n  https: ':443'\n  tls: {acme: {domains: ['example.org:443']}}\n", nil, false, "without scheme, port or path"},
		{"bad ca", "listen:\n  https: ':443'\n  tls: {acme: {domains: [example.org], ca: letsencrypt}}\n", nil, false, "want the CA's ACME directory URL"},
		{"missing ca_root", "listen:\n  https: ':443'\n  tls: {acme: {domains: [example.org], ca_root: nope.pem}}\n", nil, false, "nope.pem: no such file"},
		{"zero interval", "listen:\n  https: ':443'\n  tls: {acme: {domains: [example.org], renew_interval: 0s}}\n", nil, false, "renew_interval must be above 0"},
		{"unknown key", "listen:\n  https: ':443'\n  tls: {acme: {domains: [example.org], emial: a@b.c}}\n", nil, false, "email"},
		{"redirect without https", "listen:\n  http: ':80'\n  redirect_https: true\n", nil, false, "redirect_https needs both an HTTP and an HTTPS listener"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "gw.yaml")
			os.WriteFile(file, []byte(tc.yaml+"apps:\n  - path: app.py\n"), 0o644)
			cfg, err := Load(Sources{File: file})
			switch {
			case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
				t.Errorf("err = %v, want %q", err, tc.problem)
			case tc.problem == "" && err != nil:
				t.Errorf("%v", err)
			case tc.problem == "" && (!reflect.DeepEqual(cfg.Listen.TLS.ACME, tc.want) || cfg.Listen.RedirectHTTPS != tc.redirect):
				t.Errorf("got %+v redirect %v, want %+v %v", cfg.Listen.TLS.ACME, cfg.Listen.RedirectHTTPS, tc.want, tc.redirect)
			}
		})
	}
}

func TestACMEFlags(t *testing.T) {
	app := filepath.Join(t.TempDir(), "app.py")
	os.WriteFile(app, []byte("def application(e, s): pass\n"), 0o644)
	cfg, err := Load(Sources{Environ: []string{"GW_HTTPS=:443", "GW_ACME_DOMAIN=a.example,b.example", "GW_ACME_STORAGE=/var/lib/x"}, Args: []string{app}})
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Listen.TLS.ACME
	if a == nil || !reflect.DeepEqual(a.Domains, []string{"a.example", "b.example"}) || a.Storage != "/var/lib/x" {
		t.Errorf("got %+v", a)
	}
}
