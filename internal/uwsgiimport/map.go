package uwsgiimport

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/gwhq/gw/internal/cron"
)

// Kind is what became of one option.
type Kind int

// The kinds, in the order the summary counts them.
const (
	Mapped      Kind = iota // became a gw key
	Default                 // gw does it without being told
	Unsupported             // dropped: gw has no equivalent (yet); --strict fails
	Placeholder             // not an option: a name other values use as %(name)
	Evaluated               // config logic or an include, done at import
)

var kindNames = [...]string{"mapped", "default", "unsupported", "placeholder", "evaluated"}

func (k Kind) String() string { return kindNames[k] }

// Line is the report on one option.
type Line struct {
	Pos   string // FILE:LINE
	Key   string
	Value string
	Kind  Kind
	What  string
}

// String is the stable, greppable form printed on stderr:
// "uwsgi.ini:7: harakiri = 30 -> mapped: apps[0].timeout: 30s".
func (l Line) String() string {
	return fmt.Sprintf("%s: %s = %s -> %s: %s", l.Pos, l.Key, l.Value, l.Kind, l.What)
}

type kv struct{ k, v string }

// app is what the options say about the app (uWSGI loads all of its apps
// in every worker, so these settings hold for each gw app made from it).
type app struct {
	module, file, callable, chdir, venv string
	spooler                             string // uWSGI's spooler directory (gw_wsgi.py's)
	lang, path                          string // psgi, rack, php-docroot
	pythonpath                          []string
	workers, threads, minWorkers        int
	workersCPU                          bool // processes = %k: gw's default
	maxRequests                         int
	reload                              bool // py-autoreload
	timeout, workerIdle, maxRSS         string
	cacheBytes                          int64 // cache2 lines, summed (one LRU per app)
	cacheItems, cacheBlock              int64 // the legacy cache = ITEMS, cache-blocksize
	env, static                         []kv
	staticLines                         []int
	limits                              []kv // the app's limits: (rlimits)
}

type sock struct {
	key, value string
	line       int
}

type mountApp struct {
	prefix, target string
	line           int
}

type job struct {
	name, schedule string
	command        string
	line           int
}

// mapper turns the options into a gw config and a Line for each.
type mapper struct {
	in         Input
	base       string // the config's name without extension (%n)
	lines      []Line
	used       map[string]bool
	at         map[string]int // canonical key -> line of the value in force
	socks      []sock
	shared     []sock       // shared-socket lines, what socket = =N names
	sharedUsed map[int]bool // shared sockets some listener named
	protocol   string
	stats      sock
	chmod      string
	tlsCert    string
	tlsKey     string
	chown      string
	uid, gid   string
	pidFile    string    // pidfile, safe-pidfile: gw's pid_file
	logFile    [3]string // log.file from daemonize, logto, logto2: the last set wins, as in uWSGI
	reqLog     string    // req-logger = file:PATH: log.access
	limits     []kv
	app        app
	mounts     []mountApp
	daemons    []job
	crons      []job
	touch      []string
	appLines   []int // lines whose What names "{app}"
}

var unresolvedEnv = regexp.MustCompile(`\$\(([^)]*)\)`)

// apply maps one option and records its Line.
func (m *mapper) apply(o Option) {
	l := Line{Pos: o.Pos, Key: o.Key, Value: o.Value}
	if o.Flag {
		l.Value = "true"
	}
	i := len(m.lines)
	m.lines = append(m.lines, l)
	kind, what := m.classify(o, i)
	m.lines[i].Kind, m.lines[i].What = kind, what
}

