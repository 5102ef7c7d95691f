package uwsgiimport

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// TestReadAgainstUWSGI reads each ini of the corpus with Read and with
// uWSGI itself (--show-config prints the options after every expansion)
// and wants the same list. uWSGI is stopped before it binds or forks
// anything: a last --chdir to a missing directory makes it exit, and it
// runs in its own network namespace in case it ever got that far.
func TestReadAgainstUWSGI(t *testing.T) {
	bin := gwtest.RequireInterpreter(t, "uwsgi")
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private network namespace (unshare -n)")
	}
	files, err := filepath.Glob("testdata/corpus/*.ini")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	compared := 0
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := showConfig(t, bin, abs)
		if !ok {
			// uWSGI stops before printing on what this machine lacks: a
			// plugin option under strict = true, a logto directory, a
			// logger plugin.
			t.Logf("%s: uWSGI printed no config here, not compared", filepath.Base(f))
			continue
		}
		compared++
		opts, err := Read(Input{File: abs, Environ: []string{"HOME=/home/gw"}, CPUs: runtime.NumCPU(), Hostname: host, Cwd: filepath.Dir(abs)})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range opts {
			if o.ph { // set-placeholder values are not options to uWSGI
				continue
			}
			v := o.Value
			if o.Key == "cron2" { // uWSGI cuts the value at the command as it parses it, before printing
				v, _, _ = strings.Cut(v, " ")
			}
			got = append(got, strings.TrimSuffix(o.Key+" = "+v, " "))
		}
		if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
			t.Errorf("%s: Read gives\n%s\nuWSGI gives\n%s", filepath.Base(f), g, w)
		}
	}
	t.Logf("compared %d of %d ini configs with uWSGI's own reading", compared, len(files))
	if compared < 15 {
		t.Errorf("compared %d configs with uWSGI, want at least 15", compared)
	}
}

var logDate = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:,]+ - `)

// showConfig runs uWSGI on file and returns the option lines it prints,
// without the ones the test adds.
func showConfig(t *testing.T, bin, file string) ([]string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-n", bin, "--ini", file, "--show-config", "--chdir", "/nonexistent-gw-import-test")
	cmd.Dir = filepath.Dir(file)
	cmd.Env = []string{"HOME=/home/gw", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, _ := cmd.CombinedOutput() // it exits 1 at the chdir, by design
	_, body, ok := strings.Cut(string(out), ";uWSGI instance configuration\n[uwsgi]\n")
	if !ok {
		return nil, false
	}
	body, _, _ = strings.Cut(body, ";end of configuration")
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		l = logDate.ReplaceAllString(l, "") // a config's own log-date prefixes its lines
		switch {
		case l == "", strings.HasPrefix(l, "ini = ") && strings.HasSuffix(l, file) && len(lines) == 0,
			l == "show-config = true", l == "chdir = /nonexistent-gw-import-test":
			continue
		}
		lines = append(lines, strings.TrimSuffix(l, " "))
	}
	return lines, true
}
