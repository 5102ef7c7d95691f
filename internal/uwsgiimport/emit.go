package uwsgiimport

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gwhq/gw/internal/config"
)

// Result is an import: the gw.yaml and a Line per option.
type Result struct {
	YAML  []byte
	Lines []Line
}

// Count returns how many options became k.
func (r *Result) Count(k Kind) int {
	n := 0
	for _, l := range r.Lines {
		if l.Kind == k {
			n++
		}
	}
	return n
}

// ErrNoApp means the config names no app gw could serve.
var ErrNoApp = errors.New("no app: the config has no module, wsgi-file, mount, psgi, rack or php-docroot")

// Import reads in.File and maps it to a gw.yaml. With ErrNoApp the Lines
// are still filled in.
func Import(in Input) (*Result, error) {
	r, err := read(in)
	if err != nil {
		return nil, err
	}
	p, _ := splitSection(in.File)
	m := &mapper{in: in, used: r.used, at: map[string]int{}, sharedUsed: map[int]bool{}, base: strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))}
	for _, o := range r.opts {
		m.apply(o)
	}
	out, err := m.finish(filepath.Base(in.File))
	return &Result{YAML: out, Lines: m.lines}, err
}

// outApp is one entry of apps:.
type outApp struct {
	name, lang, path, dir, callable, mount string
	static                                 []kv
}

// finish builds the apps and listeners from what the options said, fills
// in the Lines that depended on them, and writes the YAML.
func (m *mapper) finish(from string) ([]byte, error) {
	apps := m.apps()
	if len(apps) == 0 {
		return nil, ErrNoApp
	}
	ref := "apps[0]"
	if len(apps) > 1 {
		ref = "apps[*]"
	}
	for _, i := range m.appLines {
		m.lines[i].What = strings.ReplaceAll(m.lines[i].What, "{app}", ref)
	}
	m.placeStatic(apps)
	ls := m.listeners()

	var b strings.Builder
	fmt.Fprintf(&b, "# gw.yaml imported from %s by `gw import uwsgi`; what became of each\n# option was printed on stderr.\n", from)
	if len(ls) > 0 || m.chmod != "" || m.chown != "" {
		b.WriteString("listen:\n")
		writeListeners(&b, ls)
		if m.chmod != "" {
			fmt.Fprintf(&b, "  chmod_socket: %s\n", q(m.chmod))
		}
		if m.chown != "" {
			fmt.Fprintf(&b, "  chown_socket: %s\n", q(m.chown))
		}
		if m.tlsCert != "" {
			fmt.Fprintf(&b, "  tls:\n    cert: %s\n    key: %s\n", q(m.tlsCert), q(m.tlsKey))
		}
	} else {
		b.WriteString("# The uWSGI config names no socket: gw listens on :8080 (listen.http).\n")
	}
	if len(m.limits) > 0 {
		b.WriteString("limits:\n")
		for _, l := range m.limits {
			fmt.Fprintf(&b, "  %s: %s\n", l.k, q(l.v))
		}
	}
	if f := m.logFilePath(); f != "" || m.reqLog != "" {
		b.WriteString("log:\n")
		if f != "" {
			fmt.Fprintf(&b, "  file: %s\n", q(f))
		}
		if m.reqLog != "" {
			fmt.Fprintf(&b, "  access: %s\n", q(m.reqLog))
		}
	}
	if m.pidFile != "" {
		fmt.Fprintf(&b, "pid_file: %s\n", q(m.pidFile))
	}
	if m.uid != "" {
		fmt.Fprintf(&b, "uid: %s\n", q(m.uid))
	}
	if m.gid != "" {
		fmt.Fprintf(&b, "gid: %s\n", q(m.gid))
	}
	b.WriteString("apps:\n")
	for _, a := range apps {
		m.writeApp(&b, a)
	}
	m.writeAttached(&b)
	return []byte(b.String()), nil
}

// writeListeners writes each kind once, in the order kinds first appear:
// one address as a value, several as a list.
func writeListeners(b *strings.Builder, ls []kv) {
	var kinds []string
	by := map[string][]string{}
	for _, l := range ls {
		if by[l.k] == nil {
			kinds = append(kinds, l.k)
		}
		by[l.k] = append(by[l.k], l.v)
	}
	for _, k := range kinds {
		if len(by[k]) == 1 {
			fmt.Fprintf(b, "  %s: %s\n", k, q(by[k][0]))
			continue
		}
		fmt.Fprintf(b, "  %s:\n", k)
		for _, v := range by[k] {
			fmt.Fprintf(b, "    - %s\n", q(v))
		}
	}
}

