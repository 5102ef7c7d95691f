package uwsgiimport

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// maxDepth bounds includes (a file that includes itself) and maxRounds
// the re-scans of one value in a pass (a placeholder naming itself).
const (
	maxDepth  = 10
	maxRounds = 64
)

// reader holds the state of one Read: the options so far and the config
// logic block being read (uWSGI's logic_opt).
type reader struct {
	in    Input
	env   map[string]string
	root  map[byte]string // magic variables of the first file (%D, %N ...)
	opts  []Option
	depth int

	logic   string // the open if-*/for directive, "" outside one
	logicAt int    // its index in opts
	arg     string // its argument
	failed  bool   // the last if-* was false (for else)
	val     string // what %(_) stands for in the open if-* block
	skipped int    // options skipped in the open block
	used    map[string]bool
}

// Read returns the options of in.File as uWSGI would apply them.
func Read(in Input) ([]Option, error) {
	r, err := read(in)
	if err != nil {
		return nil, err
	}
	return r.opts, nil
}

// read reads in.File, its includes and config logic, then runs the late
// passes.
func read(in Input) (*reader, error) {
	r := newReader(in)
	if err := r.include(in.File, ""); err != nil {
		return nil, err
	}
	r.closeLogic()
	r.passes()
	return r, nil
}

func newReader(in Input) *reader {
	if in.CPUs <= 0 {
		in.CPUs = runtime.NumCPU()
	}
	r := &reader{in: in, env: map[string]string{}, used: map[string]bool{}}
	for _, kv := range in.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			r.env[k] = v
		}
	}
	return r
}

// include reads file (FILE, FILE:section or :section of the current
// file) and adds its options where the include stands, as uWSGI does.
func (r *reader) include(file, from string) error {
	path, section := splitSection(file)
	if path == "" {
		path = from
	}
	if r.depth >= maxDepth {
		return fmt.Errorf("%s: includes nested deeper than %d", path, maxDepth)
	}
	if from != "" {
		path = r.locate(path, from)
	}
	es, err := r.readFile(path, section)
	if err != nil {
		return err
	}
	r.depth++
	defer func() { r.depth-- }()
	name := filepath.Base(path)
	for _, e := range es {
		if err := r.add(Option{Key: e.key, Value: e.value, Raw: e.raw, Flag: e.flag, Pos: fmt.Sprintf("%s:%d", name, e.line)}, path); err != nil {
			return err
		}
	}
	return nil
}

// locate finds an included file: uWSGI takes a relative name from its
// working directory; the including file's directory is tried next, as the
// import rarely runs where uWSGI did.
func (r *reader) locate(path, from string) string {
	if filepath.IsAbs(path) {
		return path
	}
	if r.in.Cwd != "" {
		if p := filepath.Join(r.in.Cwd, path); exists(p) {
			return p
		}
	}
	return filepath.Join(filepath.Dir(from), path)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// logicKeys are uWSGI's config logic directives (core/config.c); their
// argument is checked when they are read, before any $() or %() pass.
var logicKeys = map[string]bool{
	"if-env": true, "if-not-env": true, "if-exists": true, "if-not-exists": true,
	"if-file": true, "if-not-file": true, "if-dir": true, "if-not-dir": true,
	"if-opt": true, "if-not-opt": true, "for": true, "for-times": true,
	"if-reload": true, "if-not-reload": true,
}

var endKeys = map[string]bool{"end": true, "endif": true, "end-if": true, "endfor": true, "end-for": true}

// includeKeys load another config file in place.
var includeKeys = map[string]bool{"ini": true, "yaml": true, "yml": true, "json": true, "js": true, "xml": true}

// add is uWSGI's add_exported_option: directives act at once, other
// options go through the open logic block, if any.
func (r *reader) add(o Option, file string) error {
	switch {
	case endKeys[o.Key]:
		r.closeLogic()
		o.note = "end of a config logic block"
		r.opts = append(r.opts, o)
		return nil
	case o.Key == "else":
		if r.logic == "" {
			o.note = "else outside an if block: ignored"
			r.opts = append(r.opts, o)
			return nil
		}
		r.closeLogic()
		r.logic, r.logicAt, r.arg = "else", len(r.opts), ""
		o.note = "else: the options up to endif apply"
		if !r.failed {
			o.note = "else: the if held, so the options up to endif are skipped"
		}
		r.opts = append(r.opts, o)
		return nil
	case r.logic != "":
		return r.inLogic(o, file)
	case logicKeys[o.Key]:
		r.logic, r.logicAt, r.arg, r.skipped = o.Key, len(r.opts), o.Value, 0
		if strings.HasPrefix(o.Key, "if-") {
			ok, val := r.test(o.Key, o.Value)
			r.failed, r.val = !ok, val
		}
		r.opts = append(r.opts, o)
		return nil
	}
	return r.plain(o, file)
}

// plain adds an option that is not config logic.
func (r *reader) plain(o Option, file string) error {
	switch {
	case includeKeys[o.Key]:
		before := len(r.opts)
		r.opts = append(r.opts, o)
		if err := r.include(o.Value, file); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			r.opts[before].note = fmt.Sprintf("included file not found: %v", err)
			r.opts[before].bad = true
			return nil
		}
		r.opts[before].note = fmt.Sprintf("read %d options from %s", len(r.opts)-before-1, o.Value)
		return nil
	case o.Key == "set-placeholder" || o.Key == "set-ph":
		k, v, _ := strings.Cut(o.Value, "=")
		o.note = fmt.Sprintf("defines the placeholder %%(%s)", k)
		r.opts = append(r.opts, o, Option{Key: k, Value: v, Raw: v, Pos: o.Pos, ph: true})
		return nil
	}
	r.opts = append(r.opts, o)
	return nil
}

