package config

import (
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// fixture is a directory holding the files the test configs point at.
type fixture struct {
	t   *testing.T
	dir string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	f := fixture{t: t, dir: t.TempDir()}
	f.write("wsgi.py", "application = None\n")
	f.write("config.ru", "run App\n")
	f.write("site/index.php", "<?php\n")
	f.write("static/a.css", "")
	f.write("cert.pem", "")
	f.write("key.pem", "")
	return f
}

// write creates name under the fixture directory and returns its path.
func (f fixture) write(name, body string) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// load runs Load with flags parsed as `gw run` would and the YAML (if not
// "") written to gw.yaml in the fixture directory.
func (f fixture) load(yaml string, environ []string, args ...string) (*Config, error) {
	f.t.Helper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		f.t.Fatalf("parse flags %q: %v", args, err)
	}
	src := Sources{Flags: fs, Environ: environ, Args: fs.Args()}
	if yaml != "" {
		src.File = f.write("gw.yaml", yaml)
	}
	return Load(src)
}

// mustLoad is load for configs that must be valid.
func (f fixture) mustLoad(yaml string, environ []string, args ...string) *Config {
	f.t.Helper()
	cfg, err := f.load(yaml, environ, args...)
	if err != nil {
		f.t.Fatalf("Load: %v", err)
	}
	return cfg
}

func TestLoadDefaults(t *testing.T) {
	f := newFixture(t)
	cfg := f.mustLoad("", nil, filepath.Join(f.dir, "wsgi.py"))
	want := Config{
		Listen: Listen{HTTP: Addr{"tcp", ":8080"}, ChmodSocket: 0o660},
		Limits: Limits{
			MaxHeader: 64 << 10, MaxBody: 1 << 30,
			ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 75 * time.Second, ShutdownTimeout: 30 * time.Second,
			ResponseBuffer: 128 << 10, ResponseTempMax: 1 << 30, SendTimeout: time.Minute,
			BodyBufferSize: 64 << 10, BodyTimeout: time.Minute, LingeringTime: 30 * time.Second, LingeringTimeout: 5 * time.Second,
			WebSocketMaxMessage: 1 << 20, WebSocketPing: 30 * time.Second, WebSocketCompression: WSCompressionOff,
		},
	}
	if !cfg.Listen.Equal(want.Listen) || cfg.Limits != want.Limits || cfg.File != "" || cfg.User != "" || cfg.Group != "" {
		t.Errorf("got %+v %+v, want %+v %+v", cfg.Listen, cfg.Limits, want.Listen, want.Limits)
	}
	if len(cfg.Apps) != 1 {
		t.Fatalf("got %d apps, want 1", len(cfg.Apps))
	}
	a := cfg.Apps[0]
	if a.Name != "wsgi" || a.Lang != LangPython || a.Path != filepath.Join(f.dir, "wsgi.py") || a.Mount != "/" ||
		a.Workers != runtime.NumCPU() || a.Threads != 0 || a.Interface != InterfaceAuto || a.Timeout != time.Minute || a.QueueWait != time.Minute ||
		a.QueueSize != 1024 || a.MaxRequests != 0 || a.MaxRSS != 0 || a.Host != "" || a.Dir != "" || !a.ResponseBuffering ||
		!a.RequestBuffering {
		t.Errorf("app defaults wrong: %+v", a)
	}
}

