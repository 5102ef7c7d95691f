package uwsgiimport

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Input is what Read and Import take.
type Input struct {
	File     string   // the config file; FILE:section reads that section instead of [uwsgi]
	Environ  []string // KEY=value pairs for $(KEY) and if-env; nothing else is read from the environment
	CPUs     int      // the value of %k (uWSGI: the number of CPUs)
	Hostname string   // the value of %h
	Cwd      string   // the value of %v, and where a relative include is looked up first
}

// Option is one option as uWSGI would apply it, after every expansion.
type Option struct {
	Key   string
	Value string
	Raw   string // the value as written, before any expansion
	Flag  bool   // written without a value ("master" alone, <master/>)
	Pos   string // FILE:LINE where it was written
	note  string // what the reader did with a directive (if-env, ini, ...)
	ph    bool   // a placeholder set with set-placeholder: not an option
	bad   bool   // a directive that could not be followed (missing include)
}

// entry is one key/value pair as a format reader found it.
type entry struct {
	key, value string
	raw        string // value before the magic variables
	flag       bool
	line       int
}

// splitSection splits "file.ini:section"; a colon before the last slash
// belongs to the path.
func splitSection(file string) (path, section string) {
	i := strings.LastIndexByte(file, ':')
	if i < 0 || i < strings.LastIndexByte(file, '/') {
		return file, ""
	}
	return file[:i], file[i+1:]
}

// entries reads the pairs of section (default "uwsgi") from data, in the
// format the file name's extension says; ini is the default, as in uWSGI.
func entries(name string, data []byte, section string) ([]entry, error) {
	if section == "" {
		section = "uwsgi"
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		return yamlEntries(data, section), nil
	case ".json", ".js":
		return jsonEntries(data, section)
	case ".xml":
		return xmlEntries(data, section)
	}
	return iniEntries(data, section), nil
}

// iniEntries follows core/ini.c: no inline comments (a ';' or '#' only
// starts a comment at the start of a line), a key without '=' is a flag,
// and repeated keys are all kept.
func iniEntries(data []byte, section string) []entry {
	var out []entry
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.Trim(sc.Text(), " \t\r")
		switch {
		case line == "", line[0] == ';', line[0] == '#':
		case line[0] == '[':
			cur = strings.TrimSuffix(line[1:], "]")
		case cur == section:
			k, v, ok := strings.Cut(line, "=")
			out = append(out, entry{key: strings.Trim(k, " \t\r"), value: strings.Trim(v, " \t\r"), flag: !ok, line: n})
		}
	}
	return out
}

// yamlEntries follows uWSGI's own line-based YAML reader (core/yaml.c
// without libyaml): '#' starts a comment anywhere on a line, "key: value"
// splits at the first ": ", and a list item or a dedent ends the section.
// A real YAML parser would reject what it accepts ("logformat: a: b").
func yamlEntries(data []byte, section string) []entry {
	var out []entry
	in, base := false, 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		body := strings.TrimLeft(line, " \t")
		body = strings.TrimRight(body, " \t\r")
		if body == "" {
			continue
		}
		depth := len(line) - len(strings.TrimLeft(line, " \t"))
		if in && depth <= base {
			break
		}
		if !in {
			if k, _, ok := strings.Cut(body, ":"); ok && k == section {
				in, base = true, depth
			}
			continue
		}
		if body[0] == '-' || body[0] == '[' || body[0] == '{' {
			break
		}
		i := strings.Index(body, ": ")
		if j := strings.Index(body, ":\t"); i < 0 || (j >= 0 && j < i) {
			i = j
		}
		if i < 0 {
			break
		}
		out = append(out, entry{key: strings.TrimRight(body[:i], " \t"), value: strings.Trim(body[i+2:], " \t"), line: n})
	}
	return out
}

// jsonEntries reads {"uwsgi": {"key": value, "list": [v1, v2]}} keeping
// the order of the keys (encoding/json's maps would lose it); JSON is
// read as YAML, which also forgives the trailing commas people write.
func jsonEntries(data []byte, section string) ([]entry, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse json: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("parse json: want an object at the top")
	}
	root := doc.Content[0]
	var sec *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == section {
			sec = root.Content[i+1]
		}
	}
	if sec == nil || sec.Kind != yaml.MappingNode {
		return nil, nil
	}
	var out []entry
	for i := 0; i+1 < len(sec.Content); i += 2 {
		k, v := sec.Content[i], sec.Content[i+1]
		vals := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			vals = v.Content
		}
		for _, item := range vals {
			e := entry{key: k.Value, value: item.Value, line: item.Line}
			switch {
			case item.Tag == "!!bool" && strings.EqualFold(item.Value, "true"):
				e.value, e.flag = "", true
			case item.Tag == "!!bool":
				e.value = "false"
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// xmlEntries reads <uwsgi><key>value</key><flag/></uwsgi>: the children
// of the first element named after the section.
func xmlEntries(data []byte, section string) ([]entry, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var out []entry
	depth, in := 0, false
	var cur *entry
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parse xml: %w", err)
		}
		line, _ := d.InputPos()
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1 && t.Name.Local == section:
				in = true
			case in && depth == 2:
				cur = &entry{key: t.Name.Local, line: line}
			}
		case xml.CharData:
			if cur != nil {
				cur.value += string(t)
			}
		case xml.EndElement:
			if cur != nil && depth == 2 {
				cur.value = strings.TrimSpace(cur.value)
				cur.flag = cur.value == ""
				out = append(out, *cur)
				cur = nil
			}
			depth--
			if depth == 0 && in {
				return out, nil
			}
		}
	}
}

// readFile reads path's entries from section, with the magic variables
// of that file substituted.
func (r *reader) readFile(path, section string) ([]entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	es, err := entries(path, data, section)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m := r.magicFor(path, section)
	for i := range es {
		es[i].raw = es[i].value
		es[i].key = magicSub(es[i].key, m)
		es[i].value = magicSub(es[i].value, m)
	}
	return es, nil
}