// inLogic handles an option inside an open if-*, else or for block.
func (r *reader) inLogic(o Option, file string) error {
	if r.logic == "else" {
		if !r.failed {
			r.skipped++
			return nil
		}
		return r.plain(o, file)
	}
	if r.logic == "for" || r.logic == "for-times" {
		var items []string
		if r.logic == "for" {
			items = strings.Fields(r.arg)
		} else {
			n, _ := strconv.Atoi(strings.TrimSpace(r.arg))
			for i := 1; i <= n && i <= 1000; i++ {
				items = append(items, strconv.Itoa(i))
			}
		}
		for _, it := range items {
			c := o
			c.Value = strings.ReplaceAll(o.Value, "%(_)", it)
			if err := r.plain(c, file); err != nil {
				return err
			}
		}
		return nil
	}
	if r.failed {
		r.skipped++
		return nil
	}
	o.Value = strings.ReplaceAll(o.Value, "%(_)", r.val)
	return r.plain(o, file)
}

// test evaluates an if-* directive as core/config.c does and returns the
// value %(_) stands for inside the block.
func (r *reader) test(kind, arg string) (bool, string) {
	neg := strings.HasPrefix(kind, "if-not-")
	what := strings.TrimPrefix(strings.TrimPrefix(kind, "if-not-"), "if-")
	var ok bool
	val := arg
	switch what {
	case "env", "opt":
		name, want, hasWant := strings.Cut(arg, "=")
		var v string
		var set bool
		if what == "env" {
			v, set = r.env[name]
		} else {
			v, set = r.lookup(name)
		}
		ok = set && (!hasWant || v == want)
		val = v
	case "exists":
		ok = exists(arg)
	case "file":
		fi, err := os.Stat(arg)
		ok = err == nil && fi.Mode().IsRegular()
	case "dir":
		fi, err := os.Stat(arg)
		ok = err == nil && fi.IsDir()
	case "reload":
		ok = false // an import is never a reload
	}
	if neg {
		return !ok, val
	}
	return ok, val
}

// closeLogic ends the open block and says on its directive what it did.
func (r *reader) closeLogic() {
	if r.logic == "" {
		return
	}
	d := &r.opts[r.logicAt]
	switch {
	case d.note != "":
	case r.logic == "for" || r.logic == "for-times":
		d.note = fmt.Sprintf("config logic: repeated the block for %q", r.arg)
	case strings.HasPrefix(r.logic, "if-"):
		verdict := "held"
		if r.failed {
			verdict = "did not hold"
		}
		d.note = fmt.Sprintf("config logic: %s %s at import, %d option(s) skipped; the gw.yaml is fixed at import, so import again where the %s is as in production",
			r.logic, verdict, r.skipped, subject(r.logic))
	}
	if r.logic == "else" {
		d.note += fmt.Sprintf(" (%d skipped)", r.skipped)
	}
	r.logic, r.arg, r.skipped = "", "", 0
}

func subject(kind string) string {
	switch {
	case strings.HasSuffix(kind, "env"):
		return "environment"
	case strings.HasSuffix(kind, "opt"):
		return "config"
	}
	return "file system"
}

// lookup is uwsgi_get_exported_opt: the first option with that key.
func (r *reader) lookup(key string) (string, bool) {
	for _, o := range r.opts {
		if o.Key == key && o.note == "" {
			return o.Value, true
		}
	}
	return "", false
}

// passes runs uWSGI's three late passes over every value, in its order:
// $(ENV), then @(FILE), then %(placeholder) (core/uwsgi.c, after the
// command line is read).
func (r *reader) passes() {
	for i := range r.opts {
		r.opts[i].Value = expandPass(r.opts[i].Value, '$', r.envHook)
	}
	for i := range r.opts {
		r.opts[i].Value = expandPass(r.opts[i].Value, '@', fileHook)
	}
	for i := range r.opts {
		r.opts[i].Value = expandPass(r.opts[i].Value, '%', r.placeholder)
	}
}