func TestLoadAppFromFlags(t *testing.T) {
	f := newFixture(t)
	t.Chdir(f.dir) // relative paths from flags are taken from the working directory
	cfg := f.mustLoad("", nil,
		"--lang", "python", "--name", "blog", "--workers", "3", "--threads", "2", "--timeout", "5s",
		"--max-requests", "100", "--max-rss", "512MiB", "--queue-size", "10", "--callable", "app",
		"--mount", "/blog/", "--dir", f.dir, "--venv", f.dir, "--interpreter", "python3",
		"--static", "/blog/static="+filepath.Join(f.dir, "static"), "--static", "/Favicon/=static/",
		"--https", ":8443", "--http3", ":8443", "--cert", filepath.Join(f.dir, "cert.pem"), "--key", filepath.Join(f.dir, "key.pem"),
		"--uwsgi", "unix:/tmp/gw.sock", "--fastcgi", "127.0.0.1:9000", "--stats", "127.0.0.1:9191", "--control", "unix:/tmp/gw-ctl.sock",
		"--chmod-socket", "0600", "--max-header", "8KiB", "--max-body", "10MB",
		"--read-header-timeout", "1s", "--idle-timeout", "2s", "--shutdown-timeout", "3s",
		"--response-buffer", "1MiB", "--response-temp-max", "0", "--send-timeout", "0", "--response-buffering=false",
		"--body-buffer-size", "1MiB", "--body-timeout", "4s", "--lingering-time", "0s", "--lingering-timeout", "6s",
		"--request-buffering=false",
		"--uid", "www-data", "--gid", "www-data",
		"blog.wsgi:application")
	a := cfg.Apps[0]
	wantStatic := map[string]string{"/blog/static": filepath.Join(f.dir, "static"), "/Favicon": filepath.Join(f.dir, "static")}
	if a.Name != "blog" || a.Path != "blog.wsgi:application" || a.Workers != 3 || a.Threads != 2 ||
		a.Timeout != 5*time.Second || a.QueueWait != 5*time.Second || a.MaxRequests != 100 || a.MaxRSS != 512<<20 ||
		a.QueueSize != 10 || a.Callable != "app" || a.Mount != "/blog" || a.Dir != f.dir || a.Venv != f.dir ||
		a.Interpreter != "python3" || a.ResponseBuffering || a.RequestBuffering {
		t.Errorf("app: %+v", a)
	}
	if !maps.Equal(a.Static, wantStatic) {
		t.Errorf("static = %v, want %v", a.Static, wantStatic)
	}
	l := cfg.Listen
	if l.HTTP != (Addr{}) || l.HTTPS != (Addr{"tcp", ":8443"}) || l.HTTP3 != (Addr{"udp", ":8443"}) || l.UWSGI != (Addr{"unix", "/tmp/gw.sock"}) ||
		l.FastCGI != (Addr{"tcp", "127.0.0.1:9000"}) || l.Stats != (Addr{"tcp", "127.0.0.1:9191"}) || l.Control != (Addr{"unix", "/tmp/gw-ctl.sock"}) || l.ChmodSocket != 0o600 ||
		l.TLS.Cert != filepath.Join(f.dir, "cert.pem") || l.TLS.Key != filepath.Join(f.dir, "key.pem") {
		t.Errorf("listen: %+v", l)
	}
	if cfg.Limits != (Limits{MaxHeader: 8 << 10, MaxBody: 10_000_000, ReadHeaderTimeout: time.Second,
		IdleTimeout: 2 * time.Second, ShutdownTimeout: 3 * time.Second, ResponseBuffer: 1 << 20,
		BodyBufferSize: 1 << 20, BodyTimeout: 4 * time.Second, LingeringTimeout: 6 * time.Second,
		WebSocketMaxMessage: 1 << 20, WebSocketPing: 30 * time.Second, WebSocketCompression: WSCompressionOff}) {
		t.Errorf("limits: %+v", cfg.Limits)
	}
	if cfg.User != "www-data" || cfg.Group != "www-data" {
		t.Errorf("user/group: %q %q", cfg.User, cfg.Group)
	}
}

