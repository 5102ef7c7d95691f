package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

func TestRubySinatra(t *testing.T) {
	ruby := gwtest.RequireInterpreter(t, "ruby")
	s := gwtest.Start(t, "--interpreter", ruby, "--workers", "1", "--mount", "/s", suitePath("ruby/sinatra/config.ru"))
	if code, body := gwtest.Get(t, s.URL+"/s/hello/gw"); code != 200 || body != "Hello, gw" {
		t.Fatalf("%d %q\n%s", code, body, s.Log())
	}
	req := mustReq("POST", s.URL+"/s/form", strings.NewReader("a=1&b=2"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, body := do(t, req); resp.StatusCode != 200 || body != "1,2,/s,/form" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestRubyEnv(t *testing.T) {
	ruby := gwtest.RequireInterpreter(t, "ruby")
	s := gwtest.Start(t, "--interpreter", ruby, "--workers", "1", "--threads", "4", suitePath("ruby/suite.ru"))
	_, body := gwtest.Get(t, s.URL+"/env")
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	for k, v := range map[string]any{"rack.url_scheme": "http", "rack.multithread": true, "PATH_INFO": "/env", "SCRIPT_NAME": "", "QUERY_STRING": ""} {
		if env[k] != v {
			t.Errorf("%s = %#v, want %#v", k, env[k], v)
		}
	}
}

func TestRubyLoadErrorExits1(t *testing.T) {
	code, out := gwtest.Run(t, 30*time.Second, "run", "--interpreter", gwtest.RequireInterpreter(t, "ruby"),
		"--http", "127.0.0.1:0", suitePath("ruby/broken.ru"))
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{"broken.ru", "syntax error"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