func (m *mapper) classify(o Option, i int) (Kind, string) {
	switch {
	case o.bad:
		return Unsupported, o.note
	case o.note != "":
		return Evaluated, o.note
	case o.ph:
		return Placeholder, fmt.Sprintf("set with set-placeholder, used as %%(%s)", o.Key)
	}
	key, note := o.Key, ""
	if a, ok := aliases[key]; ok {
		key = a
	}
	if !known[key] {
		if dash := strings.ReplaceAll(key, "_", "-"); dash != key && known[dash] {
			key = dash
			if a, ok := aliases[key]; ok {
				key = a
			}
			note = fmt.Sprintf(" (read as %s; uWSGI itself reads only the dashed spelling and ignores %s)", dash, o.Key)
		} else if m.used[o.Key] {
			return Placeholder, fmt.Sprintf("not a uWSGI option: a name the config uses as %%(%s)", o.Key)
		} else {
			return Unsupported, "unknown uWSGI option (uWSGI makes it a placeholder and ignores it)"
		}
	}
	if v := unresolvedEnv.FindStringSubmatch(o.Value); v != nil {
		return Unsupported, fmt.Sprintf("needs $%s, which is not set where the import ran: import again with it set", v[1])
	}
	kind, what := m.option(key, o, i)
	return kind, what + note
}

