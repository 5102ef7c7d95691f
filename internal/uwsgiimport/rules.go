package uwsgiimport

import (
	_ "embed"
	"strings"
)

//go:embed uwsgi_options.txt
var optionNames string

// known is every option name uWSGI declares.
var known = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(optionNames, "\n") {
		if l = strings.TrimSpace(l); l != "" && l[0] != '#' {
			m[l] = true
		}
	}
	return m
}()

// aliases are uWSGI's other spellings of one option.
var aliases = map[string]string{
	"workers": "processes", "wsgi": "module", "file": "wsgi-file",
	"venv": "virtualenv", "home": "virtualenv", "pyhome": "virtualenv",
	"python-path": "pythonpath", "pp": "pythonpath",
	"uwsgi-socket": "socket", "http11-socket": "http-socket",
	"plugin": "plugins", "py-auto-reload": "py-autoreload", "python-autoreload": "py-autoreload",
	"logformat": "log-format", "chmod": "chmod-socket", "stats-server": "stats",
	"logger-req": "req-logger",
}

// defaults are options whose effect gw has without being told.
var defaults = map[string]string{
	"master":                  "gw is always the master: it supervises its runners",
	"vacuum":                  "gw removes its unix sockets at exit",
	"die-on-term":             "SIGTERM stops gw gracefully",
	"enable-threads":          "threads an app starts just run",
	"thunder-lock":            "gw accepts connections itself; runners never accept",
	"single-interpreter":      "a runner has one interpreter",
	"lazy-apps":               "each runner loads the app itself",
	"lazy":                    "each runner loads the app itself",
	"need-app":                "gw exits 1 when an app cannot load",
	"strict":                  "gw rejects unknown keys (gw check)",
	"no-orphans":              "runners exit as soon as gw is gone",
	"manage-script-name":      "gw sets SCRIPT_NAME to the mount and PATH_INFO to the rest",
	"memory-report":           "gw reports each runner's RSS in /stats",
	"disable-logging":         "gw writes no request log unless log.access is set",
	"post-buffering":          "gw reads a request body before a runner is taken (request_buffering)",
	"offload-threads":         "static files are served by the gateway, never by a runner",
	"plugins":                 "the runners are built in; lang: is set from the app",
	"plugins-dir":             "the runners are built in",
	"plugin-dir":              "the runners are built in",
	"ignore-sigpipe":          "a client that goes away is the gateway's business; the app never sees it",
	"ignore-write-errors":     "a client that goes away is the gateway's business; the app never sees it",
	"disable-write-exception": "a client that goes away is the gateway's business; the app never sees it",
	"http-keepalive":          "gw's HTTP listener keeps connections alive",
	"http-auto-chunked":       "gw chunks answers of unknown length itself",
	"listen":                  "gw listens with the kernel's largest backlog (net.core.somaxconn)",
	"stats-http":              "gw's stats listener speaks HTTP (/stats, /metrics)",
	"stats-minified":          "gw's /stats is compact JSON",
	// gw serves x.gz (and x.zst, x.br) beside any static x whenever the
	// client accepts it, so uWSGI's choice of which files has no use.
	"static-gzip-all":     "gw serves a static file's precompressed sibling (x.gz, .zst, .br) whenever the client accepts it",
	"static-gzip":         "gw serves a static file's precompressed sibling (x.gz, .zst, .br) whenever the client accepts it",
	"static-gzip-dir":     "gw serves a static file's precompressed sibling (x.gz, .zst, .br) whenever the client accepts it",
	"static-gzip-prefix":  "gw serves a static file's precompressed sibling (x.gz, .zst, .br) whenever the client accepts it",
	"static-gzip-ext":     "gw serves a static file's precompressed sibling (x.gz, .zst, .br) whenever the client accepts it",
	"static-gzip-suffix":  "gw serves a static file's precompressed sibling (x.gz, .zst, .br) whenever the client accepts it",
	"harakiri-verbose":    "gw logs a timed-out request and the runner it replaces",
	"py-call-osafterfork": "runners are started, not forked from a loaded master",
	"max-requests-delta":  "gw spreads the max_requests recycles of its runners itself",
	"cheaper-algo":        "gw adds runners while requests queue and retires them after worker_idle",
	"cheaper-step":        "gw adds runners while requests queue and retires them after worker_idle",
	"cheaper-overload":    "gw adds runners while requests queue and retires them after worker_idle",
	"cheaper-initial":     "gw starts min_workers runners and adds more while requests queue",
	"reload-mercy":        "gw drains a runner before it stops it (limits.shutdown_timeout bounds a stop)",
	"worker-reload-mercy": "gw drains a runner before it stops it (limits.shutdown_timeout bounds a stop)",
	"close-on-exec":       "gw's listeners are never inherited by app processes",
	"no-default-app":      "gw answers 404 where no mount matches",
	"log-master":          "gw collects its runners' output itself",
	"log-reopen":          "gw reopens log.file and log.access on SIGUSR1 (logrotate's postrotate)",
	"enable-metrics":      "gw serves /metrics on the stats listener",
}