func TestPrecedence(t *testing.T) {
	const file = "listen:\n  http: \":1001\"\nlimits:\n  max_header: 1KiB\napps:\n  - path: wsgi.py\n"
	tests := []struct {
		name    string
		yaml    string
		environ []string
		args    []string
		http    string
		header  Size
	}{
		{name: "default", args: []string{"wsgi.py"}, http: ":8080", header: 64 << 10},
		{name: "file over default", yaml: file, http: ":1001", header: 1 << 10},
		{name: "env over file", yaml: file, environ: []string{"GW_HTTP=:1002", "GW_MAX_HEADER=2KiB"}, http: ":1002", header: 2 << 10},
		{name: "flag over env", yaml: file, environ: []string{"GW_HTTP=:1002", "GW_MAX_HEADER=2KiB"},
			args: []string{"--http", ":1003", "--max-header", "3KiB"}, http: ":1003", header: 3 << 10},
		{name: "flag over file", yaml: file, args: []string{"--http=:1003"}, http: ":1003", header: 1 << 10},
		{name: "empty env is unset", yaml: file, environ: []string{"GW_HTTP="}, http: ":1001", header: 1 << 10},
		{name: "undeclared env ignored", yaml: file, environ: []string{"GW_HTTP_PORT=:1", "HTTP=:2"}, http: ":1001", header: 1 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			t.Chdir(f.dir)
			cfg := f.mustLoad(tc.yaml, tc.environ, tc.args...)
			if got := cfg.Listen.HTTP.String(); got != tc.http {
				t.Errorf("http = %q, want %q", got, tc.http)
			}
			if cfg.Limits.MaxHeader != tc.header {
				t.Errorf("max_header = %v, want %v", cfg.Limits.MaxHeader, tc.header)
			}
		})
	}
}

// TestFlagsFillFileApps pins how per-app flags combine with apps: the keys
// an entry sets win; flags and variables fill in the rest.
func TestFlagsFillFileApps(t *testing.T) {
	f := newFixture(t)
	yaml := `
apps:
  - path: wsgi.py
    workers: 2
    timeout: 5s
  - path: config.ru
    mount: /shop
`
	cfg := f.mustLoad(yaml, []string{"GW_TIMEOUT=7s", "GW_THREADS=4"}, "--workers", "9", "--threads", "3")
	got := [][3]any{}
	for _, a := range cfg.Apps {
		got = append(got, [3]any{a.Workers, a.Threads, a.Timeout})
	}
	want := [][3]any{{2, 3, 5 * time.Second}, {9, 3, 7 * time.Second}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("workers, threads, timeout = %v, want %v", got, want)
	}
}

// TestEnvKeysKeepCase is the guard for spf13/viper#373: viper lower-cases
// map keys inside lists, which would hand the app django_settings_module.
func TestEnvKeysKeepCase(t *testing.T) {
	f := newFixture(t)
	yaml := `
apps:
  - path: wsgi.py
    env: { DJANGO_SETTINGS_MODULE: blog.settings, Mixed_Case: "0660", EMPTY: "" }
    static: { /Blog/Static/: static }
`
	cfg := f.mustLoad(yaml, nil)
	a := cfg.Apps[0]
	wantEnv := map[string]string{"DJANGO_SETTINGS_MODULE": "blog.settings", "Mixed_Case": "0660", "EMPTY": ""}
	if !maps.Equal(a.Env, wantEnv) {
		t.Errorf("env = %v, want %v", a.Env, wantEnv)
	}
	wantStatic := map[string]string{"/Blog/Static": filepath.Join(f.dir, "static")}
	if !maps.Equal(a.Static, wantStatic) {
		t.Errorf("static = %v, want %v", a.Static, wantStatic)
	}
}

