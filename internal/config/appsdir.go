package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The apps directory (apps_dir:, --apps-dir), uWSGI's Emperor: every
// *.yaml file in it holds one app, with the keys of an entry of apps:.
// Each file stands alone: one that is broken, or that clashes with an app
// already there, is refused (AppFile.Problems) and the others load, so a
// bad upload never stops the neighbours. Between two files that clash
// the newer one loses: the one not serving yet, else the later written.

// AppFile is one file of the apps directory.
type AppFile struct {
	Path    string
	Name    string // the app it holds, in Config.Apps; "" when refused
	ModTime time.Time
	Sum     [sha256.Size]byte // of its bytes: a rewrite with equal content is still a change when ModTime moves
	// Problems say why it was refused (then it holds no app of Apps),
	// with the file's path and the line.
	Problems Problems
}

// IsAppFile says whether a file name in the apps directory holds an app:
// *.yaml, not hidden (an editor's swap or temp file) nor a backup (~).
func IsAppFile(name string) bool {
	return strings.HasSuffix(name, ".yaml") && !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, "~")
}

// dirApp is a file of the directory on its way through appsDir.
type dirApp struct {
	file AppFile
	app  App
	seen appSeen
}

// appsDir loads every app file of cfg.AppsDir into cfg.Apps and
// cfg.AppFiles. Problems of a file stay with it; only a directory that
// cannot be read fails the Load.
func (l *loader) appsDir(cfg *Config) {
	if cfg.AppsDir == "" {
		return
	}
	dv := l.get("apps_dir")
	if !l.mustExist(dv, cfg.AppsDir, true) {
		return
	}
	entries, err := os.ReadDir(cfg.AppsDir)
	if err != nil {
		l.c.of(dv, "%v", err)
		return
	}
	var files []*dirApp
	for _, e := range entries {
		if e.IsDir() || !IsAppFile(e.Name()) {
			continue
		}
		files = append(files, l.dirApp(filepath.Join(cfg.AppsDir, e.Name())))
	}
	// Who wins a clash: the apps of the config file, then the files
	// serving now, then the older files.
	serving := map[string]bool{}
	for _, p := range l.src.Serving {
		serving[p] = true
	}
	order := slices.Clone(files)
	slices.SortStableFunc(order, func(a, b *dirApp) int {
		switch {
		case serving[a.file.Path] != serving[b.file.Path]:
			if serving[a.file.Path] {
				return -1
			}
			return 1
		case !a.file.ModTime.Equal(b.file.ModTime):
			return a.file.ModTime.Compare(b.file.ModTime)
		}
		return strings.Compare(a.file.Path, b.file.Path)
	})
	names, routes := map[string]string{}, map[string]string{}
	for _, s := range l.seen { // the apps of the config file (or APP)
		where := s.path
		if cfg.File != "" {
			where = cfg.File + " " + s.path
		}
		names[s.name.text] = where + lineOf(s.name.node)
		if m, err := normMount(s.mount.text); err == nil {
			routes[s.host+" "+m] = where
		}
	}
	// Floors must fit in max_runners (checkBudget): the files that do
	// not, in the same order, are refused alone. Past the config file's
	// own excess checkBudget fails the Load anyway.
	floors := 0
	for _, a := range cfg.Apps {
		floors += a.MinWorkers
	}
	for _, d := range order {
		if len(d.file.Problems) > 0 {
			continue
		}
		route := d.app.Host + " " + d.app.Mount
		c := &collector{file: d.file.Path}
		if first, dup := names[d.app.Name]; dup {
			n, path := d.seen.where(d.seen.name)
			c.at(n, path, "app name %q is already used by %s; this file is refused: give it another name", d.app.Name, first)
		} else if first, dup := routes[route]; dup {
			host := d.app.Host
			if host == "" {
				host = "any host"
			}
			n, path := d.seen.where(d.seen.mount)
			c.at(n, path, "%s at mount %s is already served by %s; this file is refused: give it another mount or host", host, d.app.Mount, first)
		} else if max := cfg.MaxRunners; max > 0 && floors <= max && floors+d.app.MinWorkers > max {
			n, path := d.seen.floor()
			c.at(n, path, "its floor of %d runners (min_workers, by default workers) does not fit in max_runners %d, of which the apps already loaded hold %d; this file is refused: lower its min_workers (0 = on demand) or raise max_runners",
				d.app.MinWorkers, max, floors)
		}
		if len(c.probs) > 0 {
			d.file.Problems = c.sorted()
			continue
		}
		names[d.app.Name], routes[route] = d.file.Path, d.file.Path
		floors += d.app.MinWorkers
		d.file.Name = d.app.Name
	}
	for _, d := range files { // in the directory's order: by name
		if d.file.Name != "" {
			cfg.Apps = append(cfg.Apps, d.app)
		}
		cfg.AppFiles = append(cfg.AppFiles, d.file)
	}
}

// dirApp reads and builds the app of one file, with problems of its own:
// the file is its own config file for them, and relative paths in it are
// taken from the directory, as the config file's are from its own.
func (l *loader) dirApp(path string) *dirApp {
	d := &dirApp{file: AppFile{Path: path}}
	c := &collector{file: path}
	defer func() {
		if len(c.probs) > 0 {
			d.file.Problems = c.sorted()
		}
	}()
	data, err := os.ReadFile(path)
	if err == nil {
		var fi os.FileInfo
		if fi, err = os.Stat(path); err == nil {
			d.file.ModTime = fi.ModTime()
		}
	}
	if err != nil {
		c.probs = append(c.probs, Problem{File: path, Msg: fmt.Sprintf("read app file: %v", unwrapPath(err))})
		return d
	}
	d.file.Sum = sha256.Sum256(data)
	doc, ok := decode(data, c)
	if !ok {
		return d
	}
	if len(doc.Content) == 0 {
		// An empty file is most often one being written: wait for the rest.
		c.probs = append(c.probs, Problem{File: path, Msg: "empty: want one app's keys (path:, mount:, ...)"})
		return d
	}
	ip := strings.TrimSuffix(filepath.Base(path), ".yaml")
	m := deref(doc.Content[0])
	w := walker{c: c, fd: &fileData{globals: map[string]*yaml.Node{}}}
	w.walk(m, fileSchema().fields["apps"].item, ip, "")
	if len(c.probs) > 0 || m.Kind != yaml.MappingNode {
		return d
	}
	saved, savedBase, savedSeen := l.c, l.base, len(l.seen)
	l.c, l.base = c, filepath.Dir(path)
	defer func() { l.c, l.base, l.seen = saved, savedBase, l.seen[:savedSeen] }()
	pv := value{path: ip + ".path"}
	if _, n := field(m, "path"); n != nil {
		pv = value{text: n.Value, node: n, path: ip + ".path", set: true}
	} else {
		c.at(m, ip, "missing path: the app's file, directory or module:callable")
	}
	d.app = l.app(m, ip, pv)
	d.seen = l.seen[len(l.seen)-1]
	if _, n := field(m, "name"); n == nil {
		// name defaults to the file's base name, not the app path's.
		d.app.Name = ip
		d.seen.name = value{text: ip, path: ip + ".name"}
	}
	return d
}

// unwrapPath drops the *os.PathError wrapping, whose path the problem
// names already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