// option maps one known option, by its canonical name.
func (m *mapper) option(key string, o Option, i int) (Kind, string) {
	v := o.Value
	switch key {
	case "processes":
		if strings.TrimSpace(o.Raw) == "%k" {
			m.app.workersCPU = true
			return Default, "one runner per CPU is gw's default"
		}
		return m.count(key, o, i, 1, func(n int) { m.app.workers = n }, "{app}.workers: %d")
	case "threads":
		return m.count(key, o, i, 1, func(n int) { m.app.threads = n }, "{app}.threads: %d")
	case "cheaper":
		n, rest, ok := leadingIntText(v)
		if !ok || n == 0 {
			return Default, "cheaper 0 is off: a fixed number of runners, as gw's default" + rest
		}
		m.app.minWorkers = int(n)
		return m.appKey(key, i, fmt.Sprintf("{app}.min_workers: %d%s", n, rest))
	case "cheaper-idle":
		return m.count(key, o, i, 1, func(n int) { m.app.workerIdle = fmt.Sprintf("%ds", n) }, "{app}.worker_idle: %ds")
	case "harakiri":
		n, rest, ok := leadingIntText(v)
		if !ok || n <= 0 {
			return Unsupported, "harakiri 0 means no limit; gw always has one (timeout:, 60s unless set)"
		}
		m.app.timeout = fmt.Sprintf("%ds", n)
		return m.appKey(key, i, fmt.Sprintf("{app}.timeout: %ds%s", n, rest))
	case "limit-as":
		return m.count(key, o, i, 16, func(n int) { m.app.limits = append(m.app.limits, kv{"memory", fmt.Sprintf("%dMiB", n)}) }, "{app}.limits.memory: %dMiB (RLIMIT_AS per runner)")
	case "max-fd":
		return m.count(key, o, i, 16, func(n int) { m.app.limits = append(m.app.limits, kv{"open_files", strconv.Itoa(n)}) }, "{app}.limits.open_files: %d")
	case "limit-nproc":
		return m.count(key, o, i, 1, func(n int) { m.app.limits = append(m.app.limits, kv{"processes", strconv.Itoa(n)}) }, "{app}.limits.processes: %d (per uid: give the app a uid of its own)")
	case "max-requests":
		return m.count(key, o, i, 0, func(n int) { m.app.maxRequests = n }, "{app}.max_requests: %d")
	case "reload-on-rss":
		return m.count(key, o, i, 1, func(n int) { m.app.maxRSS = fmt.Sprintf("%dMiB", n) }, "{app}.max_rss: %dMiB")
	case "limit-post":
		return m.limit(key, o, i, "limits.max_body", "%d")
	case "socket-timeout":
		return m.limit(key, o, i, "limits.body_timeout", "%ds")
	case "buffer-size":
		n, rest, ok := leadingIntText(v)
		switch {
		case !ok:
			return Unsupported, fmt.Sprintf("%q is not a number", v)
		case n <= 64*1024:
			return Default, "gw takes request heads up to 64KiB (limits.max_header)" + rest
		}
		return m.limit(key, o, i, "limits.max_header", "%d")
	case "module":
		m.app.module = v
		return m.appKey(key, i, "{app}.path")
	case "wsgi-file":
		m.app.file = v
		return m.appKey(key, i, "{app}.path")
	case "callable":
		m.app.callable = v
		return m.appKey(key, i, "{app}.path")
	case "chdir":
		m.app.chdir = v
		return m.appKey(key, i, "{app}.dir: "+v)
	case "pythonpath":
		m.app.pythonpath = append(m.app.pythonpath, v)
		m.appLines = append(m.appLines, i)
		return Mapped, "{app}.dir or env.PYTHONPATH"
	case "virtualenv":
		m.app.venv = v
		return m.appKey(key, i, "{app}.venv: "+v)
	case "spooler":
		m.app.spooler = v
		return m.appKey(key, i, "{app}.spooler: "+v+" (the directory must exist; runner 1 runs the jobs)")
	case "cache2":
		n, err := cache2Size(v)
		if err != nil {
			return Unsupported, err.Error()
		}
		m.app.cacheBytes += n // repeatable: each line is a cache of its own
		m.appLines = append(m.appLines, i)
		return Mapped, fmt.Sprintf("{app}.cache_size: %d bytes (items x blocksize%s)", n, cacheNote)
	case "cache":
		return m.count(key, o, i, 1, func(n int) { m.app.cacheItems = int64(n) },
			"{app}.cache_size: %d items x cache-blocksize"+cacheNote)
	case "cache-blocksize":
		return m.count(key, o, i, 1, func(n int) { m.app.cacheBlock = int64(n) },
			"{app}.cache_size: the legacy cache's items x %d")
	case "psgi", "rack", "php-docroot":
		m.app.lang = map[string]string{"psgi": "perl", "rack": "ruby", "php-docroot": "php"}[key]
		m.app.path = v
		return m.appKey(key, i, "{app}.path: "+v)
	case "env":
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return Unsupported, "env without NAME=VALUE: uWSGI's unset form has no gw key"
		}
		m.app.env = append(m.app.env, kv{k, val})
		m.appLines = append(m.appLines, i)
		return Mapped, "{app}.env." + k
	case "static-map", "static-map2":
		url, dir, ok := strings.Cut(v, "=")
		if !ok || url == "" || dir == "" {
			return Unsupported, "want URL=DIR"
		}
		if key == "static-map2" {
			dir = strings.TrimSuffix(dir, "/") + "/" + strings.TrimPrefix(url, "/")
		}
		m.app.static = append(m.app.static, kv{url, dir})
		m.app.staticLines = append(m.app.staticLines, i)
		return Mapped, "static"
	case "mount":
		prefix, target, ok := strings.Cut(v, "=")
		if !ok || target == "" {
			return Unsupported, "want PREFIX=APP"
		}
		m.mounts = append(m.mounts, mountApp{prefix, target, i})
		return Mapped, "an app of its own"
	case "socket", "http", "http-socket", "https", "https-socket", "fastcgi-socket":
		m.socks = append(m.socks, sock{key, v, i})
		return Mapped, "listen"
	case "shared-socket":
		m.shared = append(m.shared, sock{key, v, i})
		return Mapped, "a listener that names it (=N) binds it; gw binds every listener before it drops root (--uid)"
	case "protocol":
		m.protocol = v
		switch v {
		case "uwsgi", "http", "fastcgi":
			return Default, "sets what socket = speaks (" + v + ")"
		}
		return Unsupported, "gw's listeners speak http, uwsgi or fastcgi"
	case "stats":
		m.stats = sock{key, v, i}
		return Mapped, "listen.stats"
	case "chmod-socket":
		mode := strings.TrimSpace(v)
		if o.Flag || mode == "" {
			mode = "666"
		}
		if !strings.HasPrefix(mode, "0") {
			mode = "0" + mode
		}
		m.chmod = mode
		return m.global(key, i, "listen.chmod_socket: "+mode)
	case "chown-socket":
		m.chown = v
		return m.global(key, i, "listen.chown_socket: "+v)
	case "uid":
		m.uid = v
		return m.global(key, i, "uid: "+v)
	case "gid":
		m.gid = v
		return m.global(key, i, "gid: "+v)
	case "pidfile", "pidfile2", "safe-pidfile", "safe-pidfile2":
		// gw writes it once it serves, and a SIGUSR2 upgrade rewrites it
		// with the new gw's pid (safe-pidfile's point).
		m.pidFile = v
		return m.global(key, i, "pid_file: "+v)
	case "logto", "logto2", "daemonize", "daemonize2", "logger":
		return m.logTo(key, o, i)
	case "req-logger":
		if s := strings.TrimSpace(v); s == "stdio" || s == "stdio:" {
			m.reqLog = "-"
			return m.global(key, i, "log.access: - (with gw's log: stderr, or log.file)")
		}
		path, ok := strings.CutPrefix(strings.TrimSpace(v), "file:")
		if !ok || path == "" {
			return Unsupported, reasonFor(key)
		}
		m.reqLog = path
		return m.global(key, i, "log.access: "+path+" (reopened on SIGUSR1)")
	case "touch-reload":
		// Repeatable: every file counts. A missing one is fine, for both.
		m.touch = append(m.touch, v)
		m.appLines = append(m.appLines, i)
		return Mapped, "{app}.touch_reload"
	case "py-autoreload":
		n, _, ok := leadingIntText(v)
		if !ok || n <= 0 {
			return Default, "off here; gw reloads on source changes only when asked (reload: true, gw run --reload)"
		}
		m.app.reload = true
		return m.appKey(key, i, "{app}.reload: true (gw is told of changes by inotify: no scan interval; for development)")
	case "attach-daemon", "attach-daemon2", "smart-attach-daemon", "smart-attach-daemon2", "attach-control-daemon":
		return m.daemon(key, o, i)
	case "cron", "unique-cron", "cron2", "unique-cron2":
		return m.cron(key, o, i)
	case "hook-master-start":
		if strings.Contains(v, "gracefully_kill_them_all") {
			return Default, "SIGTERM stops gw gracefully"
		}
	}
	if why, ok := defaults[key]; ok {
		if o.Flag || isTrue(v) {
			return Default, why
		}
		return Default, "off here; " + why
	}
	return Unsupported, reasonFor(key)
}

