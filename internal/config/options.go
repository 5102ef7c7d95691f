package config

import (
	"runtime"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// kind is the shape of an option's value.
type kind int

const (
	kindString  kind = iota // one value; parsed to its real type by Load
	kindInt                 // a whole number; a typed flag so "--workers x" is a usage error
	kindList                // repeatable flag, comma-separated in env, a mapping in YAML
	kindMap                 // YAML only: a mapping whose keys keep their case
	kindBool                // true or false; a flag given alone means true
	kindStrings             // YAML only: a list of single values
)

// option declares one setting once. key is the viper key and also the YAML
// path, with "app." standing for each entry of the apps: list; flag is the
// long flag ("" = YAML only) and env its GW_ variable.
type option struct {
	key   string
	flag  string
	short string
	env   string
	def   string
	help  string
	kind  kind
}

// appPrefix marks the per-app options: one app from flags, or each entry
// of apps: in the file.
const appPrefix = "app."

// options is the whole option set, in the order --help lists it. It is
// built once and never changed.
var options = []option{
	{key: "", flag: "config", short: "c", env: "GW_CONFIG", help: "YAML config `FILE`: its listen:, limits: and apps:"},

	// The app.
	{key: "app.lang", flag: "lang", env: "GW_LANG", def: "auto", help: "app `LANG`: python, ruby, perl, php, go, or auto (decided from APP)"},
	{key: "app.path", help: "APP: a file, a directory or module:callable (positional argument)"},
	{key: "app.name", flag: "name", env: "GW_NAME", help: "app `NAME` in logs and stats (default: APP's base name without extension)"},
	{key: "app.dir", flag: "dir", env: "GW_DIR", help: "import root `DIR` for a module:callable APP"},
	{key: "app.callable", flag: "callable", env: "GW_CALLABLE", help: "WSGI or ASGI callable `NAME` (default application, then app)"},
	{key: "app.interface", flag: "interface", env: "GW_INTERFACE", def: "auto", help: "Python app `KIND`: wsgi, asgi, or auto (decided once the app is imported: a coroutine function, or an object whose __call__ is one, is ASGI)"},
	{key: "app.mount", flag: "mount", env: "GW_MOUNT", def: "/", help: "URL `PREFIX` the app is served under (SCRIPT_NAME)"},
	{key: "app.host", help: "Host header the app answers to (default any)"},
	{key: "app.workers", flag: "workers", env: "GW_WORKERS", def: strconv.Itoa(runtime.NumCPU()), help: "`N` runner processes for the app; the default is the number of CPUs", kind: kindInt},
	{key: "app.min_workers", flag: "min-workers", env: "GW_MIN_WORKERS", help: "`N` runners kept however idle (default: workers, a fixed pool); gw adds runners up to workers while requests wait; 0 = start them on demand"},
	{key: "app.worker_idle", flag: "worker-idle", env: "GW_WORKER_IDLE", def: "30s", help: "retire a runner above min_workers once idle for `DURATION`"},
	{key: "app.weight", flag: "weight", env: "GW_WEIGHT", def: "1", help: "the app's share (`N`, at least 1) of max_runners when apps compete for runners", kind: kindInt},
	{key: "app.threads", flag: "threads", env: "GW_THREADS", def: "1", help: "`N` threads per runner where the language has them; for ASGI the requests in flight per runner (default 64)", kind: kindInt},
	{key: "app.timeout", flag: "timeout", env: "GW_TIMEOUT", def: "60s", help: "hard per-request limit (`DURATION`): the runner is replaced, the client gets 504"},
	{key: "app.max_requests", flag: "max-requests", env: "GW_MAX_REQUESTS", def: "0", help: "recycle a runner after `N` requests (0 = never)", kind: kindInt},
	{key: "app.max_rss", flag: "max-rss", env: "GW_MAX_RSS", def: "0", help: "recycle a runner whose RSS exceeds `SIZE` (0 = off)"},
	{key: "app.slow_after", flag: "slow-after", env: "GW_SLOW_AFTER", def: "0s", help: "log the runner's stacks for a request still running after `DURATION` (0 = off; php-fpm's slowlog)"},
	{key: "app.queue_wait", flag: "queue-wait", env: "GW_QUEUE_WAIT", help: "how long a request may wait for a free runner (`DURATION`; default: the timeout); 503 beyond"},
	{key: "app.queue_size", flag: "queue-size", env: "GW_QUEUE_SIZE", def: "1024", help: "`N` requests that may wait for a free runner", kind: kindInt},
	{key: "app.checksum", flag: "checksum", env: "GW_CHECKSUM", help: "sha256 (hex) a Go plugin binary must have; checked before every start"},
	{key: "app.uid", help: "`USER` this app's runners run as (default: the global uid)"},
	{key: "app.gid", help: "`GROUP` this app's runners run as (default: the global gid)"},
	{key: "app.interpreter", flag: "interpreter", env: "GW_INTERPRETER", help: "python3, ruby, perl or php-cgi binary `PATH` (default: found on PATH)"},
	{key: "app.venv", flag: "venv", env: "GW_VENV", help: "Python virtualenv `DIR`"},
	{key: "app.spooler", flag: "spooler", env: "GW_SPOOLER", help: "existing `DIR` for a Python app's uWSGI spooler jobs (uwsgi.spool, @spool); kept across restarts"},
	{key: "app.cache_size", flag: "cache-size", env: "GW_CACHE_SIZE", def: "64MiB", help: "`SIZE` of a Python app's uWSGI cache (uwsgi.cache_*: keys, values and about 100 bytes per entry; least recently used out first)"},
	{key: "app.env", help: "environment variables for the app", kind: kindMap},
	{key: "app.response_buffering", flag: "response-buffering", env: "GW_RESPONSE_BUFFERING", def: "true", help: "buffer answers a slow client cannot take yet, freeing the runner; false writes through (nginx proxy_buffering; an app can also send X-Accel-Buffering: no)", kind: kindBool},
	// Reload on change: --reload watches the sources (development),
	// touch_reload a few files a deploy touches (production).
	{key: "app.reload", flag: "reload", env: "GW_RELOAD", def: "false", help: "development: reload the app when its source files change (its directory, recursively; php-cgi needs none, it reads scripts anew)", kind: kindBool},
	{key: "app.touch_reload", help: "files whose change (touch, write, create) reloads the app gracefully", kind: kindStrings},
	{key: "app.sendfile", help: "`DIR`s an answer's X-Sendfile or X-Accel-Redirect may name a file under; gw serves the file instead of the app's body", kind: kindStrings},
	{key: "app.compress", help: "override the top-level compress for this app (true or false)", kind: kindBool},
	{key: "app.static", flag: "static", env: "GW_STATIC", help: "serve `URL=DIR`: the files of DIR under the URL prefix, from the gateway (repeatable)", kind: kindList},

	// Listeners.
	{key: "listen.http", flag: "http", env: "GW_HTTP", help: "HTTP/1.1 listener `ADDR` (default :8080 when no listener is given; repeatable)", kind: kindList},
	{key: "listen.https", flag: "https", env: "GW_HTTPS", help: "HTTPS listener `ADDR`, HTTP/2 by ALPN (needs --cert and --key, or --acme-domain; repeatable)", kind: kindList},
	{key: "listen.http3", flag: "http3", env: "GW_HTTP3", help: "HTTP/3 (QUIC) listener UDP `ADDR`, sharing the HTTPS certificate and advertised by Alt-Svc on HTTPS answers (needs --https)"},
	{key: "listen.tls.cert", flag: "cert", env: "GW_CERT", help: "PEM certificate chain `FILE` for --https"},
	{key: "listen.tls.key", flag: "key", env: "GW_KEY", help: "PEM private key `FILE` for --https"},
	// Automatic HTTPS (docs/design/acme.md): certificates from an ACME CA
	// instead of tls.cert and tls.key.
	{key: "listen.tls.acme.domains", flag: "acme-domain", env: "GW_ACME_DOMAIN", help: "`NAME` to get an ACME certificate for, instead of --cert and --key (repeatable)", kind: kindList},
	{key: "listen.tls.acme.email", flag: "acme-email", env: "GW_ACME_EMAIL", help: "contact `ADDRESS` for the ACME account (expiry notices)"},
	{key: "listen.tls.acme.ca", flag: "acme-ca", env: "GW_ACME_CA", def: "https://acme-v02.api.letsencrypt.org/directory", help: "ACME directory `URL` of the CA"},
	{key: "listen.tls.acme.ca_root", flag: "acme-ca-root", env: "GW_ACME_CA_ROOT", help: "PEM `FILE` of a root to trust for the ACME CA's own HTTPS (a private CA)"},
	{key: "listen.tls.acme.storage", flag: "acme-storage", env: "GW_ACME_STORAGE", help: "`DIR` keeping the ACME account, certificates and keys (default /var/lib/gw/acme as root, else $XDG_DATA_HOME/gw/acme)"},
	{key: "listen.tls.acme.renew_interval", flag: "acme-renew-interval", env: "GW_ACME_RENEW_INTERVAL", def: "10m", help: "how often (`DURATION`) gw checks its ACME certificates for renewal"},
	{key: "listen.redirect_https", flag: "redirect-https", env: "GW_REDIRECT_HTTPS", def: "false", help: "answer requests on the HTTP listener with a 308 to HTTPS (ACME HTTP-01 challenges excepted)", kind: kindBool},
	{key: "listen.uwsgi", flag: "uwsgi", env: "GW_UWSGI", help: "uwsgi-protocol listener `ADDR` (nginx uwsgi_pass; repeatable)", kind: kindList},
	{key: "listen.fastcgi", flag: "fastcgi", env: "GW_FASTCGI", help: "FastCGI listener `ADDR` (nginx fastcgi_pass; repeatable)", kind: kindList},
	{key: "listen.stats", flag: "stats", env: "GW_STATS", help: "stats, metrics and health listener `ADDR`"},
	{key: "listen.control", flag: "control", env: "GW_CONTROL", help: "control socket `unix:PATH` for gw ctl (mode 0600; unix sockets only)"},
	{key: "listen.h2c", flag: "h2c", env: "GW_H2C", def: "false", help: "also accept HTTP/2 without TLS (h2c) on the HTTP listener", kind: kindBool},
	{key: "listen.proxy_protocol", flag: "proxy-protocol", env: "GW_PROXY_PROTOCOL", def: "false", help: "expect a PROXY protocol header (v1 or v2) on every connection to the TCP listeners, from --trusted-proxy peers only", kind: kindBool},
	{key: "listen.chmod_socket", flag: "chmod-socket", env: "GW_CHMOD_SOCKET", def: "0660", help: "octal `MODE` of unix-socket listeners"},
	// uWSGI's chown-socket; php-fpm's listen.owner and listen.group.
	{key: "listen.chown_socket", flag: "chown-socket", env: "GW_CHOWN_SOCKET", help: "`USER[:GROUP]` (or :GROUP) that owns unix-socket listeners, e.g. www-data:www-data for nginx"},

	// Proxies in front (docs/design/proxy.md).
	{key: "proxy.trusted", flag: "trusted-proxy", env: "GW_TRUSTED_PROXY", help: "`CIDR` (or IP, unix, *) of a proxy whose forwarding headers set the client address, scheme and host the app sees (repeatable); none by default", kind: kindList},
	{key: "proxy.headers", flag: "proxy-headers", env: "GW_PROXY_HEADERS", def: "x-forwarded", help: "forwarding headers believed from trusted proxies (`KIND`): x-forwarded or forwarded (RFC 7239)"},

	// Limits.
	{key: "limits.max_header", flag: "max-header", env: "GW_MAX_HEADER", def: "64KiB", help: "largest request head accepted (`SIZE`), 431 beyond"},
	{key: "limits.max_body", flag: "max-body", env: "GW_MAX_BODY", def: "1GiB", help: "largest request body accepted (`SIZE`), 413 beyond"},
	{key: "limits.read_header_timeout", flag: "read-header-timeout", env: "GW_READ_HEADER_TIMEOUT", def: "10s", help: "`DURATION` a client has to send the request head"},
	{key: "limits.idle_timeout", flag: "idle-timeout", env: "GW_IDLE_TIMEOUT", def: "75s", help: "keep-alive idle `DURATION` before a connection is closed"},
	// Request bodies (nginx's client_body_buffer_size, client_body_timeout,
	// lingering_time and lingering_timeout; proxy_request_buffering per app).
	{key: "limits.body_buffer_size", flag: "body-buffer-size", env: "GW_BODY_BUFFER_SIZE", def: "64KiB", help: "request body `SIZE` kept in memory; larger bodies are buffered in a temporary file"},
	{key: "limits.body_timeout", flag: "body-timeout", env: "GW_BODY_TIMEOUT", def: "60s", help: "longest wait (`DURATION`) between two reads of a request body, 408 beyond"},
	{key: "limits.lingering_time", flag: "lingering-time", env: "GW_LINGERING_TIME", def: "30s", help: "after answering, discard an unread request body for up to `DURATION` so the client reads the answer (0 = off)"},
	{key: "limits.lingering_timeout", flag: "lingering-timeout", env: "GW_LINGERING_TIMEOUT", def: "5s", help: "longest wait (`DURATION`) for more of an unread body while discarding it"},
	{key: "app.request_buffering", flag: "request-buffering", env: "GW_REQUEST_BUFFERING", def: "true", help: "read the whole request body before the app gets a runner; false streams it to the app as it arrives", kind: kindBool},

	// WebSockets (docs/design/websocket.md).
	{key: "limits.websocket_max_message", flag: "websocket-max-message", env: "GW_WEBSOCKET_MAX_MESSAGE", def: "1MiB", help: "largest WebSocket message a client may send (`SIZE`); beyond it gw closes with 1009"},
	{key: "limits.websocket_ping", flag: "websocket-ping", env: "GW_WEBSOCKET_PING", def: "30s", help: "ping idle WebSocket clients every `DURATION` and close those that do not answer within it (0 = off)"},
	{key: "limits.websocket_compression", flag: "websocket-compression", env: "GW_WEBSOCKET_COMPRESSION", def: "off", help: "permessage-deflate for WebSockets whose client offers it (`MODE`): off, on (each message compressed alone) or context-takeover (a 32 KiB window per connection: better ratio, more memory)"},
	{key: "app.max_websockets", flag: "max-websockets", env: "GW_MAX_WEBSOCKETS", def: "10000", help: "`N` open WebSockets per app; beyond it the handshake gets 503 (0 = no limit)", kind: kindInt},

	{key: "limits.shutdown_timeout", flag: "shutdown-timeout", env: "GW_SHUTDOWN_TIMEOUT", def: "30s", help: "`DURATION` in-flight requests get to finish at SIGTERM"},

	// Response buffering (nginx proxy_buffering): the part of an answer a
	// slow client has not taken yet waits in gw, so the runner is freed.
	{key: "limits.response_buffer", flag: "response-buffer", env: "GW_RESPONSE_BUFFER", def: "128KiB", help: "memory per answer (`SIZE`) for what a slow client has not taken yet, so its runner is freed (0 = no buffering)"},
	{key: "limits.response_temp_max", flag: "response-temp-max", env: "GW_RESPONSE_TEMP_MAX", def: "1GiB", help: "temp file per answer (`SIZE`) past the memory (0 = memory only); beyond it the app waits for the client"},
	{key: "limits.send_timeout", flag: "send-timeout", env: "GW_SEND_TIMEOUT", def: "60s", help: "cut off a client that takes no part of a buffered answer for `DURATION` (0 = never; nginx send_timeout)"},

	// Privileges.
	{key: "limits.shutdown_delay", flag: "shutdown-delay", env: "GW_SHUTDOWN_DELAY", def: "0s", help: "at SIGTERM, answer /readyz with 503 and keep serving for `DURATION` before draining, so load balancers stop sending"},
	{key: "log.format", flag: "log-format", env: "GW_LOG_FORMAT", def: "text", help: "log `FORMAT`: text or json"},
	{key: "log.file", flag: "log-file", env: "GW_LOG_FILE", help: "write gw's log (and its runners' and daemons' output) to `FILE`, appended to and reopened on SIGUSR1, instead of stderr (uWSGI's logto)"},
	{key: "log.access", flag: "access-log", env: "GW_ACCESS_LOG", def: "off", help: "access log `DEST`: off, - (with gw's log: stderr, or --log-file) or a file (reopened on SIGUSR1)"},
	// A cap across apps, shared by weight (runners/budget).
	{key: "max_runners", flag: "max-runners", env: "GW_MAX_RUNNERS", def: "0", help: "`N` runner processes at most across all apps, shared by each app's weight when they contend (0 = no cap)", kind: kindInt},
	// Where the apps' cgroups go (internal/cgroup): v2 at this mount.
	{key: "cgroup_root", flag: "cgroup-root", env: "GW_CGROUP_ROOT", help: "`DIR`: the cgroup v2 mount for the apps' cgroups (memory_max, pids_max, cpu_weight); default /sys/fs/cgroup when it is v2, else the v1 hierarchies"},
	// uWSGI's Emperor: a directory of one-app files that gw watches (appsdir.go).
	{key: "apps_dir", flag: "apps-dir", env: "GW_APPS_DIR", help: "`DIR` of one-app *.yaml files (the keys of an apps: entry) that gw watches: a new file starts its app, a changed one reloads it, a removed one stops it"},
	{key: "compress", flag: "compress", env: "GW_COMPRESS", def: "false", help: "compress answers (zstd, gzip) of compressible types above compress_min bytes for clients that accept it", kind: kindBool},
	{key: "compress_min", flag: "compress-min", env: "GW_COMPRESS_MIN", def: "1KiB", help: "smallest answer (`SIZE`, by its Content-Length) compress compresses; answers without one are compressed"},
	{key: "allow_root", flag: "allow-root", env: "GW_ALLOW_ROOT", def: "false", help: "let runners run as root when gw does and no --uid is given", kind: kindBool},
	// nginx's pid, unicorn's pid: what `kill -USR2 $(cat FILE)` reads. At
	// an upgrade (SIGUSR2) the new gw writes it once it serves.
	{key: "pid_file", flag: "pid-file", env: "GW_PID_FILE", help: "write gw's process id to `FILE` once it serves (the new gw's, after a SIGUSR2 upgrade)"},
	{key: "uid", flag: "uid", env: "GW_UID", help: "`USER` the runners (and, after binding, gw) run as"},
	{key: "gid", flag: "gid", env: "GW_GID", help: "`GROUP` the runners (and, after binding, gw) run as"},
}

// RegisterFlags adds every option that has a flag to fs, for `gw run`.
func RegisterFlags(fs *pflag.FlagSet) {
	for _, o := range options {
		if o.flag == "" {
			continue
		}
		switch o.kind {
		case kindInt:
			n, _ := strconv.Atoi(o.def) // defaults are literals, checked by TestOptionTable
			fs.IntP(o.flag, o.short, n, o.help)
		case kindList:
			fs.StringArrayP(o.flag, o.short, nil, o.help)
		case kindBool:
			fs.BoolP(o.flag, o.short, o.def == "true", o.help)
		default:
			fs.StringP(o.flag, o.short, o.def, o.help)
		}
	}
}

// lookup returns the option with the given key.
func lookup(key string) option {
	for _, o := range options {
		if o.key == key {
			return o
		}
	}
	panic("config: no option " + key) // programmer error: keys are literals
}

// appKeys lists the keys an entry of apps: may have.
func appKeys() []string {
	var keys []string
	for _, o := range options {
		if k, ok := strings.CutPrefix(o.key, appPrefix); ok {
			keys = append(keys, k)
		}
	}
	return keys
}