// expandPass replaces each sym(...) in s for which hook has a value,
// parentheses nested; what hook cannot resolve is left as written, as in
// uwsgi_apply_config_pass. A replaced value is scanned again.
func expandPass(s string, sym byte, hook func(string) (string, bool)) string {
	open := string(sym) + "("
	for round := 0; round < maxRounds; round++ {
		replaced := false
		for start := 0; ; {
			i := strings.Index(s[start:], open)
			if i < 0 {
				break
			}
			i += start
			j := closing(s, i+1)
			if j < 0 {
				break
			}
			if v, ok := hook(s[i+2 : j]); ok {
				s = s[:i] + v + s[j+1:]
				replaced = true
				break
			}
			start = i + 2
		}
		if !replaced {
			return s
		}
	}
	return s
}

// closing returns the index of the ')' matching the '(' at i, or -1.
func closing(s string, i int) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// envHook is uwsgi_getenv_with_default: VAR, VAR:-DEFAULT (unset or
// empty) and VAR-DEFAULT (unset).
func (r *reader) envHook(key string) (string, bool) {
	if name, def, ok := strings.Cut(key, ":-"); ok {
		if v := r.env[name]; v != "" {
			return v, true
		}
		return def, true
	}
	if name, def, ok := strings.Cut(key, "-"); ok {
		if v, set := r.env[name]; set {
			return v, true
		}
		return def, true
	}
	v, ok := r.env[key]
	return v, ok
}

// fileHook is @(FILE): the file's content without its final newline.
func fileHook(name string) (string, bool) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", false
	}
	return strings.TrimSuffix(string(b), "\n"), true
}

// placeholder is uwsgi_manage_placeholder: %(key) is the first option
// with that key; with spaces it is a pipeline of concatenation and
// integer math ("%(processes 2 + 1)").
func (r *reader) placeholder(key string) (string, bool) {
	if !strings.Contains(key, " ") {
		v, ok := r.lookup(key)
		if ok {
			r.used[key] = true
		}
		return v, ok
	}
	var cur string
	have := false
	op := ""
	for _, tok := range strings.Fields(key) {
		var val string
		switch tok {
		case "+", "-", "*", "/":
			op = tok
			continue
		case "++", "--":
			if have {
				n := atoi64(cur)
				if tok == "++" {
					n++
				} else {
					n--
				}
				cur = strconv.FormatInt(n, 10)
			}
			op = ""
			continue
		}
		if isNumber(tok) {
			val = tok
		} else {
			val, _ = r.lookup(tok)
			r.used[tok] = true
		}
		a, b := atoi64(cur), atoi64(val)
		switch op {
		case "+":
			cur = strconv.FormatInt(a+b, 10)
		case "-":
			cur = strconv.FormatInt(a-b, 10)
		case "*":
			cur = strconv.FormatInt(a*b, 10)
		case "/":
			if b == 0 {
				cur = "0"
			} else {
				cur = strconv.FormatInt(a/b, 10)
			}
		default:
			cur += val
		}
		have, op = true, ""
	}
	return cur, true
}

func isNumber(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// atoi64 reads a leading integer as strtoll does; anything else is 0.
func atoi64(s string) int64 {
	n, _ := leadingInt(s)
	return n
}

// leadingInt is C's atoi: optional space and sign, then digits; rest is
// the text after them. ok is false when there are no digits.
func leadingInt(s string) (n int64, ok bool) {
	t := strings.TrimLeft(s, " \t")
	neg := false
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg = t[0] == '-'
		t = t[1:]
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' && i < 18 {
		n = n*10 + int64(t[i]-'0')
		i++
	}
	if neg {
		n = -n
	}
	return n, i > 0
}

// magicFor is the magic variable table of one file (config_magic_table_fill
// in core/uwsgi.c); the upper-case letters keep the first file's values.
func (r *reader) magicFor(path, section string) map[byte]string {
	m := map[byte]string{'%': "%", '(': "%(", 'o': path, 'x': section,
		'k': strconv.Itoa(r.in.CPUs), 'h': r.in.Hostname, 'v': r.in.Cwd}
	full, err := filepath.Abs(path)
	if err != nil {
		full = path
	}
	m['p'] = full
	m['s'] = filepath.Base(full)
	dir := filepath.Dir(full)
	m['d'] = dir + "/"
	if dir == "/" {
		m['d'] = "/"
	}
	m['c'] = filepath.Base(dir)
	m['e'] = strings.TrimPrefix(filepath.Ext(m['s']), ".")
	m['n'] = strings.TrimSuffix(m['s'], filepath.Ext(m['s']))
	for i, part := range strings.FieldsFunc(dir, func(c rune) bool { return c == '/' }) {
		if i > 9 {
			break
		}
		m[byte('0'+i)] = part
	}
	if r.root == nil {
		r.root = map[byte]string{}
		for _, c := range "odspcenx" {
			r.root[byte(c)-'a'+'A'] = m[byte(c)]
		}
	}
	for k, v := range r.root {
		m[k] = v
	}
	return m
}

// magicSub is magic_sub in core/utils.c: every "%X" becomes the table's
// value, and an unknown X becomes nothing (uWSGI fills the whole table
// with empty strings first).
func magicSub(s string, m map[byte]string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+1 < len(s) {
			b.WriteString(m[s[i+1]])
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
