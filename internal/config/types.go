// Package config turns flags, GW_* environment variables and a YAML file into
// typed structs, once, at the edge. Nothing outside this package reads viper.
package config

import (
	"net/netip"
	"time"
)

// Lang is the language of an app.
type Lang string

// The languages gw hosts. LangAuto is resolved by Detect before use.
const (
	LangAuto   Lang = "auto"
	LangPython Lang = "python"
	LangRuby   Lang = "ruby"
	LangPerl   Lang = "perl"
	LangPHP    Lang = "php"
	LangGo     Lang = "go"
)

// Interface is how a Python app is called: WSGI (PEP 3333) or ASGI 3.
type Interface string

// The interfaces of a Python app. InterfaceAuto lets the runner decide once
// it has imported the app: a coroutine function, or an object whose
// __call__ is one, is ASGI (NGINX Unit's rule); anything else is WSGI.
const (
	InterfaceAuto Interface = "auto"
	InterfaceWSGI Interface = "wsgi"
	InterfaceASGI Interface = "asgi"
)

// Size is a byte count parsed from "64KiB", "512MiB", "1GiB", "4096".
type Size int64

// Addr is a listen address: Network is "tcp" or "unix"; Address is
// "host:port" or a socket path. The zero Addr means "not set".
type Addr struct {
	Network string
	Address string
}

// IsZero reports whether the address is unset.
func (a Addr) IsZero() bool { return a.Address == "" }

// String gives the address back in the form the user writes it.
func (a Addr) String() string {
	if a.Network == "unix" {
		return "unix:" + a.Address
	}
	return a.Address
}

// Config is the whole validated configuration of one gw process.
type Config struct {
	Listen Listen
	Limits Limits
	Proxy  Proxy
	Apps   []App
	// Daemons are the processes gw keeps running beside the apps; Cron the
	// commands it runs on a schedule (daemons.go).
	Daemons []Daemon
	Cron    []CronJob
	// AppsDir is the directory of one-app files gw watches ("" = none);
	// AppFiles are its files as Load found them, by path: each holds one
	// app of Apps or was refused (appsdir.go).
	AppsDir  string
	AppFiles []AppFile
	// File is the config file it came from ("" when built from flags only).
	File string
	// User and Group are what the runners (and, after binding, gw) run as:
	// --uid / --gid, a name or a number; "" leaves them unchanged.
	User  string
	Group string
	// AllowRoot lets runners run as root when gw does and no User is set;
	// otherwise gw refuses to start them as root.
	AllowRoot bool
	// MaxRunners caps runner processes across all apps (0 = no cap); apps
	// share it by Weight when they contend.
	MaxRunners int
	// CgroupRoot is the cgroup v2 mount for the apps' cgroups; "" finds
	// the machine's (internal/cgroup.New).
	CgroupRoot string
	// Compress is the default for each app's Compress; CompressMin the
	// smallest declared body compressed.
	Compress    bool
	CompressMin Size
	Log         Log
	// PIDFile is where gw writes its process id once it serves ("" = no
	// file); an upgrade's new gw writes it when it takes over.
	PIDFile string
}

// Log says how gw logs.
type Log struct {
	Format string // "text" or "json"
	Access string // "" = off, "-" = with gw's log (File, else stderr), else a file path
	File   string // gw's own log: "" = stderr, else a file path (uWSGI's logto)
}

// Listen holds the listeners. At least one is set after Load: HTTP defaults
// to ":8080" when no listener is given.
type Listen struct {
	HTTP  Addr
	HTTPS Addr
	// HTTP3 is the UDP address of the HTTP/3 (QUIC) listener (Network
	// "udp"); it shares HTTPS's certificate and is advertised by Alt-Svc.
	HTTP3   Addr
	UWSGI   Addr
	FastCGI Addr
	// More are the listeners after the first of a kind, in config order:
	// listen.http, https, uwsgi and fastcgi each take a list (uWSGI's
	// repeated socket =). HTTP, HTTPS, UWSGI and FastCGI are the firsts.
	More        []MoreAddr
	Stats       Addr
	Control     Addr   // gw ctl's socket: always unix (Network "unix") or zero
	ChmodSocket uint32 // mode for unix-socket listeners, default 0660
	ChownSocket Owner  // owner of unix-socket listeners; zero = gw's
	H2C         bool   // HTTP/2 without TLS on the HTTP listener
	// ProxyProtocol expects a PROXY header (v1 or v2) on every connection
	// to the TCP listeners, from Proxy.Trusted peers only.
	ProxyProtocol bool
	// RedirectHTTPS makes the HTTP listener answer 308 to the HTTPS one,
	// but for ACME HTTP-01 challenges.
	RedirectHTTPS bool
	TLS           TLS // certificate for HTTPS: Cert and Key, or ACME, whenever HTTPS is set
}

// MoreAddr is one more listener of a kind: its protocol ("http",
// "https", "uwsgi", "fastcgi") and address.
type MoreAddr struct {
	Proto string
	Addr  Addr
}

// Proxy says whose X-Forwarded-* or Forwarded headers (and PROXY
// protocol headers) gw believes (docs/design/proxy.md).
type Proxy struct {
	// Trusted are the proxies' addresses; none (the default) trusts nobody.
	Trusted []netip.Prefix
	// TrustUnix trusts every peer of a unix-socket listener ("unix").
	TrustUnix bool
	// Headers is "x-forwarded" (the default) or "forwarded" (RFC 7239).
	Headers string
}

