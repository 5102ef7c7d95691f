package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// appSeen remembers where an app's identity came from, for the checks
// across apps.
type appSeen struct {
	path  string     // "apps[1]" or "APP"
	node  *yaml.Node // the entry of apps:, nil for the app of the flags
	name  value
	mount value
	host  string
}

// apps builds the app from APP and the flags, or every app of the file.
func (l *loader) apps() []App {
	switch {
	case len(l.src.Args) > 1:
		l.c.at(nil, "", "want at most one APP, got %d: %s", len(l.src.Args), strings.Join(l.src.Args, " "))
		return nil
	case len(l.src.Args) == 1:
		if l.fd != nil && len(l.fd.apps) > 0 {
			l.c.at(l.fd.appsKey, "apps", "the file lists apps and APP %q was given too; pass one or the other", l.src.Args[0])
		}
		app := l.app(nil, "APP", value{text: l.src.Args[0], path: "APP", set: true})
		l.checkAcross()
		return []App{app}
	case l.fd == nil:
		l.c.at(nil, "", "nothing to serve: give APP (gw run app.py) or a config file with apps: (-c FILE)")
		return nil
	case len(l.fd.apps) == 0:
		if l.fd.appsKey != nil {
			l.c.at(l.fd.appsKey, "apps", "no apps; want at least one entry with a path")
		} else {
			l.c.probs = append(l.c.probs, Problem{File: l.c.file, Msg: "no apps: add an apps: list, or give APP"})
		}
		return nil
	}
	apps := make([]App, len(l.fd.apps))
	for i, m := range l.fd.apps {
		ip := l.fd.appPaths[i]
		pv := value{path: ip + ".path"}
		if _, n := field(m, "path"); n != nil {
			pv = value{text: n.Value, node: n, path: ip + ".path", set: true}
		} else {
			l.c.at(m, ip, "missing path: the app's file, directory or module:callable")
		}
		apps[i] = l.app(m, ip, pv)
	}
	l.checkAcross()
	return apps
}

// appGet returns key of the app entry m (nil for the app of the flags),
// falling back to the flag, variable or default of the option.
func (l *loader) appGet(m *yaml.Node, ip, key string) value {
	if m != nil {
		if _, n := field(m, key); n != nil {
			return value{text: n.Value, node: n, path: ip + "." + key, set: true}
		}
	}
	return l.get(appPrefix + key)
}