// apps makes one gw app of the app the options load at "/" and one of
// each mount.
func (m *mapper) apps() []outApp {
	a := &m.app
	name := m.appName()
	var apps []outApp
	base := outApp{name: name, lang: "python", mount: "/"}
	switch {
	case a.path != "":
		base.lang, base.path = a.lang, m.resolve(a.path)
		m.setWhat("psgi", "rack", "php-docroot", "apps[0].path: "+base.path)
	case a.module != "" && !isModuleFile(a.module):
		base.path = m.modulePath(a.module)
		base.dir = m.importRoot()
		m.setWhat("module", "", "", ref0("path: "+base.path)+fromHere(base.dir == ""))
		if i, ok := m.at["callable"]; ok {
			m.lines[i].What = ref0("path: " + base.path + " (the callable part)")
		}
		if i, ok := m.at["wsgi-file"]; ok {
			m.lines[i].Kind = Unsupported
			m.lines[i].What = "uWSGI loads module first and skips a second app at the same mount"
		}
	case a.module != "" || a.file != "":
		f := a.file
		if a.module != "" {
			f = a.module
		}
		base.path = m.resolve(f)
		base.dir = a.chdir
		base.callable = a.callable
		m.setWhat("module", "wsgi-file", "", ref0("path: "+base.path)+fromHere(!filepath.IsAbs(base.path)))
		if i, ok := m.at["callable"]; ok {
			m.lines[i].What = ref0("callable: " + a.callable)
		}
	default:
		base.path = ""
	}
	if base.path != "" {
		apps = append(apps, base)
	} else if i, ok := m.at["callable"]; ok {
		m.lines[i].What = "callable of each mount's app"
	}
	for _, mt := range m.mounts {
		prefix := "/" + strings.Trim(mt.prefix, "/")
		app := outApp{name: name + "-" + slug(prefix), lang: "python", mount: prefix, dir: a.chdir}
		if isPyFile(mt.target) {
			app.path = m.resolve(mt.target)
			app.callable = a.callable
		} else {
			app.path = m.modulePath(mt.target)
			app.dir = m.importRoot()
		}
		if prefix == "/" && base.path != "" {
			m.lines[mt.line].Kind = Unsupported
			m.lines[mt.line].What = "a second app at /: uWSGI serves the first one loaded"
			continue
		}
		m.lines[mt.line].What = fmt.Sprintf("apps[%d]: %s at %s", len(apps), app.path, prefix)
		apps = append(apps, app)
	}
	m.pythonpathLines(base.path != "" && a.module != "" && !isModuleFile(a.module))
	return apps
}

func ref0(s string) string { return "apps[0]." + s }

// fromHere warns where a relative app lands: gw takes it from the
// gw.yaml's directory, uWSGI from the directory it was started in.
func fromHere(relative bool) string {
	if !relative {
		return ""
	}
	return " (relative: gw takes it from the gw.yaml's directory, uWSGI from where it was started; keep them together or set chdir)"
}

// setWhat sets the What of the first of keys present.
func (m *mapper) setWhat(k1, k2, k3, what string) {
	for _, k := range []string{k1, k2, k3} {
		if i, ok := m.at[k]; ok && k != "" {
			m.lines[i].What = what
			return
		}
	}
}

// isPyFile is how uWSGI's mount loader tells a file from a module
// (pyloader.c uwsgi_mount_loader).
func isPyFile(s string) bool { return strings.HasSuffix(s, ".py") || strings.HasSuffix(s, ".wsgi") }

// isModuleFile tells a file given to module= from a module name: "cms.wsgi"
// is a Django module, "/srv/app.py" a file.
func isModuleFile(s string) bool { return strings.Contains(s, "/") || strings.HasSuffix(s, ".py") }

// modulePath is the module:callable uWSGI's "uwsgi loader" would load
// (callable: the callable option, else "application").
func (m *mapper) modulePath(mod string) string {
	if strings.Contains(mod, ":") {
		return mod
	}
	c := m.app.callable
	if c == "" {
		c = "application"
	}
	return mod + ":" + c
}

