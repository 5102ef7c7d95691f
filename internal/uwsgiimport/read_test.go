package uwsgiimport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes name -> content into a fresh directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// pairs renders the options that are not directives as "key=value" lines.
func pairs(opts []Option) string {
	var b strings.Builder
	for _, o := range opts {
		if o.note != "" {
			continue
		}
		b.WriteString(o.Key + "=" + o.Value)
		if o.Flag {
			b.WriteString(" (flag)")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestReadDialect checks uWSGI's config dialect against what uWSGI 2.0.21
// itself printed with --show-config for the same files.
func TestReadDialect(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		file  string // relative to the temp dir; default app.ini
		env   []string
		want  string
	}{
		{
			name:  "default section, repeated keys, flags, comments",
			files: map[string]string{"app.ini": "[other]\nx = 1\n[uwsgi]\n; comment\n# comment\nenv = A=1\nenv = B=2\nmaster\nmax-requests = 5\nmax-requests=9\n  spaced   =   v w  \n"},
			want:  "env=A=1\nenv=B=2\nmaster= (flag)\nmax-requests=5\nmax-requests=9\nspaced=v w\n",
		},
		{
			name:  "FILE:section picks a section",
			files: map[string]string{"app.ini": "[uwsgi]\na = 1\n[dev]\nb = 2\n"},
			file:  "app.ini:dev",
			want:  "b=2\n",
		},
		{
			name:  "no inline comments in ini",
			files: map[string]string{"app.ini": "[uwsgi]\nbuffer-size = 65536  # big\n"},
			want:  "buffer-size=65536  # big\n",
		},
		{
			name:  "magic variables",
			files: map[string]string{"sub/my.app.ini": "[uwsgi]\nd = %d\nn = %n\nc = %c\ne = %e\ns = %s\nk = %k\nh = %h\npct = 100%%\nunknown = a%Qb\nx = %x\n"},
			file:  "sub/my.app.ini",
			want:  "d={dir}/sub/\nn=my.app\nc=sub\ne=ini\ns=my.app.ini\nk=3\nh=box\npct=100%\nunknown=ab\nx=\n",
		},
		{
			name:  "placeholders: first value, math, nesting, unknown left alone",
			files: map[string]string{"app.ini": "[uwsgi]\nbase = /srv\nbase = /other\nchdir = %(base)/app\nprocesses = 4\ntwice = %(processes * 2)\ncat = %(processes 2 + 1)\nk2 = %(%k * 2)\nnope = %(missing)\nref = %(chdir)/x\n"},
			want:  "base=/srv\nbase=/other\nchdir=/srv/app\nprocesses=4\ntwice=8\ncat=43\nk2=6\nnope=%(missing)\nref=/srv/app/x\n",
		},
		{
			name:  "environment: set, unset, defaults",
			files: map[string]string{"app.ini": "[uwsgi]\na = $(HOME)/x\nb = $(NOPE)\nc = $(NOPE:-dflt)\nd = $(EMPTY:-dflt)\ne = $(EMPTY-dflt)\nf = $(NOPE-dflt)\n"},
			env:   []string{"HOME=/home/u", "EMPTY="},
			want:  "a=/home/u/x\nb=$(NOPE)\nc=dflt\nd=dflt\ne=\nf=dflt\n",
		},
		{
			name:  "file content with @()",
			files: map[string]string{"app.ini": "[uwsgi]\nsecret = @({dir}/s.txt)\nmissing = @({dir}/none)\n", "s.txt": "hush\n"},
			want:  "secret=hush\nmissing=@({dir}/none)\n",
		},
		{
			name:  "if-env, if-not-env, else and %(_)",
			files: map[string]string{"app.ini": "[uwsgi]\nif-env = PORT\nhttp = :%(_)\nendif =\nif-env = NOPE\nhttp = :1\nelse =\nsocket = /s\nendif =\nif-not-env = NOPE\nthreads = 2\nendif =\nif-env = PORT=9\nworkers = 9\nendif =\n"},
			env:   []string{"PORT=8000"},
			want:  "http=:8000\nsocket=/s\nthreads=2\n",
		},
		{
			name:  "if-exists, if-not-file, if-opt, for",
			files: map[string]string{"app.ini": "[uwsgi]\nmaster = true\nif-exists = {dir}/app.ini\na = %(_)\nendif =\nif-not-file = {dir}/nope\nb = 1\nend-if =\nif-opt = master=true\nc = 1\nendif =\nfor = x y\nenv = K_%(_)=1\nendfor =\n"},
			want:  "master=true\na={dir}/app.ini\nb=1\nc=1\nenv=K_x=1\nenv=K_y=1\n",
		},
		{
			name:  "ini = :section and ini = FILE include in place",
			files: map[string]string{"app.ini": "[uwsgi]\na = 1\nini = :base\nini = {dir}/more.ini\nz = %(b)\n[base]\nb = 2\n", "more.ini": "[uwsgi]\nc = 3\n"},
			want:  "a=1\nb=2\nc=3\nz=2\n",
		},
		{
			name:  "set-placeholder",
			files: map[string]string{"app.ini": "[uwsgi]\nset-placeholder = root=/srv\nchdir = %(root)/app\n"},
			want:  "root=/srv\nchdir=/srv/app\n",
		},
		{
			name:  "uWSGI's own yaml: comments anywhere, split at the first colon-space",
			file:  "app.yaml",
			files: map[string]string{"app.yaml": "other:\n  a: 1\nuwsgi:\n  http: :80 # the port\n  logformat : a: %(uri)\n  master: true\nlater:\n  b: 2\n"},
			want:  "http=:80\nlogformat=a: %(uri)\nmaster=true\n",
		},
		{
			name:  "json keeps key order, lists repeat, true is a flag, trailing comma forgiven",
			file:  "app.json",
			files: map[string]string{"app.json": `{"uwsgi": {"module": "a.wsgi", "env": ["A=1", "B=2"], "master": true, "vacuum": false, "processes": 4,}}`},
			want:  "module=a.wsgi\nenv=A=1\nenv=B=2\nmaster= (flag)\nvacuum=false\nprocesses=4\n",
		},
		{
			name:  "xml",
			file:  "app.xml",
			files: map[string]string{"app.xml": "<!-- c -->\n<uwsgi>\n  <socket>/tmp/s.sock</socket>\n  <master/>\n  <env>A=%n</env>\n</uwsgi>\n"},
			want:  "socket=/tmp/s.sock\nmaster= (flag)\nenv=A=app\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(strings.ReplaceAll(content, "{dir}", dir)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			file := tc.file
			if file == "" {
				file = "app.ini"
			}
			opts, err := Read(Input{File: filepath.Join(dir, file), Environ: tc.env, CPUs: 3, Hostname: "box", Cwd: dir})
			if err != nil {
				t.Fatal(err)
			}
			want := strings.ReplaceAll(tc.want, "{dir}", dir)
			if got := pairs(opts); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"loop.ini": "[uwsgi]\nini = :uwsgi\n",
		"bad.json": "{not json",
		"miss.ini": "[uwsgi]\nini = nowhere.ini\n",
	})
	if _, err := Read(Input{File: filepath.Join(dir, "none.ini")}); err == nil || !os.IsNotExist(err) {
		t.Errorf("missing file: got %v, want a not-exist error", err)
	}
	if _, err := Read(Input{File: filepath.Join(dir, "loop.ini")}); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("self-include: got %v, want the depth error", err)
	}
	if _, err := Read(Input{File: filepath.Join(dir, "bad.json")}); err == nil || !strings.Contains(err.Error(), "parse json") {
		t.Errorf("bad json: got %v", err)
	}
	opts, err := Read(Input{File: filepath.Join(dir, "miss.ini"), Cwd: dir})
	if err != nil || len(opts) != 1 || !opts[0].bad || !strings.Contains(opts[0].note, "not found") {
		t.Errorf("missing include: got %+v, %v; want one bad option saying not found", opts, err)
	}
}
