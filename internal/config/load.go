package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Sources are the inputs of Load.
type Sources struct {
	Flags   *pflag.FlagSet // flags of `gw run` (RegisterFlags); nil = none
	Environ []string       // "KEY=value" pairs, normally os.Environ()
	File    string         // YAML config; "" = GW_CONFIG from Environ, if any
	Args    []string       // the positional APP of `gw run`, at most one
	// Serving are the files of the apps directory whose apps serve now:
	// they win a clash against the other files, whatever their times.
	Serving []string
}

// Load builds the validated Config from flags, GW_* variables and the YAML
// file, with precedence flag > env > file > default, and returns every
// problem at once as Problems.
//
// With APP in Args, flags describe that one app and the file may give only
// listen: and limits:. Without APP the apps come from the file's apps:, and
// the per-app flags and variables (--workers, GW_TIMEOUT, ...) that are set
// fill in the keys an entry leaves out; keys an entry sets win over them.
//
// Relative paths in the file are taken from the file's directory, and a
// module:callable app of the file without dir: imports from there too.
// Relative paths from flags and variables are taken from the working
// directory. Paths in the Config are absolute.
func Load(src Sources) (*Config, error) {
	l := &loader{src: src, env: environ(src.Environ), c: &collector{}}
	cfg := &Config{File: src.File}
	if cfg.File == "" {
		cfg.File = l.env[lookupFlag("config").env]
	}
	if cfg.File != "" {
		l.c.file = cfg.File
		data, err := os.ReadFile(cfg.File)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the file name is already in the problem
			}
			l.c.probs = append(l.c.probs, Problem{File: cfg.File, Msg: fmt.Sprintf("read config: %v", err)})
			return nil, l.c.probs
		}
		if l.fd = parseFile(data, l.c); l.fd == nil {
			return nil, l.c.sorted()
		}
		if l.base, err = filepath.Abs(filepath.Dir(cfg.File)); err != nil {
			return nil, fmt.Errorf("config directory: %w", err)
		}
	}
	if err := l.initViper(); err != nil {
		return nil, err
	}
	l.listen(&cfg.Listen)
	l.limits(&cfg.Limits)
	l.proxy(&cfg.Proxy, cfg.Listen)
	cfg.User = l.get("uid").text
	cfg.Group = l.get("gid").text
	cfg.AllowRoot = l.boolean(l.get("allow_root"))
	cfg.PIDFile = l.path(l.get("pid_file"))
	cfg.MaxRunners = l.integer(l.get("max_runners"), 0)
	cfg.Compress = l.boolean(l.get("compress"))
	cfg.CompressMin = l.size(l.get("compress_min"), 0)
	cfg.Log.Format = l.get("log.format").text
	if f := cfg.Log.Format; f != "text" && f != "json" {
		l.c.of(l.get("log.format"), "log format must be text or json, got %q", f)
	}
	cfg.Log.File = l.path(l.get("log.file"))
	if a := l.get("log.access").text; a != "off" && a != "" {
		cfg.Log.Access = a
		if a != "-" {
			cfg.Log.Access = l.path(l.get("log.access"))
		}
	}
	cfg.AppsDir = l.path(l.get("apps_dir"))
	cfg.CgroupRoot = l.path(l.get("cgroup_root"))
	// With an apps directory, the file need not list apps: the directory
	// may hold every app, or none yet.
	if cfg.AppsDir == "" || len(l.src.Args) > 0 || (l.fd != nil && len(l.fd.apps) > 0) {
		cfg.Apps = l.apps()
	}
	l.appsDir(cfg)
	cfg.Daemons, cfg.Cron = l.daemons(), l.cronJobs()
	l.checkBudget(cfg)
	if len(l.c.probs) > 0 {
		return nil, l.c.sorted()
	}
	return cfg, nil
}

// loader holds the state of one Load.
type loader struct {
	src  Sources
	env  map[string]string // the declared GW_* variables that are set
	v    *viper.Viper
	c    *collector
	fd   *fileData // nil without a file
	base string    // absolute directory of the file
	seen []appSeen // per built app, for the checks across apps
}

// value is one setting as text, with where it came from for problems.
type value struct {
	text string
	list []string   // kindList from a flag or variable
	node *yaml.Node // set when the value came from the file
	path string     // "apps[1].workers", "--workers", "GW_WORKERS", "workers"
	set  bool       // given by the user, not defaulted
}

// environ keeps the variables the option table declares; the rest of the
// environment is none of gw's business.
func environ(env []string) map[string]string {
	declared := map[string]bool{}
	for _, o := range options {
		if o.env != "" {
			declared[o.env] = true
		}
	}
	out := map[string]string{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && v != "" && declared[k] { // empty counts as unset, as in viper
			out[k] = v
		}
	}
	return out
}