// importRoot is where a module app imports from: chdir (uWSGI's cwd),
// else the first pythonpath entry.
func (m *mapper) importRoot() string {
	if m.app.chdir != "" {
		return m.app.chdir
	}
	if len(m.app.pythonpath) > 0 {
		return m.app.pythonpath[0]
	}
	return ""
}

// pythonpathLines reports where each pythonpath entry went, and adds the
// ones that are not the import root to env.PYTHONPATH.
func (m *mapper) pythonpathLines(moduleApp bool) {
	var extra []string
	k := 0
	for _, i := range m.appLines {
		if m.lines[i].Key != "pythonpath" && aliases[m.lines[i].Key] != "pythonpath" {
			continue
		}
		p := m.app.pythonpath[k]
		k++
		if moduleApp && m.app.chdir == "" && k == 1 {
			m.lines[i].What = strings.ReplaceAll("{app}.dir: "+p, "{app}", "apps[0]")
			continue
		}
		extra = append(extra, p)
		m.lines[i].What = "env.PYTHONPATH of each app"
	}
	if len(extra) > 0 {
		m.app.env = append(m.app.env, kv{"PYTHONPATH", strings.Join(extra, ":")})
	}
}

// resolve makes a relative file or directory relative to chdir, where
// uWSGI's workers run.
func (m *mapper) resolve(p string) string {
	if filepath.IsAbs(p) || m.app.chdir == "" {
		return p
	}
	return filepath.Join(m.app.chdir, p)
}

// appName names the app after the config file, unless that is a generic
// name like uwsgi.ini; then after chdir or the module.
func (m *mapper) appName() string {
	switch m.base {
	case "", "uwsgi", "app", "wsgi", "config", "server", "conf", "site", "main", "production", "prod":
	default:
		return slug(m.base)
	}
	if d := strings.TrimSuffix(m.app.chdir, "/"); d != "" {
		if s := slug(filepath.Base(d)); s != "" {
			return s
		}
	}
	if mod := m.app.module; mod != "" && !isModuleFile(mod) {
		if s := slug(strings.Split(mod, ".")[0]); s != "" {
			return s
		}
	}
	return "app"
}

func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// placeStatic gives each static-map to the app with the longest mount
// above its URL: gw serves an app's static: only below its mount.
func (m *mapper) placeStatic(apps []outApp) {
	for j, s := range m.app.static {
		i := m.app.staticLines[j]
		url := "/" + strings.Trim(s.k, "/")
		best := -1
		for n, a := range apps {
			if underMount(url, a.mount) && (best < 0 || len(a.mount) > len(apps[best].mount)) {
				best = n
			}
		}
		if best < 0 {
			m.lines[i].Kind = Unsupported
			m.lines[i].What = "no app is mounted at or above " + url + ", and gw serves static: only below an app's mount"
			continue
		}
		dir := m.resolve(s.v)
		apps[best].static = append(apps[best].static, kv{url, dir})
		m.lines[i].What = fmt.Sprintf("apps[%d].static.%s: %s", best, url, dir)
	}
}

func underMount(p, mount string) bool {
	mount = strings.TrimSuffix(mount, "/")
	return mount == "" || p == mount || strings.HasPrefix(p, mount+"/")
}

