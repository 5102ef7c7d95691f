package uwsgiimport

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// importText imports an ini given as text.
func importText(t *testing.T, ini string, env ...string) (*Result, error) {
	t.Helper()
	dir := writeFiles(t, map[string]string{"site.ini": ini})
	return Import(Input{File: filepath.Join(dir, "site.ini"), Environ: env, CPUs: 2, Hostname: "box", Cwd: dir})
}

// TestMapping checks each option family: the report line of every option
// named in lines ("key => kind: what-substring") and what the YAML holds.
func TestMapping(t *testing.T) {
	tests := []struct {
		name  string
		ini   string
		lines []string // "key => kind: substring of What", in order of the file
		yaml  []string // substrings of the YAML
		not   []string // must not be in the YAML
	}{
		{
			name: "sockets: http, uwsgi, unix path, https, fastcgi, stats; several of a kind as a list",
			ini: "[uwsgi]\nmodule = a.wsgi\nhttp = :9090\nsocket = /run/a.sock\nsocket = 127.0.0.1:3031\n" +
				"https = :8443,/etc/c.pem,/etc/k.pem\nfastcgi-socket = :9000\nstats = 127.0.0.1:9191\nhttp-socket = @abstract\n",
			lines: []string{
				"http => mapped: listen.http: :9090",
				"socket => mapped: listen.uwsgi: unix:/run/a.sock",
				"socket => mapped: listen.uwsgi[1]: 127.0.0.1:3031 (the listener named uwsgi.1)",
				"https => mapped: listen.https: :8443",
				"fastcgi-socket => mapped: listen.fastcgi: :9000",
				"stats => mapped: listen.stats: 127.0.0.1:9191",
				"http-socket => unsupported: abstract unix sockets",
			},
			yaml: []string{"  http: :9090\n", "  uwsgi:\n    - unix:/run/a.sock\n    - 127.0.0.1:3031\n", "  https: :8443\n", "    cert: /etc/c.pem\n    key: /etc/k.pem\n", "  fastcgi: :9000\n", "  stats: 127.0.0.1:9191\n"},
		},
		{
			name: "logto, logto2 and daemonize's file become log.file in uWSGI's order; UDP and named loggers do not",
			ini: "[uwsgi]\nmodule = a.wsgi\nlogto2 = /var/log/b.log\nlogto = /var/log/a.log\ndaemonize = /var/log/d.log\n" +
				"log-reopen = true\nlog-maxsize = 1000\nreq-logger = file:/var/log/req.log\n",
			lines: []string{
				"logto2 => mapped: log.file: /var/log/b.log (gw's log and its runners' output; reopened on SIGUSR1)",
				"logto => mapped: log.file: /var/log/a.log (gw's log and its runners' output; reopened on SIGUSR1) (not used: ",
				"daemonize => mapped: log.file: /var/log/d.log (gw's log and its runners' output; reopened on SIGUSR1); gw does not fork into the background",
				"log-reopen => default: gw reopens log.file and log.access on SIGUSR1",
				"log-maxsize => unsupported: gw does not rotate its log itself: let logrotate rename log.file, then send SIGUSR1",
				"req-logger => mapped: log.access: /var/log/req.log",
			},
			yaml: []string{"log:\n  file: /var/log/b.log\n  access: /var/log/req.log\n"},
			not:  []string{"a.log", "d.log"},
		},
		{
			name:  "daemonize then logto: logto wins; a later daemonize line is reported replaced",
			ini:   "[uwsgi]\nmodule = a.wsgi\ndaemonize = /var/log/d.log\nlogto = /var/log/a.log\n",
			lines: []string{"daemonize => mapped: docker runs it (replaced by site.ini:4)", "logto => mapped: log.file: /var/log/a.log"},
			yaml:  []string{"log:\n  file: /var/log/a.log\n"},
			not:   []string{"d.log"},
		},
		{
			name: "daemonize alone; logto to UDP; a named logger",
			ini: "[uwsgi]\nmodule = a.wsgi\ndaemonize = true\nlogto = 10.0.0.1:514\nlogger = file:/var/log/l.log\n" +
				"logger = app syslog\nreq-logger = syslog\nlogger = stdio\nlogger-req = stdio\n",
			lines: []string{
				"daemonize => default: gw does not fork into the background",
				"logto => unsupported: not to a UDP address",
				"logger => mapped: log.file: /var/log/l.log",
				"logger => unsupported: gw logs to stderr or log.file in one format",
				"req-logger => unsupported: gw writes the request log to one place",
				"logger => default: gw logs to stderr unless log.file is set",
				"logger-req => mapped: log.access: - (with gw's log",
			},
			yaml: []string{"log:\n  file: /var/log/l.log\n  access: '-'\n"},
		},
		{
			name: "shared-socket: =N binds it as that listener; an unused one and a bad =N are reported",
			ini: "[uwsgi]\nmodule = a.wsgi\nshared-socket = :80\nshared-socket = :81\nshared-socket = /run/s.sock\n" +
				"http = =0\nsocket = =2\nsocket = =7\nhttps = :443,/c.pem,/k.pem\nhttps = :8443,/other.pem,/k.pem\n",
			lines: []string{
				"shared-socket => mapped: a listener that names it",
				"shared-socket => unsupported: no listener names it (=1)",
				"shared-socket => mapped: a listener that names it",
				"http => mapped: listen.http: :80 (shared-socket 0, site.ini:3)",
				"socket => mapped: listen.uwsgi: unix:/run/s.sock (shared-socket 2, site.ini:5)",
				"socket => unsupported: =7 names no shared-socket (the config has 3)",
				"https => mapped: listen.https: :443",
				"https => unsupported: gw's HTTPS listeners share one certificate and key: /c.pem is kept",
			},
			yaml: []string{"  http: :80\n", "  uwsgi: unix:/run/s.sock\n", "  https: :443\n"},
			not:  []string{":81", "8443"},
		},
		{
			name:  "protocol = http turns socket into the HTTP listener",
			ini:   "[uwsgi]\nsocket = :8000\nprotocol = http\nmodule = a.wsgi\n",
			lines: []string{"socket => mapped: listen.http: :8000", "protocol => default:"},
			yaml:  []string{"  http: :8000\n"},
		},
		{
			name:  "module with chdir, callable, virtualenv, env",
			ini:   "[uwsgi]\nchdir = /srv/app\nmodule = proj.wsgi\ncallable = app\nhome = /srv/venv\nenv = DJANGO_SETTINGS_MODULE=proj.settings\nenv = A=1\nenv = A=2\n",
			lines: []string{"chdir => mapped: apps[0].dir: /srv/app", "module => mapped: apps[0].path: proj.wsgi:app", "callable => mapped: apps[0].path: proj.wsgi:app (the callable part)", "home => mapped: apps[0].venv: /srv/venv", "env => mapped: apps[0].env.DJANGO_SETTINGS_MODULE"},
			yaml:  []string{"    path: proj.wsgi:app\n    dir: /srv/app\n", "    venv: /srv/venv\n", "      DJANGO_SETTINGS_MODULE: proj.settings\n      A: \"2\"\n"},
		},
		{
			name:  "spooler becomes the app's spooler; its tuning is reported",
			ini:   "[uwsgi]\nmodule = a.wsgi\nspooler = /var/spool/a\nspooler-frequency = 5\n",
			lines: []string{"spooler => mapped: apps[0].spooler: /var/spool/a", "spooler-frequency => unsupported: gw's spooler has no tuning"},
			yaml:  []string{"    spooler: /var/spool/a\n"},
		},
		{
			name: "caches: cache2 lines and the legacy cache sum into cache_size; other cache options are reported",
			ini: "[uwsgi]\nmodule = a.wsgi\ncache2 = name=x,items=10\ncache2 = name=y,items=100,blocksize=1024,purge_lru=1\n" +
				"cache = 4\ncache-blocksize = 4096\ncache-store = /tmp/c\ncache2 = name=z,blocksize=9\n",
			lines: []string{"cache2 => mapped: apps[0].cache_size: 655360 bytes", "cache2 => mapped: apps[0].cache_size: 102400 bytes",
				"cache => mapped: apps[0].cache_size: 4 items x cache-blocksize", "cache-blocksize => mapped: apps[0].cache_size: the legacy cache's items x 4096",
				"cache-store => unsupported: gw's uwsgi cache is one LRU per app", "cache2 => unsupported: cache2 without items="},
			yaml: []string{"    cache_size: 774144\n"}, // 655360 + 102400 + 4*4096
		},
		{
			name:  "the legacy cache alone: uWSGI's 64 KiB blocks",
			ini:   "[uwsgi]\nmodule = a.wsgi\ncache = 100\n",
			lines: []string{"cache => mapped: apps[0].cache_size: 100 items x cache-blocksize"},
			yaml:  []string{"    cache_size: 6553600\n"},
		},
		{
			name:  "wsgi-file relative to chdir, callable key; module wins over wsgi-file",
			ini:   "[uwsgi]\nchdir = /srv\nwsgi-file = app/wsgi.py\ncallable = application\n",
			lines: []string{"wsgi-file => mapped: apps[0].path: /srv/app/wsgi.py", "callable => mapped: apps[0].callable: application"},
			yaml:  []string{"    path: /srv/app/wsgi.py\n", "    callable: application\n"},
		},
		{
			name:  "module and wsgi-file: uWSGI loads module",
			ini:   "[uwsgi]\nwsgi-file = /etc/w.py\nmodule = wsgi:application\n",
			lines: []string{"wsgi-file => unsupported: uWSGI loads module first", "module => mapped: apps[0].path: wsgi:application"},
		},
		{
			name:  "pythonpath: import root without chdir, the rest to PYTHONPATH",
			ini:   "[uwsgi]\npythonpath = /srv/src\npp = /srv/lib\nmodule = app\n",
			lines: []string{"pythonpath => mapped: apps[0].dir: /srv/src", "pp => mapped: env.PYTHONPATH"},
			yaml:  []string{"    dir: /srv/src\n", "      PYTHONPATH: /srv/lib\n"},
		},
		{
			name:  "processes, threads, cheaper, cheaper-idle, harakiri, max-requests, reload-on-rss",
			ini:   "[uwsgi]\nmodule = a.wsgi\nprocesses = 8\nthreads = 4\ncheaper = 2\ncheaper-idle = 30\ncheaper-algo = spare\ncheaper-busyness-max = 70\nharakiri = 30\nmax-requests = 5000\nreload-on-rss = 512\n",
			lines: []string{"processes => mapped: apps[0].workers: 8", "threads => mapped: apps[0].threads: 4", "cheaper => mapped: apps[0].min_workers: 2", "cheaper-idle => mapped: apps[0].worker_idle: 30s", "cheaper-algo => default:", "cheaper-busyness-max => unsupported: gw's scaler", "harakiri => mapped: apps[0].timeout: 30s", "max-requests => mapped: apps[0].max_requests: 5000", "reload-on-rss => mapped: apps[0].max_rss: 512MiB"},
			yaml:  []string{"    workers: 8\n    min_workers: 2\n    worker_idle: 30s\n    threads: 4\n    timeout: 30s\n    max_requests: 5000\n    max_rss: 512MiB\n"},
		},
		{
			name:  "limit-as, max-fd, limit-nproc: the app's limits:; cgroup is gw's own",
			ini:   "[uwsgi]\nmodule = a.wsgi\nlimit-as = 512\nmax-fd = 4096\nlimit-nproc = 64\ncgroup = /sys/fs/cgroup/memory/x\n",
			lines: []string{"limit-as => mapped: apps[0].limits.memory: 512MiB", "max-fd => mapped: apps[0].limits.open_files: 4096", "limit-nproc => mapped: apps[0].limits.processes: 64", "cgroup => unsupported: gw makes a cgroup per app"},
			yaml:  []string{"    limits:\n      memory: 512MiB\n      open_files: \"4096\"\n      processes: \"64\"\n"},
		},
		{
			name:  "processes = %k is gw's default; no processes is uWSGI's one worker",
			ini:   "[uwsgi]\nmodule = a.wsgi\nprocesses = %k\n",
			lines: []string{"processes => default: one runner per CPU"},
			not:   []string{"workers:"},
		},
		{
			name: "uWSGI's default of one worker is written out",
			ini:  "[uwsgi]\nmodule = a.wsgi\n",
			yaml: []string{"    workers: 1 "},
		},
		{
			name:  "cheaper not below processes, harakiri 0, cheaper 0",
			ini:   "[uwsgi]\nmodule = a.wsgi\nprocesses = 2\ncheaper = 2\nharakiri = 0\n",
			lines: []string{"cheaper => unsupported: uWSGI refuses cheaper >= processes", "harakiri => unsupported: harakiri 0 means no limit"},
			not:   []string{"min_workers", "timeout"},
		},
		{
			name:  "numbers as atoi reads them; later values replace earlier ones",
			ini:   "[uwsgi]\nmodule = a.wsgi\nprocesses = 4\nworkers = 6  # more\nmax-requests = lots\n",
			lines: []string{"processes => mapped: apps[0].workers: 4 (replaced by site.ini:4)", "workers => mapped: apps[0].workers: 6 (uWSGI reads the leading number", "max-requests => unsupported: \"lots\": want a whole number"},
			yaml:  []string{"    workers: 6\n"},
		},
		{
			name:  "static-gzip-all is what gw does; static-expires it cannot",
			ini:   "[uwsgi]\nmodule = a.wsgi\nstatic-gzip-all = true\nstatic-expires = /static/.* 3600\n",
			lines: []string{"static-gzip-all => default: gw serves a static file's precompressed sibling", "static-expires => unsupported: gw's static: has no per-path Expires"},
		},
		{
			name:  "buffer-size, limit-post, socket-timeout",
			ini:   "[uwsgi]\nmodule = a.wsgi\nbuffer-size = 32768\nlimit-post = 1048576\nsocket-timeout = 20\n",
			lines: []string{"buffer-size => default: gw takes request heads up to 64KiB", "limit-post => mapped: limits.max_body: 1048576", "socket-timeout => mapped: limits.body_timeout: 20s"},
			yaml:  []string{"limits:\n  max_body: \"1048576\"\n  body_timeout: 20s\n"},
		},
		{
			name:  "static-map and static-map2 relative to chdir",
			ini:   "[uwsgi]\nchdir = /srv\nmodule = a.wsgi\nstatic-map = /static=static\nstatic-map2 = /media=/data\nstatic-expires = /* 3600\n",
			lines: []string{"static-map => mapped: apps[0].static./static: /srv/static", "static-map2 => mapped: apps[0].static./media: /data/media", "static-expires => unsupported: gw's static: has no per-path Expires"},
			yaml:  []string{"    static:\n      /static: /srv/static\n      /media: /data/media\n"},
		},
		{
			name: "mount with manage-script-name: an app per mount, static to the app above it",
			ini: "[uwsgi]\nmanage-script-name = true\nmount = /blog=/srv/blog/wsgi.py\nmount = /api=api.main:app\nmodule = site.wsgi\n" +
				"static-map = /blog/static=/srv/blog/static\nstatic-map = /static=/srv/static\nprocesses = 2\n",
			lines: []string{"manage-script-name => default: gw sets SCRIPT_NAME", "mount => mapped: apps[1]: /srv/blog/wsgi.py at /blog", "mount => mapped: apps[2]: api.main:app at /api", "module => mapped: apps[0].path: site.wsgi:application", "static-map => mapped: apps[1].static./blog/static", "static-map => mapped: apps[0].static./static", "processes => mapped: apps[*].workers: 2"},
			yaml:  []string{"  - name: site\n    lang: python\n    path: site.wsgi:application\n", "  - name: site-blog\n    lang: python\n    path: /srv/blog/wsgi.py\n    mount: /blog\n", "  - name: site-api\n    lang: python\n    path: api.main:app\n    mount: /api\n"},
		},
		{
			name:  "uid, gid, chmod-socket, chown-socket",
			ini:   "[uwsgi]\nmodule = a.wsgi\nsocket = /run/a.sock\nuid = www-data\ngid = www-data\nchmod-socket = 660\nchown-socket = www-data:www-data\n",
			lines: []string{"uid => mapped: uid: www-data", "gid => mapped: gid: www-data", "chmod-socket => mapped: listen.chmod_socket: 0660", "chown-socket => mapped: listen.chown_socket: www-data:www-data"},
			yaml:  []string{"  chmod_socket: \"0660\"\n  chown_socket: www-data:www-data\n", "uid: www-data\ngid: www-data\n"},
		},
		{
			name: "daemons and cron mapped",
			ini: "[uwsgi]\nchdir = /srv\nmodule = a.wsgi\nattach-daemon = celery -A proj worker\nsmart-attach-daemon = /tmp/m.pid memcached -d\n" +
				"cron = 0 -1 -1 -1 -1 /srv/bin/hourly\nunique-cron = -15 -1 -1 -1 -1 ./sweep\ncron2 = minute=39,hour=23,unique=1 backup.sh\n",
			lines: []string{"attach-daemon => mapped: daemons: (restart: always)", "smart-attach-daemon => mapped: daemons:", "cron => mapped: cron:", "unique-cron => mapped: cron:", "cron2 => mapped: cron:"},
			yaml: []string{
				"daemons:\n  - name: celery-proj\n    command: [/bin/sh, -c, celery -A proj worker]\n    dir: /srv\n    restart: always\n  - name: memcached\n    command: [/bin/sh, -c, memcached -d]\n",
				"cron:\n  - name: hourly\n    schedule: 0 * * * *\n    command: [/bin/sh, -c, /srv/bin/hourly]\n    dir: /srv\n  - name: sweep\n    schedule: '*/15 * * * *'\n",
				"    schedule: 39 23 * * *\n",
			},
		},
		{
			name: "touch-reload (repeatable, from chdir) and py-autoreload",
			ini:  "[uwsgi]\nchdir = /srv\nmodule = a.wsgi\ntouch-reload = /srv/reload\ntouch-reload = deploy.stamp\npy-autoreload = 2\n",
			lines: []string{"touch-reload => mapped: apps[0].touch_reload", "touch-reload => mapped: apps[0].touch_reload",
				"py-autoreload => mapped: apps[0].reload: true"},
			yaml: []string{"    reload: true\n    touch_reload: [/srv/reload, /srv/deploy.stamp]\n"},
		},
		{
			name:  "py-autoreload 0 is off",
			ini:   "[uwsgi]\nmodule = a.wsgi\npy-autoreload = 0\n",
			lines: []string{"py-autoreload => default: off here; gw reloads on source changes only when asked"},
		},
		{
			name:  "defaults gw has without being told",
			ini:   "[uwsgi]\nmodule = a.wsgi\nmaster = true\nvacuum = true\ndie-on-term = true\nenable-threads = true\nthunder-lock = true\nsingle-interpreter = true\nlazy-apps = false\n",
			lines: []string{"master => default:", "vacuum => default:", "die-on-term => default:", "enable-threads => default:", "thunder-lock => default:", "single-interpreter => default:", "lazy-apps => default: off here;"},
		},
		{
			name:  "unknown options, placeholders, underscores, unset environment",
			ini:   "[uwsgi]\nproject = blog\nchdir = /srv/%(project)\nmodule = a.wsgi\nmax_requests = 10\nprocesess = 4\nlogto = $(LOGDIR)/x.log\n",
			lines: []string{"project => placeholder: not a uWSGI option: a name the config uses as %(project)", "chdir => mapped: apps[0].dir: /srv/blog", "max_requests => mapped: apps[0].max_requests: 10 (read as max-requests; uWSGI itself reads only the dashed spelling", "procesess => unsupported: unknown uWSGI option", "logto => unsupported: needs $LOGDIR"},
		},
		{
			name:  "perl and ruby apps",
			ini:   "[uwsgi]\nplugins = psgi\npsgi = /srv/app.psgi\n",
			lines: []string{"plugins => default:", "psgi => mapped: apps[0].path: /srv/app.psgi"},
			yaml:  []string{"    lang: perl\n    path: /srv/app.psgi\n"},
		},
		{
			name:  "config logic is reported",
			ini:   "[uwsgi]\nmodule = a.wsgi\nif-env = PORT\nhttp = :%(_)\nendif =\n",
			lines: []string{"if-env => evaluated: config logic: if-env held at import, 0 option(s) skipped", "http => mapped: listen.http: :8000", "endif => evaluated:"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := importText(t, tc.ini, "PORT=8000")
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			for _, l := range res.Lines {
				all = append(all, l.String())
			}
			if !matchInOrder(res.Lines, tc.lines) {
				t.Errorf("lines:\n%s\nwant, in order:\n%s", strings.Join(all, "\n"), strings.Join(tc.lines, "\n"))
			}
			y := string(res.YAML)
			for _, s := range tc.yaml {
				if !strings.Contains(y, s) {
					t.Errorf("yaml lacks %q:\n%s", s, y)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(y, s) {
					t.Errorf("yaml has %q:\n%s", s, y)
				}
			}
		})
	}
}

// matchInOrder reports whether each "key => kind: what" is found in
// lines, each after the one before.
func matchInOrder(lines []Line, want []string) bool {
	i := 0
	for _, w := range want {
		key, rest, _ := strings.Cut(w, " => ")
		kind, what, _ := strings.Cut(rest, ":")
		what = strings.TrimPrefix(what, " ")
		for ; i < len(lines); i++ {
			l := lines[i]
			if l.Key == key && l.Kind.String() == kind && strings.Contains(l.What, what) {
				break
			}
		}
		if i == len(lines) {
			return false
		}
		i++
	}
	return true
}

func TestMappingNoApp(t *testing.T) {
	res, err := importText(t, "[uwsgi]\nhttp = :80\nmaster = true\n")
	if !errors.Is(err, ErrNoApp) {
		t.Fatalf("got %v, want ErrNoApp", err)
	}
	if res == nil || len(res.Lines) != 2 {
		t.Fatalf("want the two option lines even without an app, got %+v", res)
	}
}

func TestLineFormat(t *testing.T) {
	l := Line{Pos: "uwsgi.ini:7", Key: "harakiri", Value: "30", Kind: Mapped, What: "apps[0].timeout: 30s"}
	if got, want := l.String(), "uwsgi.ini:7: harakiri = 30 -> mapped: apps[0].timeout: 30s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
