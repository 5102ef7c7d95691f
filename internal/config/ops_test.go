package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOperationsOptions covers the logging, shutdown, root and HTTP/2
// options from flags, env and YAML.
func TestOperationsOptions(t *testing.T) {
	f := newFixture(t)
	app := filepath.Join(f.dir, "wsgi.py")
	tests := []struct {
		name    string
		yaml    string
		env     []string
		args    []string
		check   func(c *Config) bool
		problem string
	}{
		{name: "defaults", args: []string{app},
			check: func(c *Config) bool {
				return !c.AllowRoot && !c.Listen.H2C && c.Log.Format == "text" && c.Log.Access == "" && c.Log.File == "" && c.Limits.ShutdownDelay == 0
			}},
		{name: "flags", args: []string{"--allow-root", "--h2c", "--log-format", "json", "--access-log", "-", "--shutdown-delay", "5s", app},
			check: func(c *Config) bool {
				return c.AllowRoot && c.Listen.H2C && c.Log.Format == "json" && c.Log.Access == "-" && c.Limits.ShutdownDelay == 5*time.Second
			}},
		{name: "env", env: []string{"GW_ALLOW_ROOT=1", "GW_ACCESS_LOG=access.log"}, args: []string{app},
			check: func(c *Config) bool { return c.AllowRoot && strings.HasSuffix(c.Log.Access, "/access.log") }},
		{name: "log file flag", args: []string{"--log-file", "/var/log/gw/gw.log", app},
			check: func(c *Config) bool { return c.Log.File == "/var/log/gw/gw.log" }},
		{name: "log file env", env: []string{"GW_LOG_FILE=gw.log"}, args: []string{app},
			check: func(c *Config) bool { return filepath.IsAbs(c.Log.File) && strings.HasSuffix(c.Log.File, "/gw.log") }},
		// A relative path in the file is relative to the file's directory.
		{name: "log file yaml", yaml: "log:\n  file: logs/gw.log\napps:\n  - {name: a, path: wsgi.py}\n",
			check: func(c *Config) bool { return c.Log.File == filepath.Join(f.dir, "logs", "gw.log") }},
		{name: "per-app user", yaml: "apps:\n  - {name: a, path: wsgi.py, uid: www-data, gid: web}\nuid: nobody\n",
			check: func(c *Config) bool {
				return c.Apps[0].User == "www-data" && c.Apps[0].Group == "web" && c.User == "nobody"
			}},
		{name: "bad log format", args: []string{"--log-format", "xml", app}, problem: "text or json"},
		{name: "bad bool", env: []string{"GW_H2C=maybe"}, args: []string{app}, problem: "true or false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := f.load(tc.yaml, tc.env, tc.args...)
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("err = %v, want a problem saying %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg) {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}

func TestChecksumOption(t *testing.T) {
	f := newFixture(t)
	app := filepath.Join(f.dir, "wsgi.py")
	cfg, err := f.load("", nil, "--checksum", strings.Repeat("0f", 32), app)
	if err != nil || len(cfg.Apps[0].Checksum) != 32 || cfg.Apps[0].Checksum[0] != 0x0f {
		t.Fatalf("good checksum: %v %v", cfg, err)
	}
	if _, err := f.load("", nil, "--checksum", "xyz", app); err == nil || !strings.Contains(err.Error(), "64 hex digits") {
		t.Fatalf("bad checksum: %v", err)
	}
}