// unsupported are options gw has no equivalent for, with why; families
// share a prefix (see prefixes).
var unsupported = map[string]string{
	"umask":                     "gw sets no umask",
	"auto-procname":             "gw does not rename runner processes",
	"add-header":                "gw adds no response headers; the app or a proxy in front can",
	"evil-reload-on-rss":        "gw has one memory limit per runner, max_rss, checked between requests",
	"reload-on-as":              "gw has one memory limit per runner, max_rss (RSS, not address space)",
	"evil-reload-on-as":         "gw has one memory limit per runner, max_rss (RSS, not address space)",
	"check-static":              "gw serves static files only under a static: prefix, not in front of the app",
	"import":                    "gw loads only the app; import the module from the app",
	"shared-import":             "gw loads only the app; import the module from the app",
	"python-import":             "gw loads only the app; import the module from the app",
	"http-timeout":              "gw has no separate gateway-to-app timeout; timeout: (harakiri) bounds a request",
	"wsgi-disable-file-wrapper": "gw's wsgi.file_wrapper cannot be switched off",
	"thread-stacksize":          "gw does not set thread stack sizes",
	"threads-stacksize":         "gw does not set thread stack sizes",
	"worker-exec":               "gw starts its own runner processes",
	"so-keepalive":              "gw does not set SO_KEEPALIVE on client sockets",
	"reuse-port":                "gw binds each listener once",
	"http-websockets":           "the HTTP router's websocket switch has no gw key; WebSockets reach the app as hijacked connections where the runner supports them",
	"max-worker-lifetime":       "gw recycles a runner by requests (max_requests) or memory (max_rss), not by age",
	"max-worker-lifetime-delta": "gw recycles a runner by requests (max_requests) or memory (max_rss), not by age",
	"harakiri-graceful-timeout": "gw kills a timed-out runner outright, after its other requests finish",
	"harakiri-graceful-signal":  "gw kills a timed-out runner outright, after its other requests finish",
	"idle":                      "gw does not stop all runners when idle; min_workers: 0 starts them on demand",
	"show-config":               "nothing to show: the gw.yaml is the config",
}