func TestFileApps(t *testing.T) {
	f := newFixture(t)
	yaml := `
listen:
  uwsgi: unix:/run/gw.sock
  chmod_socket: 0600
apps:
  - name: blog
    path: wsgi.py
    mount: /blog/
    host: Blog.Example.com:443
    max_rss: 512MiB
  - path: config.ru
    mount: /shop
  - path: site
  - path: blog.wsgi:application
    mount: /mod
  - path: blog.wsgi:application
    dir: site
    mount: /mod2
    name: mod2
`
	cfg := f.mustLoad(yaml, nil)
	if cfg.File != filepath.Join(f.dir, "gw.yaml") || !cfg.Listen.HTTP.IsZero() || cfg.Listen.ChmodSocket != 0o600 {
		t.Errorf("config: file %q listen %+v", cfg.File, cfg.Listen)
	}
	type got struct {
		name string
		lang Lang
		path string
		dir  string
		host string
		mnt  string
	}
	want := []got{
		{"blog", LangPython, filepath.Join(f.dir, "wsgi.py"), "", "blog.example.com", "/blog"},
		{"config", LangRuby, filepath.Join(f.dir, "config.ru"), "", "", "/shop"},
		{"site", LangPHP, filepath.Join(f.dir, "site"), "", "", "/"},
		{"blog.wsgi", LangPython, "blog.wsgi:application", f.dir, "", "/mod"},
		{"mod2", LangPython, "blog.wsgi:application", filepath.Join(f.dir, "site"), "", "/mod2"},
	}
	if len(cfg.Apps) != len(want) {
		t.Fatalf("got %d apps, want %d", len(cfg.Apps), len(want))
	}
	for i, a := range cfg.Apps {
		g := got{a.Name, a.Lang, a.Path, a.Dir, a.Host, a.Mount}
		if g != want[i] {
			t.Errorf("apps[%d] = %+v, want %+v", i, g, want[i])
		}
	}
	if cfg.Apps[0].MaxRSS != 512<<20 {
		t.Errorf("max_rss = %v", cfg.Apps[0].MaxRSS)
	}
}

func TestConfigFromEnv(t *testing.T) {
	f := newFixture(t)
	file := f.write("other.yaml", "apps:\n  - path: wsgi.py\n")
	cfg, err := Load(Sources{Environ: []string{"GW_CONFIG=" + file}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != file || len(cfg.Apps) != 1 {
		t.Errorf("file %q, %d apps", cfg.File, len(cfg.Apps))
	}
}

func TestStaticFromEnv(t *testing.T) {
	f := newFixture(t)
	t.Chdir(f.dir)
	cfg := f.mustLoad("", []string{"GW_STATIC=/s=static,/t=site"}, "wsgi.py")
	want := map[string]string{"/s": filepath.Join(f.dir, "static"), "/t": filepath.Join(f.dir, "site")}
	if !maps.Equal(cfg.Apps[0].Static, want) {
		t.Errorf("static = %v, want %v", cfg.Apps[0].Static, want)
	}
}

func TestDefaultListener(t *testing.T) {
	tests := []struct {
		name string
		args []string
		http string
	}{
		{name: "none given", http: ":8080"},
		{name: "stats only", args: []string{"--stats", ":9191"}, http: ":8080"},
		{name: "uwsgi only", args: []string{"--uwsgi", ":3031"}, http: ""},
		{name: "fastcgi only", args: []string{"--fastcgi", "unix:/tmp/f.sock"}, http: ""},
		{name: "http given", args: []string{"--http", "127.0.0.1:0"}, http: "127.0.0.1:0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			cfg := f.mustLoad("", nil, append(tc.args, filepath.Join(f.dir, "wsgi.py"))...)
			if got := cfg.Listen.HTTP.String(); got != tc.http {
				t.Errorf("http = %q, want %q", got, tc.http)
			}
		})
	}
}

// TestListenerLists: listen.http, https, uwsgi and fastcgi take one
// address or several (a YAML list, the flag repeated, commas in the
// variable): the first is the kind's listener as before, the others are
// More, in order.
func TestListenerLists(t *testing.T) {
	tests := []struct {
		name        string
		yaml        string
		env, args   []string
		http, uwsgi string
		more        string // "proto=addr ..." of Listen.More
	}{
		{name: "one address in YAML, as before", yaml: "listen:\n  uwsgi: :3031\n", uwsgi: ":3031"},
		{name: "a YAML list", yaml: "listen:\n  uwsgi: [\":3031\", unix:/run/a.sock]\n  http: [\":80\"]\n",
			http: ":80", uwsgi: ":3031", more: "uwsgi=unix:/run/a.sock"},
		{name: "repeated flags", args: []string{"--uwsgi", ":3031", "--http", ":80", "--uwsgi", ":3032", "--uwsgi", ":3033"},
			http: ":80", uwsgi: ":3031", more: "uwsgi=:3032 uwsgi=:3033"},
		{name: "commas in the variable", env: []string{"GW_FASTCGI=:9000,:9001"}, more: "fastcgi=:9001"},
		{name: "a flag beats the file's list", yaml: "listen:\n  uwsgi: [\":1\", \":2\"]\n", args: []string{"--uwsgi", ":3"}, uwsgi: ":3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			yaml := tc.yaml
			if yaml != "" {
				yaml += "apps:\n  - path: wsgi.py\n"
			}
			args := tc.args
			if yaml == "" {
				args = append(args, filepath.Join(f.dir, "wsgi.py"))
			}
			cfg := f.mustLoad(yaml, tc.env, args...)
			var more []string
			for _, m := range cfg.Listen.More {
				more = append(more, m.Proto+"="+m.Addr.String())
			}
			if cfg.Listen.UWSGI.String() != tc.uwsgi || strings.Join(more, " ") != tc.more ||
				(tc.http != "" && cfg.Listen.HTTP.String() != tc.http) {
				t.Errorf("http %q uwsgi %q more %q; want %q %q %q", cfg.Listen.HTTP, cfg.Listen.UWSGI, more, tc.http, tc.uwsgi, tc.more)
			}
		})
	}
}

