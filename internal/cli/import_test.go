package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportUWSGI(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := os.Mkdir(filepath.Join(dir, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("wsgi.py", "application = None\n")
	clean := write("clean.ini", "[uwsgi]\nchdir = %d\nwsgi-file = wsgi.py\nhttp = 127.0.0.1:0\nprocesses = 2\nmaster = true\nstatic-map = /static=%dstatic\n")
	dropped := write("dropped.ini", "[uwsgi]\nchdir = %d\nwsgi-file = wsgi.py\nprocname = web\nattach-daemon = celery worker\n")
	noApp := write("noapp.ini", "[uwsgi]\nhttp = :80\n")

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr []string
	}{
		{"clean", []string{"import", "uwsgi", clean}, 0, "apps:\n  - name: clean\n", []string{
			"clean.ini:4: http = 127.0.0.1:0 -> mapped: listen.http: 127.0.0.1:0",
			"clean.ini:6: master = true -> default: ",
			"gw import: 6 options: 5 mapped, 1 default, 0 unsupported, 0 placeholder, 0 evaluated\n"}},
		{"strict and clean", []string{"import", "uwsgi", "--strict", clean}, 0, "path: ", nil},
		{"dropped", []string{"import", "uwsgi", dropped}, 0, "daemons:\n  - name: celery-worker\n", []string{
			"dropped.ini:4: procname = web -> unsupported: ",
			"dropped.ini:5: attach-daemon = celery worker -> mapped: daemons:"}},
		{"strict and dropped", []string{"import", "uwsgi", dropped, "--strict"}, 1, "apps:", []string{
			"gw: --strict: 1 option(s) of " + dropped + " have no gw equivalent"}},
		{"missing file", []string{"import", "uwsgi", filepath.Join(dir, "none.ini")}, 1, "", []string{
			"gw: import " + filepath.Join(dir, "none.ini") + ": no such file or directory\n"}},
		{"no app", []string{"import", "uwsgi", noApp}, 1, "", []string{
			"noapp.ini:2: http = :80 -> mapped: listen",
			"gw: import " + noApp + ": no app: the config has no module, wsgi-file, mount, psgi, rack or php-docroot"}},
		{"no kind", []string{"import"}, 2, "", []string{"gw import uwsgi FILE", "Run 'gw --help'"}},
		{"no file", []string{"import", "uwsgi"}, 2, "", []string{"accepts 1 arg(s)"}},
		{"two files", []string{"import", "uwsgi", clean, clean}, 2, "", []string{"accepts 1 arg(s)"}},
		{"unknown kind", []string{"import", "nginx", clean}, 2, "", []string{"Run 'gw --help'"}},
		{"bad flag", []string{"import", "uwsgi", "--strikt", clean}, 2, "", []string{"unknown flag: --strikt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := gw(t, tc.args...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) {
				t.Errorf("code %d, stdout:\n%s\nwant code %d and stdout with %q; stderr:\n%s", code, stdout, tc.code, tc.stdout, stderr)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if tc.code != 0 && tc.stdout == "" && stdout != "" {
				t.Errorf("stdout should be empty on failure, got:\n%s", stdout)
			}
		})
	}
}

// TestImportThenCheck: what gw import writes, gw check accepts.
func TestImportThenCheck(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte("application = None\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ini := filepath.Join(dir, "blog.ini")
	body := "[uwsgi]\nchdir = %d\nmodule = app\nsocket = %dgw.sock\nchmod-socket = 660\nstats = 127.0.0.1:0\nprocesses = 3\nthreads = 2\nharakiri = 20\nmax-requests = 100\nreload-on-rss = 256\nenv = A=b\nvacuum = true\n"
	if err := os.WriteFile(ini, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := gw(t, "import", "uwsgi", "--strict", ini)
	if code != 0 {
		t.Fatalf("import: code %d, stderr:\n%s", code, stderr)
	}
	out := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(out, []byte(stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = gw(t, "check", "-c", out)
	if code != 0 || !strings.Contains(stdout, "ok (1 app)") {
		t.Errorf("check of the import: code %d, output:\n%s\nimported:\n%s", code, stdout, body)
	}
}
