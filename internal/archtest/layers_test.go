// Package archtest holds the test that keeps the import layering that
// docs/ARCHITECTURE.md describes: front ends know nothing of runners, the
// supervisor knows nothing of protocols, codecs know nothing of servers,
// and viper and cobra stay at the edge.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/gwhq/gw/"

// rule: packages matching from may not import (directly or not) anything
// matching any of deny.
type rule struct {
	from string // a package path below the module, or a prefix ending in "/"
	deny []string
	why  string
}

var rules = []rule{
	{"gateway/uwsgi", []string{"runners", "bridge"}, "protocol servers hand an http.Request to a handler; they know no runner"},
	{"gateway/fastcgi", []string{"runners", "bridge"}, "protocol servers hand an http.Request to a handler; they know no runner"},
	{"gateway/h1", []string{"runners", "bridge", "=gateway", "gateway/respbuf", "gateway/cgireq", "internal/config"}, "the HTTP/1.1 server is a plain http.Handler server"},
	{"gateway/cgireq", []string{"runners", "bridge"}, "CGI variables in, http.Request out"},
	{"gateway/respbuf", []string{"runners", "bridge"}, "response buffering wraps a ResponseWriter, whatever serves it"},
	{"gateway/compress", []string{"runners", "bridge", "=gateway", "internal/config"}, "compression wraps a ResponseWriter, whatever serves it; its options come typed"},
	{"gateway/forwarded", []string{"runners", "bridge", "=gateway", "internal/config"}, "proxy headers in, a client address and scheme out: no server, no config"},
	{"gateway/proxyproto", []string{"runners", "bridge", "=gateway", "internal/config"}, "the PROXY protocol codec and listener know no HTTP server and no config"},
	{"gateway/control", []string{"=gateway", "runners", "bridge", "internal/config", "internal/files", "internal/spool"}, "the control socket acts through the Controller it declares: it knows no runner, reads no config or file"},
	{"runners/pool", []string{"gateway", "bridge", "runners/python", "runners/ruby", "runners/perl", "runners/php", "runners/goplugin", "internal/config"}, "the supervisor manages Workers, whatever they speak"},
	{"runners/lifecycle", []string{"gateway", "bridge", "runners/pool", "runners/python", "runners/ruby", "runners/perl", "runners/php", "runners/goplugin", "=runners", "internal/config"},
		"one runner's life, whatever it speaks: the kinds' transports plug into it"},
	{"runners/proc", []string{"gateway", "bridge", "runners/pool", "internal/config"}, "one OS process, nothing more"},
	{"runners/daemon", []string{"gateway", "bridge", "runners/pool", "runners/lifecycle", "=runners", "runners/python", "runners/ruby", "runners/perl", "runners/php", "runners/goplugin"},
		"attached daemons and cron sit on runners/proc alone: nothing about them is in the request path"},
	{"runners/backoff", []string{"gateway", "bridge", "runners/", "=runners", "internal/"}, "a restart delay, nothing more"},
	{"runners/cache", []string{"gateway", "bridge", "runners/", "=runners", "internal/"}, "uWSGI's cache is a data structure: its channel is the runners'"},
	{"internal/cron", []string{"internal/config"}, "schedule parsing is pure: config uses it, not the other way round"},
	{"bridge", []string{"gateway", "runners"}, "the bridge codec and exchange serve any caller"},
	{"internal/", []string{"gateway", "runners", "bridge"}, "shared internals sit below the gateway and the runners (cli, e2e and gwtest excepted)"},
	{"internal/watch", []string{"internal/config"}, "the watcher watches paths under keys; internal/cli decides which paths an app has"},
	{"internal/uwsgiimport", []string{"gateway", "runners", "bridge", "internal/cli"}, "the importer turns a file into YAML text; it knows no server and no command line"},
}

// exempt packages sit above everything by design.
var exempt = map[string]bool{"internal/cli": true, "internal/e2e": true, "internal/gwtest": true, "internal/archtest": true}

func TestImportLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "github.com/gwhq/gw/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		for _, r := range rules {
			if !matches(pkg, r.from) || exempt[pkg] {
				continue
			}
			seen++
			for _, dep := range f[1:] {
				if !strings.HasPrefix(dep, mod) {
					continue
				}
				dep = strings.TrimPrefix(dep, mod)
				for _, d := range r.deny {
					if matches(dep, d) {
						t.Errorf("%s imports %s: %s", pkg, dep, r.why)
					}
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no package matched any rule: is the module path right?")
	}
}

// TestEdgeDependencies: viper only in internal/config, cobra only in
// internal/cli (config is typed once, at the edge).
func TestEdgeDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "github.com/gwhq/gw/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	owners := map[string]string{"github.com/spf13/viper": "internal/config", "github.com/spf13/cobra": "internal/cli"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		for _, imp := range f[1:] {
			if owner, ok := owners[imp]; ok && pkg != owner {
				t.Errorf("%s imports %s; only %s may", pkg, imp, owner)
			}
		}
	}
}

// matches: a package and its children for a plain path, everything
// below a prefix ending in "/", or one package for "=path".
func matches(pkg, pattern string) bool {
	if exact, ok := strings.CutPrefix(pattern, "="); ok {
		return pkg == exact
	}
	if strings.HasSuffix(pattern, "/") {
		return strings.HasPrefix(pkg, pattern)
	}
	return pkg == pattern || strings.HasPrefix(pkg, pattern+"/")
}
