package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gwhq/gw/internal/gwtest"
)

// hostileSite writes a PHP document root holding what gets sites owned:
// an upload with no extension that holds a script, a .git directory, a
// .env, backups of PHP files, PHP files with upper-case extensions, a
// directory without an index and a symlink out of the root.
func hostileSite(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	site := filepath.Join(base, "site")
	for name, body := range map[string]string{
		"index.php":        "<?php echo 'front';",
		"env.php":          "<?php header('Content-Type: application/json'); echo json_encode(['secret' => getenv('HOSTILE_TEST_SECRET'), 'server' => $_SERVER['HOSTILE_TEST_SECRET'] ?? false, 'app' => getenv('APP_VALUE')]);",
		"style.css":        "body { color: green; }\n",
		"upload":           "<script>alert(document.cookie)</script>",
		".git/config":      "[remote] url = https://token@example.com/SOURCE-LEAK",
		".env":             "DB_PASSWORD=SOURCE-LEAK",
		"index.php~":       "<?php // SOURCE-LEAK",
		"config.php.bak":   "<?php $pw = 'SOURCE-LEAK';",
		"lib.inc":          "<?php $pw = 'SOURCE-LEAK';",
		"x.PHP":            "<?php echo 'RAN'; // SOURCE-LEAK",
		"x.pHp":            "<?php echo 'RAN'; // SOURCE-LEAK",
		"noindex/a.txt":    "a",
		"../outside/s.txt": "SOURCE-LEAK outside the root",
	} {
		p := filepath.Join(site, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../outside/s.txt", filepath.Join(site, "leak.txt")); err != nil {
		t.Fatal(err)
	}
	return site
}

// TestHostileFiles: the PHP document root (/php) and a static: directory
// holding the same tree (/php/raw) answer every hostile name the same way,
// through one policy (internal/files). Before it, /php/raw listed
// directories and served .git/config, .env and the symlink's target, the
// upload went out as sniffed text/html from both, index.php~ was served as
// source, and x.PHP ran as PHP.
func TestHostileFiles(t *testing.T) {
	phpCGI := gwtest.RequireInterpreter(t, "php-cgi")
	site := hostileSite(t)
	t.Setenv("HOSTILE_TEST_SECRET", "s3cret") // gw's environment, inherited by gw
	cfg := fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
apps:
  - name: site
    lang: php
    path: %s
    interpreter: %s
    mount: /php
    workers: 1
    env: { APP_VALUE: from-app-env }
    static: { /php/raw: %s }
`, site, phpCGI, site)
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))

	get := func(t *testing.T, target, extra string) (int, string, string, string) {
		t.Helper()
		c := gwtest.Dial(t, s.URL)
		c.Send("GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "Connection: close\r\n\r\n")
		resp, body := c.Response("GET")
		return resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"), body
	}
	tests := []struct {
		path   string
		status int
		ctype  string
	}{
		{"/upload", 200, "application/octet-stream"},
		{"/style.css", 200, "text/css; charset=utf-8"},
		{"/.git/config", 403, ""},
		{"/%2egit/config", 403, ""},
		{"/.env", 403, ""},
		{"/index.php~", 403, ""},
		{"/config.php.bak", 403, ""},
		{"/lib.inc", 403, ""},
		{"/x.PHP", 403, ""},
		{"/x.pHp", 403, ""},
		{"/leak.txt", 403, ""},
	}
	for _, prefix := range []string{"/php", "/php/raw"} {
		for _, tc := range tests {
			t.Run(prefix+tc.path, func(t *testing.T) {
				status, ctype, nosniff, body := get(t, prefix+tc.path, "")
				if status != tc.status || (tc.ctype != "" && ctype != tc.ctype) || nosniff != "nosniff" {
					t.Errorf("%d %q nosniff=%q, want %d %q nosniff", status, ctype, nosniff, tc.status, tc.ctype)
				}
				if strings.Contains(body, "SOURCE-LEAK") || strings.Contains(body, "RAN") {
					t.Errorf("leaked or ran: %q", body)
				}
			})
		}
	}
	t.Run("dot segments", func(t *testing.T) {
		// Resolved before routing (issue 13 item 1, as nginx resolves
		// $uri): no file request ever carries "..". What climbs out of
		// /php has no app (404); what stays in it is an ordinary path
		// there (the front controller). Never the file outside the root.
		for target, status := range map[string]int{
			"/php/%2e%2e/outside/s.txt":                404,
			"/php/noindex/..%2f..%2foutside/s.txt":     404,
			"/php/raw/%2e%2e/outside/s.txt":            200,
			"/php/raw/noindex/..%2f..%2foutside/s.txt": 200,
		} {
			if got, _, _, body := get(t, target, ""); got != status || strings.Contains(body, "SOURCE-LEAK") || status == 200 && body != "front" {
				t.Errorf("%s: %d %q, want %d and no leak", target, got, body, status)
			}
		}
	})
	t.Run("no listing", func(t *testing.T) {
		// nginx with autoindex off: 403. (Under /php a directory without
		// index.php goes to the front controller, as try_files does.)
		if status, _, _, body := get(t, "/php/raw/noindex/", ""); status != 403 || strings.Contains(body, "a.txt") {
			t.Errorf("/php/raw/noindex/: %d %q, want 403 without a listing", status, body)
		}
	})
	t.Run("range", func(t *testing.T) {
		for _, prefix := range []string{"/php", "/php/raw"} {
			if status, _, _, body := get(t, prefix+"/style.css", "Range: bytes=0-3\r\n"); status != 206 || body != "body" {
				t.Errorf("%s/style.css bytes=0-3: %d %q, want 206 \"body\"", prefix, status, body)
			}
		}
	})
	t.Run("clear env", func(t *testing.T) {
		// php-fpm's clear_env: gw's environment never reaches PHP, the
		// app's env: does.
		status, _, _, body := get(t, "/php/env.php", "")
		r := strings.NewReplacer(" ", "").Replace(body)
		if status != 200 || !strings.Contains(r, `"secret":false`) || !strings.Contains(r, `"server":false`) || !strings.Contains(r, `"app":"from-app-env"`) {
			t.Errorf("env.php: %d %s", status, body)
		}
	})
}
