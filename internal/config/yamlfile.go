package config

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// schema is the shape of the YAML file, derived from the option table so
// that a key is declared once.
type schema struct {
	fields map[string]*schema // a mapping with these keys
	item   *schema            // a list of these
	free   bool               // a mapping with any keys and scalar values (env:, static:)
	// scalars is a list of single values (a daemon's command:); hint is
	// what to say when a single value is given instead.
	scalars bool
	hint    string
	// oneOrMore is a single value or a list of them (listen.uwsgi).
	oneOrMore bool
}

// fileSchema builds the schema: "listen.tls.cert" becomes nested mappings,
// "app.x" a key of each entry of the apps: list.
func fileSchema() *schema {
	root := &schema{fields: map[string]*schema{}}
	apps := &schema{fields: map[string]*schema{}}
	root.fields["apps"] = &schema{item: apps}
	root.fields["daemons"] = &schema{item: daemonSchema(false)}
	root.fields["cron"] = &schema{item: daemonSchema(true)}
	apps.fields["limits"] = limitsSchema()
	for _, o := range options {
		if o.key == "" {
			continue
		}
		parent, key := root, o.key
		if k, ok := strings.CutPrefix(key, appPrefix); ok {
			parent, key = apps, k
		}
		parts := strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			if parent.fields[p] == nil {
				parent.fields[p] = &schema{fields: map[string]*schema{}}
			}
			parent = parent.fields[p]
		}
		leaf := &schema{free: o.kind == kindMap || o.kind == kindList}
		if o.kind == kindStrings {
			leaf = &schema{item: &schema{}}
		}
		parent.fields[parts[len(parts)-1]] = leaf
	}
	// An app listener is one address or a list of them.
	for _, k := range listenerKeys {
		root.fields["listen"].fields[strings.TrimPrefix(k, "listen.")] = &schema{oneOrMore: true}
	}
	root.fields["proxy"].fields["trusted"] = &schema{scalars: true,
		hint: "; write the proxies' addresses as a list, like [10.0.0.0/8, 127.0.0.1]"}
	root.fields["listen"].fields["tls"].fields["acme"].fields["domains"] = &schema{scalars: true,
		hint: "; write the names as a list, like [example.org, www.example.org]"}
	return root
}

func (s *schema) keys() []string {
	keys := make([]string, 0, len(s.fields))
	for k := range s.fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fileData is what Load takes from the YAML file.
type fileData struct {
	globals  map[string]*yaml.Node // viper key -> scalar (or list of scalars) node, outside apps:
	appsKey  *yaml.Node            // the "apps" key, for problems about the list
	apps     []*yaml.Node          // mapping node of each app
	appPaths []string              // "apps[1]" for each
	// entries are the mappings of the other lists (daemons:, cron:), by
	// list name.
	entries map[string][]entry
}

// entry is one mapping of a list and where it is ("daemons[0]").
type entry struct {
	node *yaml.Node
	path string
}

// yamlLine finds the line in a yaml.v3 syntax error ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parseFile decodes data case-preserving (viper would lower-case the keys of
// env: and static:, spf13/viper#373) and checks it against the schema,
// reporting every unknown key with its position.
func parseFile(data []byte, c *collector) *fileData {
	fd := &fileData{globals: map[string]*yaml.Node{}}
	doc, ok := decode(data, c)
	if !ok {
		return nil
	}
	if len(doc.Content) == 0 {
		return fd // empty file: "no apps" is reported by the caller
	}
	w := walker{c: c, fd: fd}
	w.walk(oneAppFile(doc.Content[0]), fileSchema(), "", "")
	return fd
}

// oneAppFile reads a file of the apps directory given as a config (gw
// check -c or gw run -c on it) as a config holding that one app: a
// top level with path:, a key of an app and never of the config itself.
func oneAppFile(root *yaml.Node) *yaml.Node {
	m := deref(root)
	if m.Kind != yaml.MappingNode {
		return root
	}
	if _, n := field(m, "path"); n == nil {
		return root
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "apps", Line: m.Line, Column: m.Column}
	list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{m}, Line: m.Line, Column: m.Column}
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{key, list}, Line: m.Line, Column: m.Column}
}

// decode parses data as YAML, reporting a syntax error with its line.
func decode(data []byte, c *collector) (*yaml.Node, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p := Problem{File: c.file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Col = 1
			p.Msg = strings.TrimPrefix(err.Error(), m[0])
		}
		c.probs = append(c.probs, p)
		return nil, false
	}
	return &doc, true
}