// app builds one App from entry m of apps: (nil for the app of the flags).
func (l *loader) app(m *yaml.Node, ip string, pv value) App {
	get := func(key string) value { return l.appGet(m, ip, key) }
	a := App{
		Callable:      get("callable").text,
		Workers:       l.integer(get("workers"), 1),
		Threads:       l.integer(get("threads"), 1),
		Timeout:       l.duration(get("timeout")),
		MaxRequests:   l.integer(get("max_requests"), 0),
		MaxRSS:        l.size(get("max_rss"), 0),
		CacheSize:     l.size(get("cache_size"), 1),
		QueueSize:     l.integer(get("queue_size"), 0),
		MaxWebSockets: l.integer(get("max_websockets"), 0),
		Env:           mapOf(m, "env"),
	}
	if !get("threads").set {
		a.Threads = 0 // the language's default, which differs for ASGI
	}
	a.SlowAfter = l.durationOff(get("slow_after"))
	a.MinWorkers = a.Workers
	if v := get("min_workers"); v.text != "" {
		a.MinWorkers = l.integer(v, 0)
		if a.MinWorkers > a.Workers {
			l.c.of(v, "min_workers must be at most workers (%d), got %d", a.Workers, a.MinWorkers)
		}
	}
	a.WorkerIdle = l.duration(get("worker_idle"))
	a.Weight = l.integer(get("weight"), 1)
	a.ResponseBuffering = l.boolean(get("response_buffering"))
	if v := get("compress"); v.text != "" {
		a.Compress = l.boolean(v)
	} else {
		a.Compress = l.boolean(l.get("compress"))
	}
	a.RequestBuffering = l.boolean(get("request_buffering"))
	a.User, a.Group = get("uid").text, get("gid").text
	a.Limits = l.appLimits(m, ip)
	if v := get("checksum"); v.text != "" {
		sum, err := hex.DecodeString(v.text)
		if err != nil || len(sum) != sha256.Size {
			l.c.of(v, "checksum must be 64 hex digits (a sha256), got %q", v.text)
		}
		a.Checksum = sum
	}
	// By default a request may wait for a runner as long as it may run:
	// either way the client has waited for the app's timeout.
	a.QueueWait = a.Timeout
	if v := get("queue_wait"); v.text != "" {
		a.QueueWait = l.duration(v)
	}

	langVal := get("lang")
	lang, err := ParseLang(langVal.text)
	if err != nil {
		l.c.of(langVal, "%v", err)
	}
	modCall := isModuleCallable(pv.text) && (lang == LangAuto || lang == LangPython)
	exists := false
	switch {
	case pv.text == "":
	case modCall:
		a.Path = pv.text
		exists = true
	default:
		a.Path = l.path(pv)
		exists = l.mustExist(pv, a.Path, false)
	}
	a.Lang = lang
	if lang == LangAuto && a.Path != "" {
		a.Lang, err = Detect(a.Path)
		if err != nil && exists {
			if m != nil {
				l.c.of(pv, "%v; or set lang: for this app", err)
			} else {
				l.c.of(pv, "%v", err)
			}
		}
	}

	a.Interface = l.iface(get("interface"), a.Lang)

	if sv := get("spooler"); sv.text != "" {
		a.Spooler = l.path(sv)
		l.mustExist(sv, a.Spooler, true)
	}
	if dv := get("dir"); dv.text != "" {
		a.Dir = l.path(dv)
		l.mustExist(dv, a.Dir, true)
	} else if modCall && pv.node != nil {
		a.Dir = l.base
	}
	if vv := get("venv"); vv.text != "" {
		a.Venv = l.path(vv)
		l.mustExist(vv, a.Venv, true)
	}
	// A bare name ("python3") is looked up on PATH by the runner; only a
	// path can be checked here without depending on this machine's PATH.
	if iv := get("interpreter"); strings.Contains(iv.text, "/") {
		a.Interpreter = l.path(iv)
		l.mustExist(iv, a.Interpreter, false)
	} else {
		a.Interpreter = iv.text
	}

	mv := get("mount")
	if a.Mount, err = normMount(mv.text); err != nil {
		l.c.of(mv, "%v", err)
	}
	if hv := get("host"); hv.text != "" {
		if a.Host, err = normHost(hv.text); err != nil {
			l.c.of(hv, "%v", err)
		}
	}
	nv := get("name")
	if a.Name = nv.text; a.Name == "" && pv.text != "" {
		a.Name = defaultName(pv.text)
		nv = value{text: a.Name, node: pv.node, path: ip + ".path"}
	}
	a.Static = l.static(m, ip)
	a.Reload = l.boolean(get("reload"))
	a.TouchReload = l.paths(m, ip, "touch_reload", false)
	a.Sendfile = l.paths(m, ip, "sendfile", true)
	l.seen = append(l.seen, appSeen{path: ip, node: m, name: nv, mount: mv, host: a.Host})
	return a
}

// mapOf returns the case-preserved mapping under key of entry m.
func mapOf(m *yaml.Node, key string) map[string]string {
	n := mappingOf(m, key)
	if n == nil {
		return nil
	}
	out := map[string]string{}
	w := walker{c: &collector{}}
	for _, p := range w.pairs(n, "") {
		if v := deref(p.val); v.Kind == yaml.ScalarNode && !isNull(v) {
			out[p.key.Value] = v.Value
		}
	}
	return out
}

// paths returns the list of paths under key of entry m, absolute. With
// dirs each must be an existing directory (sendfile's roots); else a file
// need not exist yet (touch_reload's may be created later).
func (l *loader) paths(m *yaml.Node, ip, key string, dirs bool) []string {
	if m == nil {
		return nil
	}
	_, n := field(m, key)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil // a wrong shape is reported by the schema walk
	}
	var out []string
	for i, it := range n.Content {
		if it = deref(it); it.Kind == yaml.ScalarNode && !isNull(it) && it.Value != "" {
			v := value{text: it.Value, node: it, path: fmt.Sprintf("%s.%s[%d]", ip, key, i), set: true}
			p := l.path(v)
			if dirs {
				l.mustExist(v, p, true)
			}
			out = append(out, p)
		}
	}
	return out
}