// cacheNote says what differs from uWSGI's caches.
const cacheNote = "; gw keeps every cache of the app in one LRU of the sum of their sizes, " +
	"by name, and pushes the least recently used out when full"

// cacheBlock is uWSGI's default cache block size.
const cacheBlock = 65536

// cache2Size is the bytes a cache2 line holds: blocks (or items) times
// blocksize, as uWSGI sizes it.
func cache2Size(v string) (int64, error) {
	items, block, blocks := int64(0), int64(cacheBlock), int64(0)
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(kv), "=")
		n, ok := leadingInt(val)
		switch k {
		case "items", "max_items", "maxitems":
			items = n
		case "blocksize":
			block = n
		case "blocks":
			blocks = n
		default:
			continue
		}
		if !ok || n <= 0 {
			return 0, fmt.Errorf("cache2 %s=%q: want a whole number above 0", k, val)
		}
	}
	if blocks == 0 {
		blocks = items
	}
	if blocks == 0 {
		return 0, fmt.Errorf("cache2 without items=: uWSGI refuses it")
	}
	return blocks * block, nil
}

// isTrue is uwsgi_opt_true: anything but false, off, no and 0.
func isTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "false", "off", "no", "0":
		return false
	}
	return true
}

// leadingIntText reads a number as uWSGI's atoi does and says what it
// ignored (people write "65536  # comment": ini has no inline comments).
func leadingIntText(v string) (int64, string, bool) {
	n, ok := leadingInt(v)
	if !ok {
		return 0, "", false
	}
	t := strings.TrimLeft(strings.TrimSpace(v), "+-")
	j := 0
	for j < len(t) && t[j] >= '0' && t[j] <= '9' {
		j++
	}
	if rest := strings.TrimSpace(t[j:]); rest != "" {
		return n, fmt.Sprintf(" (uWSGI reads the leading number; %q after it is ignored: ini has no inline comments)", rest), true
	}
	return n, "", true
}