type walker struct {
	c  *collector
	fd *fileData
}

// walk checks node n against s. path is how problems name the place
// ("apps[1].env"); key is the viper key, "" inside apps: whose entries Load
// reads itself.
func (w *walker) walk(n *yaml.Node, s *schema, path, key string) {
	n = deref(n)
	if isNull(n) {
		return // "listen:" with nothing under it sets nothing
	}
	switch {
	case s.item != nil:
		if n.Kind != yaml.SequenceNode {
			w.c.at(n, path, "want a list (entries starting with \"- \"), not %s", describe(n))
			return
		}
		for i, it := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			w.walk(it, s.item, ip, "")
			if it = deref(it); it.Kind == yaml.MappingNode && path == "apps" {
				w.fd.apps = append(w.fd.apps, it)
				w.fd.appPaths = append(w.fd.appPaths, ip)
			} else if it.Kind == yaml.MappingNode && (path == "daemons" || path == "cron") {
				if w.fd.entries == nil {
					w.fd.entries = map[string][]entry{}
				}
				w.fd.entries[path] = append(w.fd.entries[path], entry{it, ip})
			}
		}
	case s.fields != nil:
		if n.Kind != yaml.MappingNode {
			w.c.at(n, path, "want a mapping of keys, not %s", describe(n))
			return
		}
		for _, p := range w.pairs(n, path) {
			name := p.key.Value
			child, ok := s.fields[name]
			if !ok {
				w.c.at(p.key, join(path, name), "unknown key%s", didYouMean(name, s.keys()))
				continue
			}
			if path == "" && name == "apps" {
				w.fd.appsKey = p.key
			}
			ck := ""
			if key != "" || path == "" {
				ck = join(key, name)
			}
			w.walk(p.val, child, join(path, name), ck)
		}
	case s.oneOrMore && n.Kind == yaml.SequenceNode:
		w.walk(n, &schema{scalars: true}, path, key)
	case s.scalars:
		if n.Kind != yaml.SequenceNode {
			w.c.at(n, path, "want a list, not %s%s", describe(n), s.hint)
			return
		}
		if key != "" {
			w.fd.globals[key] = n // a list of globals: proxy.trusted
		}
		for i, it := range n.Content {
			if it = deref(it); it.Kind != yaml.ScalarNode || isNull(it) {
				w.c.at(it, fmt.Sprintf("%s[%d]", path, i), "want a single value, not %s", describe(it))
			}
		}
	case s.free:
		if n.Kind != yaml.MappingNode {
			w.c.at(n, path, "want a mapping, not %s", describe(n))
			return
		}
		for _, p := range w.pairs(n, path) {
			switch v := deref(p.val); {
			case v.Kind != yaml.ScalarNode:
				w.c.at(v, join(path, p.key.Value), "want a single value, not %s", describe(v))
			case isNull(v):
				w.c.at(p.key, join(path, p.key.Value), "no value; write \"\" for an empty string")
			}
		}
	default:
		if n.Kind != yaml.ScalarNode {
			w.c.at(n, path, "want a single value, not %s", describe(n))
			return
		}
		if key != "" {
			w.fd.globals[key] = n
		}
	}
}

type pair struct{ key, val *yaml.Node }

// pairs lists the entries of a mapping, expanding YAML merge keys ("<<")
// with explicit keys winning, and reports keys given twice, which viper
// would silently collapse.
func (w *walker) pairs(m *yaml.Node, path string) []pair {
	var out, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Tag == "!!merge" {
			v = deref(v)
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, src := range srcs {
				if src = deref(src); src.Kind == yaml.MappingNode {
					merged = append(merged, w.pairs(src, path)...)
				}
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.c.at(k, path, "want a plain key, not %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			w.c.at(k, join(path, k.Value), "key given twice (first on line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, v})
	}
	for _, p := range merged {
		if seen[p.key.Value] == nil {
			seen[p.key.Value] = p.key
			out = append(out, p)
		}
	}
	return out
}

// field returns the value node of key in mapping m, or nil when it is
// missing or null.
func field(m *yaml.Node, key string) (k, v *yaml.Node) {
	w := walker{c: &collector{}} // problems were reported by the first walk
	for _, p := range w.pairs(m, "") {
		if p.key.Value == key {
			if v := deref(p.val); !isNull(v) {
				return p.key, v
			}
			return nil, nil
		}
	}
	return nil, nil
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return fmt.Sprintf("the value %q", n.Value)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