// listeners maps the sockets, one gw listener of each kind.
func (m *mapper) listeners() []kv {
	var out []kv
	byAddr := map[string]string{}
	count := map[string]int{} // listeners of each kind so far
	for _, s := range m.socks {
		kind := map[string]string{"socket": "uwsgi", "http": "http", "http-socket": "http",
			"https": "https", "https-socket": "https", "fastcgi-socket": "fastcgi"}[s.key]
		if s.key == "socket" && (m.protocol == "http" || m.protocol == "fastcgi") {
			kind = m.protocol
		}
		val := s.value
		if kind == "https" {
			parts := strings.Split(val, ",")
			if len(parts) < 3 {
				m.unsupported(s.line, "want ADDR,CERT,KEY")
				continue
			}
			if m.tlsCert != "" && (parts[1] != m.tlsCert || parts[2] != m.tlsKey) {
				m.unsupported(s.line, "gw's HTTPS listeners share one certificate and key: "+m.tlsCert+" is kept")
				continue
			}
			val = parts[0]
			m.tlsCert, m.tlsKey = parts[1], parts[2]
		}
		addr, note, err := m.sockAddr(val)
		switch {
		case err != nil:
			m.unsupported(s.line, err.Error())
			continue
		case byAddr[addr] != "":
			m.unsupported(s.line, "same address as listen."+byAddr[addr])
			continue
		}
		n := count[kind]
		count[kind]++
		byAddr[addr] = kind
		m.lines[s.line].What = fmt.Sprintf("listen.%s: %s%s", kind, addr, note)
		if n > 0 {
			m.lines[s.line].What = fmt.Sprintf("listen.%s[%d]: %s%s (the listener named %s.%d)", kind, n, addr, note, kind, n)
		}
		out = append(out, kv{kind, addr})
	}
	for n, sh := range m.shared {
		if !m.sharedUsed[n] {
			m.unsupported(sh.line, fmt.Sprintf("no listener names it (=%d): gw binds no socket it does not serve", n))
		}
	}
	if m.stats.key != "" {
		addr, err := gwAddr(m.stats.value)
		switch {
		case err != nil:
			m.unsupported(m.stats.line, err.Error())
		case byAddr[addr] != "":
			m.unsupported(m.stats.line, "same address as listen."+byAddr[addr])
		default:
			m.lines[m.stats.line].What = "listen.stats: " + addr + " (gw's stats speak HTTP: /stats, /metrics; uwsgitop cannot read them)"
			out = append(out, kv{"stats", addr})
		}
	}
	return out
}

// sockAddr is gw's address for a uWSGI socket value; "=N" names the Nth
// shared-socket, which gw binds as that listener (before it drops root,
// uWSGI's reason for shared-socket).
func (m *mapper) sockAddr(v string) (addr, note string, err error) {
	ref, ok := strings.CutPrefix(strings.TrimSpace(v), "=")
	if !ok {
		addr, err = gwAddr(v)
		return addr, "", err
	}
	n, err := strconv.Atoi(ref)
	if err != nil || n < 0 || n >= len(m.shared) {
		return "", "", fmt.Errorf("=%s names no shared-socket (the config has %d)", ref, len(m.shared))
	}
	sh := m.shared[n]
	addr, err = gwAddr(sh.value)
	if err != nil {
		return "", "", err
	}
	m.sharedUsed[n] = true
	return addr, fmt.Sprintf(" (shared-socket %d, %s)", n, m.lines[sh.line].Pos), nil
}

func (m *mapper) unsupported(i int, why string) {
	m.lines[i].Kind, m.lines[i].What = Unsupported, why
}

// gwAddr turns a uWSGI socket address into gw's: a name without a colon
// is a unix socket path, as in uWSGI.
func gwAddr(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errors.New("empty address")
	case s[0] == '@':
		return "", errors.New("abstract unix sockets (@name) are not supported by gw")
	case s[0] == '=':
		return "", errors.New("shared sockets (=N) are not supported by gw")
	case !strings.Contains(s, ":"):
		return "unix:" + s, nil
	}
	s = strings.TrimPrefix(s, "*")
	if _, err := config.ParseAddr(s); err != nil {
		return "", err
	}
	return s, nil
}