// Owner is who a file should belong to: a user and a group, each a name or
// a number, "" for unchanged. Names are looked up when the file is made, as
// for --uid, so `gw check` on another machine does not need them.
type Owner struct {
	User, Group string
}

// IsZero reports whether o changes nothing.
func (o Owner) IsZero() bool { return o == Owner{} }

// TLS names the PEM files of the HTTPS listener. They are paths, not
// contents, because they are re-read on SIGHUP.
type TLS struct {
	Cert string // certificate chain
	Key  string // private key
	ACME *ACME  // certificates from an ACME CA instead of Cert and Key; nil = none
}

// ACME is automatic HTTPS: the CA gw gets and renews the HTTPS listener's
// certificates from.
type ACME struct {
	Domains []string // names the certificate covers, obtained at start
	Email   string   // account contact; "" = none
	CA      string   // directory URL
	// CARoot is a PEM file of roots to trust for the CA's own HTTPS (a
	// private CA, pebble); "" = the system's.
	CARoot        string
	Storage       string        // directory of the account, certificates and keys
	RenewInterval time.Duration // how often certificates are checked for renewal
}

// Limits are gateway-wide request limits.
type Limits struct {
	MaxHeader         Size          // --max-header, default 64KiB
	MaxBody           Size          // --max-body, default 1GiB
	ReadHeaderTimeout time.Duration // default 10s
	IdleTimeout       time.Duration // keep-alive idle, default 75s
	ShutdownTimeout   time.Duration // bound on draining at SIGTERM, default 30s
	ShutdownDelay     time.Duration // /readyz 503 while still serving, before draining

	// Response buffering: what a slow client has not taken yet, per answer.
	ResponseBuffer  Size          // memory, default 128KiB; 0 = no buffering
	ResponseTempMax Size          // temp file past the memory, default 1GiB; 0 = memory only
	SendTimeout     time.Duration // a buffered answer's client idle this long is cut off; 0 = never
	// Request bodies.
	BodyBufferSize   Size          // kept in memory, the rest in a file; default 64KiB
	BodyTimeout      time.Duration // between two body reads, 408 beyond; default 60s
	LingeringTime    time.Duration // discarding an unread body after the answer; 0 = off, default 30s
	LingeringTimeout time.Duration // between two reads while discarding; default 5s
	// WebSockets.
	WebSocketMaxMessage Size          // largest client message, 1009 beyond; default 1MiB
	WebSocketPing       time.Duration // keep-alive ping interval and pong wait; 0 = off, default 30s
	// permessage-deflate (RFC 7692) when the client offers it: one of
	// the WSCompression values; default off.
	WebSocketCompression string
}

// WebSocket compression modes (limits.websocket_compression).
const (
	WSCompressionOff             = "off"              // never negotiated
	WSCompressionOn              = "on"               // each message on its own (no context takeover): memory only while a message is compressed
	WSCompressionContextTakeover = "context-takeover" // a 32 KiB window kept per connection and direction: better ratio, more memory
)

// App is one hosted application.
type App struct {
	Name          string
	Lang          Lang // never LangAuto after Load
	Path          string
	Dir           string        // import root for module:callable ("" = dir of Path or cwd)
	Callable      string        // "" = language default
	Mount         string        // "/" or "/prefix" without trailing slash
	Host          string        // "" = any host; lower-case, no port
	Workers       int           // the ceiling; default: number of CPUs
	MinWorkers    int           // the floor, in [0, Workers]; default Workers (fixed); 0 = on demand
	WorkerIdle    time.Duration // retire a runner above the floor idle this long (default 30s)
	Weight        int           // share of max_runners against other apps (default 1)
	Threads       int           // 0 = not set: the language's default (1; ASGI 64; Go 32)
	Interface     Interface     // python only; InterfaceAuto unless set
	Timeout       time.Duration
	MaxRequests   int
	MaxRSS        Size // 0 = off
	QueueSize     int  // requests that may wait for a free runner, default 1024
	MaxWebSockets int  // open WebSockets, 503 beyond; 0 = no limit; default 10000
	QueueWait     time.Duration
	SlowAfter     time.Duration     // log the runner's stacks past this; 0 = off
	Env           map[string]string // case preserved
	Interpreter   string
	Spooler       string // uWSGI spooler directory (Python; gw_wsgi.py section 11); "" = none
	CacheSize     Size   // bytes of the app's uwsgi.cache_* (Python); default 64MiB
	Venv          string
	Static        map[string]string // URL prefix -> directory, case preserved
	User, Group   string            // what the runners run as ("" = Config's)
	Checksum      []byte            // sha256 a Go plugin binary must have (nil = unchecked)
	Limits        AppLimits         // per-app resource limits (limits.go)
	// ResponseBuffering frees the runner from slow clients (default true).
	ResponseBuffering bool
	// Reload reloads the app when its source files change (--reload).
	Reload bool
	// TouchReload are files whose change reloads the app (absolute).
	TouchReload []string
	// Sendfile are the directories (absolute) an X-Sendfile or
	// X-Accel-Redirect answer may name files under; none: such headers
	// pass through untouched.
	Sendfile []string
	// Compress compresses this app's compressible answers (default: the
	// top-level compress).
	Compress bool
	// RequestBuffering reads the whole body before the app gets a runner
	// (default); false streams it (nginx's proxy_request_buffering off).
	RequestBuffering bool
}