// count maps a whole number of at least least to an app key.
func (m *mapper) count(key string, o Option, i, least int, set func(int), format string) (Kind, string) {
	n, rest, ok := leadingIntText(o.Value)
	if !ok || n < int64(least) {
		return Unsupported, fmt.Sprintf("%q: want a whole number of at least %d", o.Value, least)
	}
	set(int(n))
	return m.appKey(key, i, fmt.Sprintf(format, n)+rest)
}

// limit maps a whole number to a key under limits:.
func (m *mapper) limit(key string, o Option, i int, gwKey, format string) (Kind, string) {
	n, rest, ok := leadingIntText(o.Value)
	if !ok || n <= 0 {
		return Unsupported, fmt.Sprintf("%q: want a whole number above 0", o.Value)
	}
	val := fmt.Sprintf(format, n)
	name := strings.TrimPrefix(gwKey, "limits.")
	for j := range m.limits {
		if m.limits[j].k == name {
			m.limits = append(m.limits[:j], m.limits[j+1:]...)
			break
		}
	}
	m.limits = append(m.limits, kv{name, val})
	return m.global(key, i, gwKey+": "+val+rest)
}

// appKey records an app setting; a later value replaces an earlier one.
func (m *mapper) appKey(key string, i int, what string) (Kind, string) {
	m.appLines = append(m.appLines, i)
	return m.global(key, i, what)
}

func (m *mapper) global(key string, i int, what string) (Kind, string) {
	if prev, ok := m.at[key]; ok {
		m.lines[prev].What += fmt.Sprintf(" (replaced by %s)", m.lines[i].Pos)
	}
	m.at[key] = i
	return Mapped, what
}

// logTo maps the options that send uWSGI's log to a file to log.file.
// uWSGI's order holds whatever the lines' order: logto2 (opened after the
// privileges drop) over logto over daemonize's file. gw opens the file
// once, before it drops root: logrotate's "create" should give the new
// file to the user gw runs as.
func (m *mapper) logTo(key string, o Option, i int) (Kind, string) {
	v := strings.TrimSpace(o.Value)
	rank := map[string]int{"daemonize": 0, "daemonize2": 0, "logto": 1, "logger": 1, "logto2": 2}[key]
	switch {
	case key == "logger" && (v == "stdio" || v == "stdio:"):
		return Default, "gw logs to stderr unless log.file is set"
	case key == "logger":
		p, ok := strings.CutPrefix(v, "file:")
		if !ok || p == "" {
			return Unsupported, reasonFor(key)
		}
		v = p
	case strings.HasPrefix(key, "daemonize") && (o.Flag || v == "" || v == "true" || v == "1"):
		return Default, "gw does not fork into the background: systemd (Type=notify) or docker runs it, and collects its stderr"
	case !strings.HasPrefix(v, "/") && strings.Contains(v, ":"):
		return Unsupported, "gw logs to stderr or a file, not to a UDP address: let journald or syslog forward it"
	}
	what := "log.file: " + v + " (gw's log and its runners' output; reopened on SIGUSR1)"
	if strings.HasPrefix(key, "daemonize") {
		what += "; gw does not fork into the background: systemd (Type=notify) or docker runs it"
	}
	for r := rank + 1; r < len(m.logFile); r++ {
		if m.logFile[r] != "" {
			return Mapped, what + fmt.Sprintf(" (not used: %s wins, as in uWSGI)", m.lines[m.at[logRank(r)]].Pos)
		}
	}
	for r := 0; r <= rank; r++ {
		if m.logFile[r] != "" {
			m.lines[m.at[logRank(r)]].What += fmt.Sprintf(" (replaced by %s)", m.lines[i].Pos)
			m.logFile[r] = ""
		}
	}
	m.logFile[rank] = v
	m.at[logRank(rank)] = i
	return Mapped, what
}