// initViper layers the sources in a private viper: defaults, the file, the
// environment, then the bound flags. The environment is merged as a config
// layer over the file rather than bound with BindEnv, because viper's env
// lookup only reads the process environment (viper.go getEnv calls
// os.LookupEnv) and Load takes its environment from Sources.
func (l *loader) initViper() error {
	l.v = viper.New()
	fileLayer, envLayer := map[string]any{}, map[string]any{}
	for _, o := range options {
		if o.key == "" || o.kind == kindMap || o.kind == kindStrings {
			continue
		}
		l.v.SetDefault(o.key, o.def)
		if l.src.Flags != nil && o.flag != "" {
			if f := l.src.Flags.Lookup(o.flag); f != nil {
				if err := l.v.BindPFlag(o.key, f); err != nil {
					return fmt.Errorf("bind --%s: %w", o.flag, err)
				}
			}
		}
		if n := l.fileNode(o.key); n != nil && n.Kind == yaml.SequenceNode {
			items := make([]string, len(n.Content))
			for i, it := range n.Content {
				items[i] = deref(it).Value
			}
			setPath(fileLayer, o.key, items)
		} else if n != nil {
			setPath(fileLayer, o.key, n.Value)
		}
		if s, ok := l.env[o.env]; ok {
			setPath(envLayer, o.key, s)
		}
	}
	if err := l.v.MergeConfigMap(fileLayer); err != nil {
		return fmt.Errorf("merge config file: %w", err)
	}
	if err := l.v.MergeConfigMap(envLayer); err != nil {
		return fmt.Errorf("merge environment: %w", err)
	}
	return nil
}

func (l *loader) fileNode(key string) *yaml.Node {
	if l.fd == nil {
		return nil
	}
	return l.fd.globals[key]
}

// setPath stores val in m under a dotted key, making the nested maps.
func setPath(m map[string]any, key string, val any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = val
}

// get returns the resolved value of a key and names its source.
func (l *loader) get(key string) value {
	o := lookup(key)
	val := value{path: strings.TrimPrefix(key, appPrefix), set: true}
	switch raw := l.v.Get(key).(type) {
	case nil:
	case []string:
		val.list = raw
	case string:
		val.text = raw
		if o.kind == kindList && raw != "" {
			val.list = strings.Split(raw, ",")
		}
	default:
		val.text = fmt.Sprint(raw)
	}
	switch {
	case l.src.Flags != nil && o.flag != "" && l.src.Flags.Changed(o.flag):
		val.path = "--" + o.flag
	case l.env[o.env] != "":
		val.path = o.env
	case l.fileNode(key) != nil:
		val.node = l.fileNode(key)
	default:
		val.set = false
	}
	return val
}

// path returns the value as an absolute path ("" when unset), taking
// relative paths from the file's directory or the working directory.
func (l *loader) path(val value) string {
	if val.text == "" {
		return ""
	}
	p := val.text
	if val.node != nil && !filepath.IsAbs(p) {
		p = filepath.Join(l.base, p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		l.c.of(val, "%v", err)
		return val.text
	}
	return abs
}

// mustExist reports a path that is missing, or not a directory when dir.
func (l *loader) mustExist(val value, p string, dir bool) bool {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		l.c.of(val, "%s: %v", p, err)
		return false
	case dir && !fi.IsDir():
		l.c.of(val, "%s is not a directory", p)
		return false
	}
	return true
}

func (l *loader) integer(val value, least int) int {
	n, err := strconv.Atoi(strings.TrimSpace(val.text))
	switch {
	case err != nil:
		l.c.of(val, "%q is not a whole number", val.text)
	case n < least:
		l.c.of(val, "must be at least %d, got %d", least, n)
	}
	return n
}

func (l *loader) size(val value, least Size) Size {
	s, err := ParseSize(val.text)
	switch {
	case err != nil:
		l.c.of(val, "%v", err)
	case s < least:
		l.c.of(val, "must be at least %d bytes", least)
	}
	return s
}

func (l *loader) duration(val value) time.Duration {
	d, err := parseDuration(val.text)
	switch {
	case err != nil:
		l.c.of(val, "%v", err)
	case d <= 0:
		l.c.of(val, "must be more than zero, got %s", val.text)
	}
	return d
}

// boolean parses true/false (and 1/0, yes/no).
func (l *loader) boolean(val value) bool {
	switch strings.ToLower(val.text) {
	case "true", "1", "yes", "on":
		return true
	case "false", "0", "no", "off", "":
		return false
	}
	l.c.of(val, "must be true or false, got %q", val.text)
	return false
}

// durationOff is duration for options where 0 means off.
func (l *loader) durationOff(val value) time.Duration {
	d, err := parseDuration(val.text)
	switch {
	case err != nil:
		l.c.of(val, "%v", err)
	case d < 0:
		l.c.of(val, "must not be negative, got %s", val.text)
	}
	return d
}

func lookupFlag(flag string) option {
	for _, o := range options {
		if o.flag == flag {
			return o
		}
	}
	panic("config: no flag " + flag) // programmer error: flags are literals
}

// checkBudget: every app's floor (min_workers, by default its workers) is
// held whatever the others do, so the floors must fit in max_runners.
func (l *loader) checkBudget(cfg *Config) {
	if cfg.MaxRunners <= 0 {
		return
	}
	sum, parts := 0, []string{}
	for _, a := range cfg.Apps {
		sum += a.MinWorkers
		parts = append(parts, fmt.Sprintf("%s %d", a.Name, a.MinWorkers))
	}
	if sum > cfg.MaxRunners {
		l.c.of(l.get("max_runners"), "max_runners %d is less than the apps' min_workers together (%s = %d): "+
			"lower min_workers (it defaults to workers) or raise max_runners", cfg.MaxRunners, strings.Join(parts, " + "), sum)
	}
}