// mappingOf returns the mapping under key of entry m, or nil when m is nil
// or the key is missing or not a mapping (reported by the schema walk).
func mappingOf(m *yaml.Node, key string) *yaml.Node {
	if m == nil {
		return nil
	}
	if _, n := field(m, key); n != nil && n.Kind == yaml.MappingNode {
		return n
	}
	return nil
}

// static returns the URL prefix -> directory map of an app, from static:
// in the file or from --static URL=DIR / GW_STATIC=URL=DIR,URL=DIR.
func (l *loader) static(m *yaml.Node, ip string) map[string]string {
	type entry struct{ url, dir value }
	var entries []entry
	if n := mappingOf(m, "static"); n != nil {
		w := walker{c: &collector{}}
		for _, p := range w.pairs(n, "") {
			path := ip + ".static." + p.key.Value
			v := deref(p.val)
			if v.Kind != yaml.ScalarNode || isNull(v) {
				continue // reported by the schema walk
			}
			entries = append(entries, entry{
				url: value{text: p.key.Value, node: p.key, path: path, set: true},
				dir: value{text: v.Value, node: v, path: path, set: true},
			})
		}
	} else if sv := l.get(appPrefix + "static"); len(sv.list) > 0 {
		for _, s := range sv.list {
			u, d, ok := strings.Cut(strings.TrimSpace(s), "=")
			if !ok || u == "" || d == "" {
				l.c.of(sv, "static %q: want URL=DIR, like /static=./public", s)
				continue
			}
			entries = append(entries, entry{url: value{text: u, path: sv.path, set: true}, dir: value{text: d, path: sv.path, set: true}})
		}
	}
	if len(entries) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, e := range entries {
		url, err := normMount(e.url.text)
		if err != nil {
			l.c.of(e.url, "static URL prefix: %v", err)
			continue
		}
		if _, dup := out[url]; dup {
			l.c.of(e.url, "static URL prefix %s given twice", url)
			continue
		}
		out[url] = l.path(e.dir)
		l.mustExist(e.dir, out[url], true)
	}
	return out
}

// checkAcross reports what is wrong only between apps: two with one name
// (logs and stats would mix them), or with one host and mount (routing
// could never reach the second).
func (l *loader) checkAcross() {
	names := map[string]appSeen{}
	routes := map[string]appSeen{}
	for _, s := range l.seen {
		if s.name.text != "" {
			if first, dup := names[s.name.text]; dup {
				n, path := s.where(s.name)
				l.c.at(n, path, "app name %q is already used by %s%s; names must be unique", s.name.text, first.path, lineOf(first.name.node))
			} else {
				names[s.name.text] = s
			}
		}
		mount, err := normMount(s.mount.text)
		if err != nil {
			continue // reported already
		}
		route := s.host + " " + mount
		if first, dup := routes[route]; dup {
			host := s.host
			if host == "" {
				host = "any host"
			}
			n, path := s.where(s.mount)
			l.c.at(n, path, "%s and %s both serve %s at mount %s; give one a different mount or host", first.path, s.path, host, mount)
		} else {
			routes[route] = s
		}
	}
}

// where is what a problem about one of the app's values points at: the
// value in the file, or the app's entry when the value was defaulted.
func (s appSeen) where(v value) (*yaml.Node, string) {
	if v.node != nil || v.set || s.node == nil {
		return v.node, v.path
	}
	return s.node, s.path
}

// floor is where the app's floor is set: min_workers, else workers, else
// the entry itself.
func (s appSeen) floor() (*yaml.Node, string) {
	for _, k := range []string{"min_workers", "workers"} {
		if _, v := field(s.node, k); v != nil {
			return v, s.path + "." + k
		}
	}
	return s.node, s.path
}

func lineOf(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	return fmt.Sprintf(" (line %d)", n.Line)
}

// iface reads interface:, which only a Python app may set.
func (l *loader) iface(v value, lang Lang) Interface {
	i := Interface(strings.ToLower(strings.TrimSpace(v.text)))
	switch i {
	case "":
		i = InterfaceAuto
	case InterfaceAuto, InterfaceWSGI, InterfaceASGI:
	default:
		l.c.of(v, "interface must be auto, wsgi or asgi, got %q", v.text)
		return InterfaceAuto
	}
	if i != InterfaceAuto && lang != LangPython && lang != LangAuto {
		l.c.of(v, "interface: %s is for python apps; this app's lang is %s", i, lang)
	}
	return i
}
