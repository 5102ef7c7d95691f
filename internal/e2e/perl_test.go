package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

func TestPerlDancer2(t *testing.T) {
	perl := gwtest.RequireInterpreter(t, "perl")
	s := gwtest.Start(t, "--interpreter", perl, "--workers", "1", "--mount", "/d", suitePath("perl/dancer.psgi"))
	if code, body := gwtest.Get(t, s.URL+"/d/hello/gw"); code != 200 || body != "Hello, gw" {
		t.Fatalf("%d %q\n%s", code, body, s.Log())
	}
	req := mustReq("POST", s.URL+"/d/form", strings.NewReader("b=2&a=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, body := do(t, req); resp.StatusCode != 200 || body != "a=1,b=2" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestPerlEnv(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequireInterpreter(t, "perl"), "--workers", "1", suitePath("perl/suite.psgi"))
	_, body := gwtest.Get(t, s.URL+"/env")
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	want := map[string]any{
		"psgi.url_scheme": "http", "psgi.multiprocess": 1.0, "psgi.streaming": 1.0,
		"psgix.input.buffered": 1.0, "PATH_INFO": "/env", "SCRIPT_NAME": "", "PLACK_ENV": nil,
	}
	for k, v := range want {
		if v != nil && env[k] != v {
			t.Errorf("%s = %#v, want %#v", k, env[k], v)
		}
	}
	if v, ok := env["psgi.version"].([]any); !ok || len(v) != 2 || v[0] != 1.0 || v[1] != 1.0 {
		t.Errorf("psgi.version = %v", env["psgi.version"])
	}
	for _, k := range []string{"psgi.multithread", "psgi.nonblocking", "psgi.run_once"} {
		if v, ok := env[k]; !ok || (v != "" && v != 0.0) {
			t.Errorf("%s = %#v, want present and false", k, v)
		}
	}
}

func TestPerlLoadErrorExits1(t *testing.T) {
	code, out := gwtest.Run(t, 30*time.Second, "run", "--interpreter", gwtest.RequireInterpreter(t, "perl"),
		"--http", "127.0.0.1:0", suitePath("perl/broken.psgi"))
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{"broken.psgi", "line", "syntax error"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