func (m *mapper) writeApp(b *strings.Builder, a outApp) {
	fmt.Fprintf(b, "  - name: %s\n    lang: %s\n    path: %s\n", q(a.name), a.lang, q(a.path))
	if a.dir != "" {
		fmt.Fprintf(b, "    dir: %s\n", q(a.dir))
	}
	if a.callable != "" {
		fmt.Fprintf(b, "    callable: %s\n", q(a.callable))
	}
	if a.mount != "/" {
		fmt.Fprintf(b, "    mount: %s\n", q(a.mount))
	}
	s := m.app
	switch {
	case s.workersCPU:
	case s.workers > 0:
		fmt.Fprintf(b, "    workers: %d\n", s.workers)
	default:
		b.WriteString("    workers: 1              # uWSGI's default: one worker process\n")
	}
	if s.minWorkers > 0 {
		if i, ok := m.at["cheaper"]; ok && s.minWorkers >= max(s.workers, 1) {
			m.unsupported(i, "uWSGI refuses cheaper >= processes; no floor set")
		} else {
			fmt.Fprintf(b, "    min_workers: %d\n", s.minWorkers)
		}
	}
	if s.workerIdle != "" {
		fmt.Fprintf(b, "    worker_idle: %s\n", s.workerIdle)
	}
	if s.threads > 0 {
		fmt.Fprintf(b, "    threads: %d\n", s.threads)
	}
	if s.timeout != "" {
		fmt.Fprintf(b, "    timeout: %s\n", s.timeout)
	}
	if s.maxRequests > 0 {
		fmt.Fprintf(b, "    max_requests: %d\n", s.maxRequests)
	}
	if s.maxRSS != "" {
		fmt.Fprintf(b, "    max_rss: %s\n", s.maxRSS)
	}
	if s.venv != "" {
		fmt.Fprintf(b, "    venv: %s\n", q(m.resolve(s.venv)))
	}
	if s.spooler != "" {
		fmt.Fprintf(b, "    spooler: %s\n", q(m.resolve(s.spooler)))
	}
	if size := s.cacheBytes + s.cacheItems*cmp.Or(s.cacheBlock, cacheBlock); size > 0 {
		fmt.Fprintf(b, "    cache_size: %d\n", size)
	}
	writeMap(b, "env", dedupe(s.env))
	writeMap(b, "static", a.static)
	writeMap(b, "limits", dedupe(s.limits))
	if s.reload {
		b.WriteString("    reload: true\n")
	}
	if len(m.touch) > 0 {
		touch := make([]string, len(m.touch))
		for i, p := range m.touch {
			touch[i] = m.resolve(p)
		}
		fmt.Fprintf(b, "    touch_reload: %s\n", flow(touch))
	}
}

// dedupe keeps the last value of each name, at its first place (uWSGI's
// later env = wins, as putenv would).
func dedupe(in []kv) []kv {
	var out []kv
	idx := map[string]int{}
	for _, e := range in {
		if i, ok := idx[e.k]; ok {
			out[i].v = e.v
			continue
		}
		idx[e.k] = len(out)
		out = append(out, e)
	}
	return out
}

func writeMap(b *strings.Builder, key string, kvs []kv) {
	if len(kvs) == 0 {
		return
	}
	fmt.Fprintf(b, "    %s:\n", key)
	for _, e := range kvs {
		fmt.Fprintf(b, "      %s: %s\n", q(e.k), q(e.v))
	}
}

// writeAttached writes daemons: and cron:, each command run by sh -c as
// uWSGI runs it.
func (m *mapper) writeAttached(b *strings.Builder) {
	names := map[string]int{}
	unique := func(n string) string {
		names[n]++
		if names[n] > 1 {
			return fmt.Sprintf("%s-%d", n, names[n])
		}
		return n
	}
	if len(m.daemons) > 0 {
		b.WriteString("daemons:\n")
		for _, d := range m.daemons {
			fmt.Fprintf(b, "  - name: %s\n    command: %s\n", q(unique(d.name)), flow([]string{"/bin/sh", "-c", d.command}))
			if m.app.chdir != "" {
				fmt.Fprintf(b, "    dir: %s\n", q(m.app.chdir))
			}
			b.WriteString("    restart: always\n")
		}
	}
	if len(m.crons) > 0 {
		b.WriteString("cron:\n")
		for _, c := range m.crons {
			fmt.Fprintf(b, "  - name: %s\n    schedule: %s\n    command: %s\n", q(unique(c.name)), q(c.schedule), flow([]string{"/bin/sh", "-c", c.command}))
			if m.app.chdir != "" {
				fmt.Fprintf(b, "    dir: %s\n", q(m.app.chdir))
			}
		}
	}
}

// q quotes a scalar where YAML needs it.
func q(s string) string {
	out, err := yaml.Marshal(s)
	if err != nil {
		return fmt.Sprintf("%q", s)
	}
	t := strings.TrimSuffix(string(out), "\n")
	if strings.Contains(t, "\n") {
		return fmt.Sprintf("%q", s)
	}
	return t
}

func flow(items []string) string {
	qs := make([]string, len(items))
	for i, s := range items {
		qs[i] = q(s)
	}
	return "[" + strings.Join(qs, ", ") + "]"
}
