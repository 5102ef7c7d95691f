package config

import (
	"errors"
	"strings"
	"testing"
)

// TestTyposReportedWithPositions checks that one Load reports every
// problem of a file, each at its line and column, with suggestions.
func TestTyposReportedWithPositions(t *testing.T) {
	f := newFixture(t)
	yaml := `listen:
  htp: ":8080"
  uwsgi: "8000"
limts:
  max_body: 1GiB
apps:
  - name: blog
    path: wsgi.py
    worker: 4
    threads: 0
    lang: pyhton
  - name: blog
    path: config.ru
    mount: /shop
    max_rss: 10XB
    Timeout: 5s
    env:
      DEBUG:
`
	_, err := f.load(yaml, nil)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Load error %v is not Problems", err)
	}
	file := f.dir + "/gw.yaml"
	want := []string{
		file + `:2:3: listen.htp: unknown key; did you mean "http"?`,
		file + `:3:10: listen.uwsgi: address "8000": want host:port, :port or unix:/path; did you mean ":8000"?`,
		file + `:4:1: limts: unknown key; did you mean "limits"?`,
		file + `:9:5: apps[0].worker: unknown key; did you mean "workers"?`,
		file + `:10:14: apps[0].threads: must be at least 1, got 0`,
		file + `:11:11: apps[0].lang: unknown lang "pyhton": want one of python, ruby, perl, php, go, auto; did you mean "python"?`,
		file + `:12:11: apps[1].name: app name "blog" is already used by apps[0] (line 7); names must be unique`,
		file + `:15:14: apps[1].max_rss: size "10XB": unknown unit "XB" (want KiB, MiB, GiB, TiB, KB, MB, GB, TB, K, M, G or T)`,
		file + `:16:5: apps[1].Timeout: unknown key; did you mean "timeout"?`,
		file + `:18:7: apps[1].env.DEBUG: no value; write "" for an empty string`,
	}
	got := strings.Split(ps.Error(), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		environ []string
		args    []string
		want    string // one of the problems, as printed
	}{
		{name: "syntax error", yaml: "listen:\n  http: a: b\n", want: "gw.yaml:2:1: mapping values are not allowed in this context"},
		{name: "key given twice", yaml: "apps:\n  - path: wsgi.py\n    path: x.py\n", want: ":3:5: apps[0].path: key given twice (first on line 2)"},
		{name: "apps empty", yaml: "apps: []\n", want: ":1:1: apps: no apps; want at least one entry with a path"},
		{name: "no apps key", yaml: "listen:\n  http: :80\n", want: "gw.yaml: no apps: add an apps: list, or give APP"},
		{name: "empty file", yaml: "# nothing\n", want: "gw.yaml: no apps"},
		{name: "apps not a list", yaml: "apps:\n  path: wsgi.py\n", want: ":2:3: apps: want a list"},
		{name: "app not a mapping", yaml: "apps:\n  - wsgi.py\n", want: ":2:5: apps[0]: want a mapping of keys, not the value \"wsgi.py\""},
		{name: "scalar wanted", yaml: "apps:\n  - path: [a]\n", want: ":2:11: apps[0].path: want a single value, not a list"},
		{name: "missing path", yaml: "apps:\n  - name: x\n", want: ":2:5: apps[0]: missing path"},
		{name: "path not found", yaml: "apps:\n  - path: nope.py\n", want: "nope.py: no such file or directory"},
		{name: "lang not detected", yaml: "apps:\n  - path: static\n", want: "pass --lang python, ruby, perl, php or go; or set lang: for this app"},
		{name: "lang not detected from APP", args: []string{"static"}, want: "APP: cannot tell the language of"},
		{name: "unknown lang flag", args: []string{"--lang", "cobol", "wsgi.py"}, want: `--lang: unknown lang "cobol"`},
		{name: "workers zero", yaml: "apps:\n  - path: wsgi.py\n    workers: 0\n", want: ":3:14: apps[0].workers: must be at least 1, got 0"},
		{name: "workers not a number", yaml: "apps:\n  - path: wsgi.py\n    workers: four\n", want: `apps[0].workers: "four" is not a whole number`},
		{name: "workers env", environ: []string{"GW_WORKERS=0"}, args: []string{"wsgi.py"}, want: "GW_WORKERS: must be at least 1, got 0"},
		{name: "threads flag", args: []string{"--threads", "0", "wsgi.py"}, want: "--threads: must be at least 1, got 0"},
		{name: "bad interface", args: []string{"--interface", "wsgx", "wsgi.py"}, want: `--interface: interface must be auto, wsgi or asgi, got "wsgx"`},
		{name: "interface on ruby", yaml: "apps:\n  - path: config.ru\n    interface: asgi\n", want: ":3:16: apps[0].interface: interface: asgi is for python apps; this app's lang is ruby"},
		{name: "bad timeout", args: []string{"--timeout", "60", "wsgi.py"}, want: `--timeout: duration "60" has no unit`},
		{name: "zero timeout", args: []string{"--timeout", "0s", "wsgi.py"}, want: "--timeout: must be more than zero"},
		{name: "bad max body", environ: []string{"GW_MAX_BODY=lots"}, args: []string{"wsgi.py"}, want: `GW_MAX_BODY: size "lots"`},
		{name: "bad address", args: []string{"--http", "localhost", "wsgi.py"}, want: `--http: address "localhost"`},
		{name: "same address twice", args: []string{"--http", ":80", "--uwsgi", ":80", "wsgi.py"}, want: "--uwsgi: same address as --http"},
		{name: "same address in one list", yaml: "listen:\n  uwsgi: [\":3031\", \":3032\", \":3031\"]\napps:\n  - path: wsgi.py\n", want: ":2:29: listen.uwsgi[2]: same address as listen.uwsgi[0]"},
		{name: "bad address in a list", yaml: "listen:\n  uwsgi:\n    - \":3031\"\n    - \"3032\"\napps:\n  - path: wsgi.py\n", want: `:4:7: listen.uwsgi[1]: address "3032"`},
		{name: "repeated flag, same address", args: []string{"--uwsgi", ":3031", "--http", ":8000", "--uwsgi", ":8000", "wsgi.py"}, want: "--uwsgi[1]: same address as --http"},
		{name: "listener list of lists", yaml: "listen:\n  http: [[\":80\"]]\napps:\n  - path: wsgi.py\n", want: "listen.http[0]: want a single value, not a list"},
		{name: "control on tcp", args: []string{"--control", "127.0.0.1:9000", "wsgi.py"}, want: `--control: control socket "127.0.0.1:9000": want unix:/path`},
		{name: "control in yaml on tcp", yaml: "listen:\n  control: \":9000\"\napps:\n  - path: wsgi.py\n", want: `:2:12: listen.control: control socket ":9000": want unix:/path`},
		{name: "control same path as uwsgi", args: []string{"--uwsgi", "unix:/tmp/x.sock", "--control", "unix:/tmp/x.sock", "wsgi.py"}, want: "--control: same address as --uwsgi"},
		{name: "https without cert", args: []string{"--https", ":443", "wsgi.py"}, want: "--https: an HTTPS listener needs a certificate and key"},
		{name: "http3 without https", args: []string{"--http3", ":443", "wsgi.py"}, want: "--http3: an HTTP/3 listener needs the HTTPS listener"},
		{name: "http3 on a unix socket", yaml: "listen:\n  http3: unix:/tmp/h3.sock\napps:\n  - path: wsgi.py\n", want: `:2:10: listen.http3: HTTP/3 listener "unix:/tmp/h3.sock": want host:port`},
		{name: "bad http3 address", args: []string{"--http3", "443", "wsgi.py"}, want: `--http3: address "443": want host:port, :port or unix:/path; did you mean ":443"?`},
		{name: "cert missing", args: []string{"--https", ":443", "--cert", "no.pem", "--key", "key.pem", "wsgi.py"}, want: "no.pem: no such file"},
		{name: "bad chmod", yaml: "listen:\n  chmod_socket: rw\napps:\n  - path: wsgi.py\n", want: ":2:17: listen.chmod_socket: mode \"rw\""},
		{name: "bad chown", yaml: "listen:\n  chown_socket: \"a:b:c\"\napps:\n  - path: wsgi.py\n", want: ":2:17: listen.chown_socket: owner \"a:b:c\""},
		{name: "duplicate names", yaml: "apps:\n  - path: wsgi.py\n  - path: wsgi.py\n    mount: /b\n", want: `:3:11: apps[1].path: app name "wsgi" is already used by apps[0] (line 2)`},
		{name: "same host and mount", yaml: "apps:\n  - path: wsgi.py\n    host: a.com\n  - path: config.ru\n    host: A.com:80\n", want: ":4:5: apps[1]: apps[0] and apps[1] both serve a.com at mount /"},
		{name: "same mount written two ways", yaml: "apps:\n  - path: wsgi.py\n    mount: /a\n  - path: config.ru\n    mount: /a/\n", want: ":5:12: apps[1].mount: apps[0] and apps[1] both serve any host at mount /a"},
		{name: "bad mount", yaml: "apps:\n  - path: wsgi.py\n    mount: blog\n", want: `:3:12: apps[0].mount: mount "blog" must start with "/"`},
		{name: "bad host", yaml: "apps:\n  - path: wsgi.py\n    host: http://a\n", want: `apps[0].host: host "http://a"`},
		{name: "static not a dir", yaml: "apps:\n  - path: wsgi.py\n    static: { /s: wsgi.py }\n", want: "apps[0].static./s: " + "%DIR%/wsgi.py is not a directory"},
		{name: "static flag without =", args: []string{"--static", "/s", "wsgi.py"}, want: `--static: static "/s": want URL=DIR`},
		{name: "venv missing", args: []string{"--venv", "/nonexistent/venv", "wsgi.py"}, want: "--venv: /nonexistent/venv: no such file"},
		{name: "interpreter missing", args: []string{"--interpreter", "/nonexistent/python3", "wsgi.py"}, want: "--interpreter: /nonexistent/python3: no such file"},
		{name: "APP and apps", yaml: "apps:\n  - path: wsgi.py\n", args: []string{"config.ru"}, want: `:1:1: apps: the file lists apps and APP "config.ru" was given too`},
		{name: "two APPs", args: []string{"wsgi.py", "config.ru"}, want: "want at most one APP, got 2"},
		{name: "nothing to serve", want: "nothing to serve: give APP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			t.Chdir(f.dir)
			_, err := f.load(tc.yaml, tc.environ, tc.args...)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Load error %v is not Problems", err)
			}
			want := strings.ReplaceAll(tc.want, "%DIR%", f.dir)
			if !strings.Contains(ps.Error(), want) {
				t.Errorf("problems:\n%s\nwant one containing %q", ps.Error(), want)
			}
		})
	}
}

func TestReadError(t *testing.T) {
	_, err := Load(Sources{File: "/nonexistent/gw.yaml"})
	if err == nil || err.Error() != "/nonexistent/gw.yaml: read config: no such file or directory" {
		t.Errorf("Load = %v", err)
	}
}