// logRank is the m.at key of the line that set m.logFile[r].
func logRank(r int) string { return "log.file/" + strconv.Itoa(r) }

// logFilePath is the log.file the options settled on, "" for none.
func (m *mapper) logFilePath() string {
	for r := len(m.logFile) - 1; r >= 0; r-- {
		if m.logFile[r] != "" {
			return m.logFile[r]
		}
	}
	return ""
}

// daemon maps attach-daemon and its kin to daemons:, run by sh -c as
// uWSGI runs them.
func (m *mapper) daemon(key string, o Option, i int) (Kind, string) {
	cmd := o.Value
	switch key {
	case "smart-attach-daemon", "smart-attach-daemon2":
		// "PIDFILE COMMAND": gw supervises the process itself.
		if _, c, ok := strings.Cut(strings.TrimSpace(cmd), " "); ok {
			cmd = strings.TrimSpace(c)
		}
	case "attach-daemon2":
		cmd = ""
		for _, f := range strings.Split(o.Value, ",") {
			if c, ok := strings.CutPrefix(f, "cmd="); ok {
				cmd = c
			}
		}
	}
	if cmd == "" {
		return Unsupported, "no command found"
	}
	m.daemons = append(m.daemons, job{name: jobName(cmd), command: cmd, line: i})
	return Mapped, "daemons: (restart: always)"
}

// cron maps cron (M H D MON WDAY CMD, -1 = any, -N = every N) and cron2
// (minute=..,hour=.. CMD) to cron:, checked with gw's own schedule parser.
func (m *mapper) cron(key string, o Option, i int) (Kind, string) {
	var fields []string
	var cmd string
	if strings.HasSuffix(key, "2") {
		spec, c, _ := strings.Cut(strings.TrimSpace(o.Value), " ")
		cmd = strings.TrimSpace(c)
		kv := map[string]string{}
		for _, f := range strings.Split(spec, ",") {
			k, v, _ := strings.Cut(f, "=")
			kv[k] = v
		}
		for _, k := range []string{"minute", "hour", "day", "month", "week"} {
			fields = append(fields, cronField(kv[k]))
		}
	} else {
		f := strings.Fields(o.Value)
		if len(f) < 6 {
			return Unsupported, "want MINUTE HOUR DAY MONTH WEEKDAY COMMAND"
		}
		for _, x := range f[:5] {
			fields = append(fields, cronField(x))
		}
		cmd = strings.Join(f[5:], " ")
	}
	if cmd == "" {
		return Unsupported, "no command found"
	}
	schedule := strings.Join(fields, " ")
	if _, err := cron.Parse(schedule); err != nil {
		return Unsupported, fmt.Sprintf("schedule %q: %v", schedule, err)
	}
	m.crons = append(m.crons, job{name: jobName(cmd), schedule: schedule, command: cmd, line: i})
	return Mapped, "cron:"
}

// cronField turns uWSGI's -1 (any) and -N (every N) into crontab syntax.
func cronField(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || s == "-1" {
		return "*"
	}
	if n, err := strconv.Atoi(s); err == nil && n < -1 {
		return fmt.Sprintf("*/%d", -n)
	}
	return s
}

// jobName names a daemon or cron job after its command: "celery beat"
// for "nice -n 5 celery -A x beat" is beyond it, the first word that is
// not a wrapper is what it takes.
func jobName(cmd string) string {
	var words []string
	for _, w := range strings.Fields(cmd) {
		if strings.HasPrefix(w, "-") || strings.Contains(w, "=") {
			continue
		}
		if i := strings.LastIndexByte(w, '/'); i >= 0 {
			w = w[i+1:]
		}
		switch w {
		case "nice", "exec", "env", "python", "python3", "sh", "bash", "ionice", "":
			continue
		}
		if _, err := strconv.Atoi(w); err == nil {
			continue
		}
		words = append(words, w)
		if len(words) == 2 {
			break
		}
	}
	name := strings.Join(words, "-")
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return -1
	}, name)
	if name == "" {
		return "job"
	}
	return name
}