// prefixes give a reason to families of unsupported options.
var prefixes = []struct{ prefix, why string }{
	{"cheaper-busyness", "gw's scaler (min_workers, worker_idle) has no busyness tuning"},
	{"log-maxsize", "gw does not rotate its log itself: let logrotate rename log.file, then send SIGUSR1"},
	{"log-backupname", "gw does not rotate its log itself: let logrotate rename log.file, then send SIGUSR1"},
	{"log", "gw logs to stderr or log.file in one format (log.format: text or json) and has no log routing, encoders or filters"},
	{"req-logger", "gw writes the request log to one place (log.access: a file, or - with gw's log) in one format; it has no named loggers"},
	{"procname", "gw does not rename runner processes"},
	{"route", "gw has no internal routing rules (use host: and mount: per app)"},
	{"response-route", "gw has no internal routing rules"},
	{"final-route", "gw has no internal routing rules"},
	{"static-", "gw's static: has no per-path Expires, index or skip rules"},
	{"hook-", "gw runs no hooks: run the command before gw starts (ExecStartPre=, a container entrypoint)"},
	{"exec-", "gw runs no hooks: run the command before gw starts (ExecStartPre=, a container entrypoint)"},
	{"call-", "gw runs no hooks: run the command before gw starts (ExecStartPre=, a container entrypoint)"},
	{"spooler", "gw's spooler has no tuning: runner 1 runs the jobs of spooler: DIR"},
	{"mule", "gw has no mules; run the work as a daemon (daemons:) or a separate service"},
	{"farm", "gw has no mules; run the work as a daemon (daemons:) or a separate service"},
	{"cache", "gw's uwsgi cache is one LRU per app (cache_size, 64 MiB unless set): it has no other options"},
	{"emperor", "gw has no emperor: one gw serves many apps (apps:, and apps_dir: a directory of app files, watched)"},
	{"vassal", "gw has no emperor: one gw serves many apps (apps:, and apps_dir: a directory of app files, watched)"},
	{"gevent", "gw runs threads (threads:), not an event loop inside the runner"},
	{"async", "gw runs threads (threads:), not an event loop inside the runner"},
	{"ugreen", "gw runs threads (threads:), not an event loop inside the runner"},
	{"asyncio", "gw runs threads (threads:), not an event loop inside the runner"},
	{"tornado", "gw runs threads (threads:), not an event loop inside the runner"},
	{"greenlet", "gw runs threads (threads:), not an event loop inside the runner"},
	{"alarm", "gw has no alarms; alert on /metrics"},
	{"metric", "gw exposes /metrics for Prometheus to scrape; it pushes nothing"},
	{"carbon", "gw exposes /metrics for Prometheus to scrape; it pushes nothing"},
	{"stats-push", "gw exposes /metrics for Prometheus to scrape; it pushes nothing"},
	{"signal", "gw has no uWSGI signals"},
	{"touch-", "gw has no touch triggers other than touch_reload"},
	{"legion", "gw has no clustering"},
	{"cgroup", "gw makes a cgroup per app itself from limits: memory_max, pids_max, cpu_weight; it joins no named cgroup"},
	{"namespace", "gw does no isolation of its own"},
	{"unshare", "gw does no isolation of its own"},
	{"cap", "gw does no isolation of its own"},
	{"chroot", "gw does no isolation of its own"},
	{"jail", "gw does no isolation of its own"},
	{"ssl-", "gw's TLS settings are cert: and key: (Go's defaults for the rest)"},
	{"https-", "gw's TLS settings are cert: and key: (Go's defaults for the rest)"},
	{"http-", "gw's HTTP listener has no uWSGI HTTP-router switches"},
	{"harakiri-", "gw kills a timed-out runner outright, after its other requests finish"},
	{"reload-on-", "gw has one memory limit per runner, max_rss"},
	{"php-", "gw runs php-cgi with its own php.ini handling; this php plugin option has no gw key"},
	{"py", "this Python plugin option has no gw key"},
	{"rack", "this Rack plugin option has no gw key"},
	{"psgi", "this PSGI plugin option has no gw key"},
	{"perl", "this PSGI plugin option has no gw key"},
}

// reasonFor says why a known option is not supported.
func reasonFor(key string) string {
	if why, ok := unsupported[key]; ok {
		return why
	}
	for _, p := range prefixes {
		if strings.HasPrefix(key, p.prefix) {
			return p.why
		}
	}
	return "no gw equivalent"
}