func TestOptionTable(t *testing.T) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	RegisterFlags(fs)
	// The flags shared/spec/interface.md promises, plus this package's own.
	for _, name := range []string{
		"lang", "http", "https", "http3", "cert", "key", "uwsgi", "fastcgi", "workers", "threads", "callable", "timeout",
		"max-requests", "max-rss", "stats", "interpreter", "venv", "static", "max-header", "max-body",
		"chmod-socket", "uid", "gid", "config", "dir", "mount", "name", "queue-size", "read-header-timeout",
		"idle-timeout", "shutdown-timeout",
	} {
		if fs.Lookup(name) == nil {
			t.Errorf("no --%s", name)
		}
	}
	if fs.ShorthandLookup("c") == nil {
		t.Error("no -c")
	}
	keys := map[string]bool{}
	for _, o := range options {
		if o.key != "" && keys[o.key] {
			t.Errorf("key %q declared twice", o.key)
		}
		keys[o.key] = true
		if o.flag == "" {
			if o.env != "" {
				t.Errorf("%s: env without a flag", o.key)
			}
			continue
		}
		// GW_<NAME>, as the spec defines the variables.
		if want := "GW_" + strings.ToUpper(strings.ReplaceAll(o.flag, "-", "_")); o.env != want {
			t.Errorf("--%s: env %q, want %q", o.flag, o.env, want)
		}
		if o.kind == kindInt {
			if _, err := strconv.Atoi(o.def); err != nil {
				t.Errorf("--%s: default %q is not a number", o.flag, o.def)
			}
		}
	}
}

// TestMergeKeys checks YAML anchors and merge keys, which a config with
// several similar apps is likely to use.
func TestMergeKeys(t *testing.T) {
	f := newFixture(t)
	yaml := `
apps:
  - &base
    path: wsgi.py
    workers: 2
    env: { A: b }
  - <<: *base
    name: second
    mount: /b
    workers: 3
`
	cfg := f.mustLoad(yaml, nil)
	a := cfg.Apps[1]
	if a.Name != "second" || a.Path != filepath.Join(f.dir, "wsgi.py") || a.Workers != 3 || a.Mount != "/b" || a.Env["A"] != "b" {
		t.Errorf("merged app = %+v", a)
	}
}
