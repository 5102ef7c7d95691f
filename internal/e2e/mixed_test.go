package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gwhq/gw/internal/gwtest"
)

// mixedApp is one language's suite mounted in the mixed-hosting config.
type mixedApp struct {
	lang, mount, app string
	interp           string
	hash, env        string // endpoints under the mount
	envWant          string // what the env answer must contain
}

// TestMixedHosting serves every available language from one config on one
// port and hits all mounts concurrently: each request must reach its own
// language's runner (checked through SCRIPT_NAME and the runner's pid set).
func TestMixedHosting(t *testing.T) {
	apps := []mixedApp{
		{"python", "/py", "python/suite.py", gwtest.RequirePython(t), "/hash", "/env", `"SCRIPT_NAME": "/py"`},
		{"perl", "/pl", "perl/suite.psgi", gwtest.RequireInterpreter(t, "perl"), "/hash", "/env", `"SCRIPT_NAME":"/pl"`},
		{"ruby", "/rb", "ruby/suite.ru", gwtest.RequireInterpreter(t, "ruby"), "/hash", "/env", `"SCRIPT_NAME":"/rb"`},
		{"php", "/php", "php/site", gwtest.RequireInterpreter(t, "php-cgi"), "/hash.php", "/", `"SCRIPT_NAME":"\/php\/index.php"`},
	}
	var cfg strings.Builder
	cfg.WriteString("listen: {http: \"127.0.0.1:0\"}\napps:\n")
	for _, a := range apps {
		fmt.Fprintf(&cfg, "  - {name: %s, lang: %s, path: %s, interpreter: %s, mount: %s, workers: 2}\n",
			a.lang, a.lang, suitePath(a.app), a.interp, a.mount)
	}
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg.String()))
	var wg sync.WaitGroup
	for _, a := range apps {
		for c := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					body := fmt.Sprintf("%s-%d-%d", a.lang, c, i)
					resp, got := post(t, s.URL+a.mount+a.hash, strings.NewReader(body))
					if want := fmt.Sprintf("%d %s", len(body), sha(body)); resp.StatusCode != 200 || got != want {
						t.Errorf("%s: %d %q, want %q", a.mount, resp.StatusCode, got, want)
						return
					}
					_, env := gwtest.Get(t, s.URL+a.mount+a.env)
					if !strings.Contains(env, a.envWant) {
						t.Errorf("%s/env reached the wrong app: %.200s", a.mount, env)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	if n := len(s.Children()); n != 2*len(apps) {
		t.Errorf("%d runners, want %d", n, 2*len(apps))
	}
}
