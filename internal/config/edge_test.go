package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSendfileCompressOptions: sendfile roots (YAML, paths from the file's
// directory), compress top-level (flag, env, YAML) with a per-app
// override, and compress_min.
func TestSendfileCompressOptions(t *testing.T) {
	f := newFixture(t)
	app := filepath.Join(f.dir, "wsgi.py")
	if err := os.Mkdir(filepath.Join(f.dir, "private"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		yaml     string
		env      []string
		args     []string
		sendfile []string
		compress []bool
		min      Size
		problem  string
	}{
		{name: "defaults", args: []string{app}, compress: []bool{false}, min: 1024},
		{name: "flag", args: []string{"--compress", "--compress-min", "4KiB", app}, compress: []bool{true}, min: 4096},
		{name: "env", env: []string{"GW_COMPRESS=1"}, args: []string{app}, compress: []bool{true}, min: 1024},
		{name: "yaml with an override", yaml: "compress: true\ncompress_min: 100\napps:\n  - {path: wsgi.py}\n  - {path: wsgi.py, name: b, mount: /b, compress: false}\n",
			compress: []bool{true, false}, min: 100},
		{name: "per app on", yaml: "apps:\n  - {path: wsgi.py, compress: true}\n", compress: []bool{true}, min: 1024},
		{name: "sendfile", yaml: "apps:\n  - {path: wsgi.py, sendfile: [private, " + os.TempDir() + "]}\n",
			sendfile: []string{filepath.Join(f.dir, "private"), os.TempDir()}, compress: []bool{false}, min: 1024},
		{name: "sendfile missing", yaml: "apps:\n  - {path: wsgi.py, sendfile: [/nonexistent/files]}\n", problem: "apps[0].sendfile[0]: /nonexistent/files: no such file or directory"},
		{name: "sendfile a file", yaml: "apps:\n  - {path: wsgi.py, sendfile: [wsgi.py]}\n", problem: "wsgi.py is not a directory"},
		{name: "sendfile not a list", yaml: "apps:\n  - {path: wsgi.py, sendfile: /srv}\n", problem: "apps[0].sendfile: want a list"},
		{name: "bad compress", yaml: "apps:\n  - {path: wsgi.py, compress: sometimes}\n", problem: "must be true or false"},
		{name: "bad size", args: []string{"--compress-min", "lots", app}, problem: "compress-min"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(f.dir)
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
			var got []bool
			for _, a := range cfg.Apps {
				got = append(got, a.Compress)
			}
			if !slices.Equal(got, tc.compress) || cfg.CompressMin != tc.min || !slices.Equal(cfg.Apps[0].Sendfile, tc.sendfile) {
				t.Errorf("compress %v min %d sendfile %q; want %v %d %q", got, cfg.CompressMin, cfg.Apps[0].Sendfile, tc.compress, tc.min, tc.sendfile)
			}
		})
	}
}
