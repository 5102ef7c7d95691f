// Package watch reports, debounced, that files changed: the source trees
// and single files of a set of targets, each under a key (gw: an app's
// name). It sits on fsnotify (inotify on Linux), which watches
// directories, not trees: every directory of a tree is one inotify watch,
// and files are matched by name inside their directory's watch, so an
// editor that saves by writing a new file and renaming it over the old
// one, or deletes and recreates it, is seen like one that writes in place.
package watch

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Target is what one key watches.
type Target struct {
	Key string
	// Trees are directories watched with every directory below them
	// (hidden ones, __pycache__ and node_modules left out) for changes to
	// files whose extension is in Exts.
	Trees []string
	Exts  []string // ".py", ".rb"
	// Files are single files watched through their directory: a write, a
	// touch (mtime), a create, a rename over or a removal. A file may be
	// missing at the start; its directory must exist.
	Files []string
}

// Event says that a file of Key changed; Path is the first file of the
// burst that the debounce folded into this one event.
type Event struct {
	Key  string
	Path string
}

// Options tune a Watcher; the zero value is usable.
type Options struct {
	// Debounce is how long a key must stay quiet before its event is sent,
	// so an editor's save (write a temp file, rename, chmod) or a git
	// checkout of many files is one event (default 150ms). A key that
	// never goes quiet still gets its event after 10 times this.
	Debounce time.Duration
	// MaxDirs caps the directories watched, as each costs an inotify watch
	// (fs.inotify.max_user_watches, often 8192 per user) (default 4096).
	MaxDirs int
	// Skip are directories never watched, nor anything below them (gw's
	// runtime directory, which lives in the temp dir an app may also use).
	Skip []string
	Log  *slog.Logger
}

// Watcher watches the targets given to Set until Close. One goroutine,
// run, owns all of its state.
type Watcher struct {
	fs     *fsnotify.Watcher
	opts   Options
	set    chan setReq
	events chan Event
	stop   chan struct{}
	done   chan struct{}
}

// New starts a Watcher with no targets.
func New(opts Options) (*Watcher, error) {
	if opts.Debounce <= 0 {
		opts.Debounce = 150 * time.Millisecond
	}
	if opts.MaxDirs <= 0 {
		opts.MaxDirs = 4096
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{fs: fw, opts: opts, set: make(chan setReq), events: make(chan Event),
		stop: make(chan struct{}), done: make(chan struct{})}
	st := &state{w: w, watched: map[string]bool{}, pending: map[string]*pending{}, ready: map[string]string{}}
	// Ended by Close.
	go st.run()
	return w, nil
}

// Set replaces the watched targets. It returns once the directories are
// watched, so a change made after Set returns is seen.
func (w *Watcher) Set(ts []Target) {
	clean := make([]Target, len(ts))
	for i, t := range ts {
		clean[i] = Target{Key: t.Key, Exts: t.Exts, Trees: cleanAll(t.Trees), Files: cleanAll(t.Files)}
	}
	req := setReq{ts: clean, done: make(chan struct{})}
	select {
	case w.set <- req:
		<-req.done
	case <-w.done:
	}
}

// setReq is a Set for the owner; it closes done once applied.
type setReq struct {
	ts   []Target
	done chan struct{}
}

// cleanAll makes paths absolute and clean, as events name them.
func cleanAll(ps []string) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if abs, err := filepath.Abs(p); err == nil {
			out = append(out, abs)
		}
	}
	return out
}

// Events delivers one event per key and burst, at the reader's pace: while
// the reader is busy, further changes to a key fold into its next event.
func (w *Watcher) Events() <-chan Event { return w.events }

// Close stops the watcher and waits for it.
func (w *Watcher) Close() error {
	close(w.stop)
	<-w.done
	return w.fs.Close()
}

// pending is a key whose burst of changes has not gone quiet yet.
type pending struct {
	path       string
	first, due time.Time
}

// state is the owner goroutine's.
type state struct {
	w         *Watcher
	targets   []Target
	watched   map[string]bool     // directories with an inotify watch
	pending   map[string]*pending // by key
	ready     map[string]string   // key -> path, quiet and not yet read
	left      int                 // directories not watched for the cap, since the last Set
	capLogged bool
}

func (s *state) run() {
	defer close(s.w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var out chan Event
		var next Event
		for k, p := range s.ready {
			out, next = s.w.events, Event{Key: k, Path: p}
			break
		}
		select {
		case <-s.w.stop:
			timer.Stop()
			return
		case req := <-s.w.set:
			s.apply(req.ts)
			close(req.done)
		case ev, ok := <-s.w.fs.Events:
			if !ok {
				return
			}
			s.handle(ev)
		case err, ok := <-s.w.fs.Errors:
			if !ok {
				return
			}
			// An overflow (the inotify queue filled) loses events; the
			// next change is seen again.
			s.w.opts.Log.Warn("watch: events lost", "err", err)
		case <-timer.C:
		case out <- next:
			delete(s.ready, next.Key)
			continue
		}
		now := time.Now()
		var soonest time.Time
		for k, p := range s.pending {
			if !p.due.After(now) {
				if _, ok := s.ready[k]; !ok {
					s.ready[k] = p.path
				}
				delete(s.pending, k)
				continue
			}
			if soonest.IsZero() || p.due.Before(soonest) {
				soonest = p.due
			}
		}
		if !soonest.IsZero() {
			timer.Reset(soonest.Sub(now))
		}
	}
}

// apply watches the directories ts need and drops the ones they no
// longer do.
func (s *state) apply(ts []Target) {
	s.targets, s.left, s.capLogged = ts, 0, false
	want := map[string]bool{}
	var leftOut []string
	add := func(dir string) {
		if want[dir] {
			return
		}
		if len(want) >= s.w.opts.MaxDirs {
			s.left++
			if len(leftOut) < 5 {
				leftOut = append(leftOut, dir)
			}
			return
		}
		want[dir] = true
	}
	for _, t := range ts {
		for _, root := range t.Trees {
			s.walk(root, add)
		}
		for _, f := range t.Files {
			add(filepath.Dir(f))
		}
	}
	for dir := range s.watched {
		if !want[dir] {
			_ = s.w.fs.Remove(dir) // gone already if the directory was removed
			delete(s.watched, dir)
		}
	}
	for dir := range want {
		s.watch(dir)
	}
	if s.left > 0 {
		s.capLogged = true
		s.w.opts.Log.Warn("watch: too many directories, some are not watched: changes there reload nothing",
			"max_dirs", s.w.opts.MaxDirs, "left_out", s.left, "first_left_out", leftOut)
	}
}

func (s *state) watch(dir string) {
	if s.watched[dir] {
		return
	}
	if err := s.w.fs.Add(dir); err != nil {
		s.w.opts.Log.Warn("watch: directory not watched", "dir", dir, "err", err)
		return
	}
	s.watched[dir] = true
}

// walk calls add for root and every directory below it that is not
// skipped. Unreadable directories are left out quietly.
func (s *state) walk(root string, add func(string)) {
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if p != root && s.skipDir(p) {
			return filepath.SkipDir
		}
		add(p)
		return nil
	})
}

// skipDir: directories nobody edits sources in, whose churn (bytecode
// caches, git objects, virtualenvs) would only cost watches.
func (s *state) skipDir(p string) bool {
	name := filepath.Base(p)
	if strings.HasPrefix(name, ".") || name == "__pycache__" || name == "node_modules" {
		return true
	}
	for _, sk := range s.w.opts.Skip {
		if p == sk || strings.HasPrefix(p, sk+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// handle matches one fsnotify event against the targets.
func (s *state) handle(ev fsnotify.Event) {
	p := ev.Name
	if ev.Has(fsnotify.Create) && s.inTree(p) {
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			s.newDir(p)
			return
		}
	}
	if (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) && s.watched[p] {
		// The directories below a renamed one keep their watches (inotify
		// follows the inode) under names that are no longer theirs; its
		// new name, if in a tree, comes as a Create.
		for d := range s.watched {
			if d == p || under(d, p) {
				_ = s.w.fs.Remove(d)
				delete(s.watched, d)
			}
		}
	}
	for _, t := range s.targets {
		if s.matches(t, p) {
			s.touch(t.Key, p)
		}
	}
}

// newDir watches a directory made inside a tree, and what is below it
// (mkdir -p, a checkout, a rename into the tree); files that were written
// there before the watch existed count as changes.
func (s *state) newDir(dir string) {
	if s.skipDir(dir) {
		return
	}
	s.walk(dir, func(d string) {
		if s.watched[d] {
			return
		}
		if len(s.watched) >= s.w.opts.MaxDirs {
			if !s.capLogged {
				s.capLogged = true
				s.w.opts.Log.Warn("watch: too many directories, a new one is not watched", "max_dirs", s.w.opts.MaxDirs, "dir", d)
			}
			return
		}
		s.watch(d)
	})
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if p != dir && s.skipDir(p) {
				return filepath.SkipDir
			}
			return nil
		}
		for _, t := range s.targets {
			if s.matches(t, p) {
				s.touch(t.Key, p)
			}
		}
		return nil
	})
}

// inTree reports whether p lies in some target's tree.
func (s *state) inTree(p string) bool {
	for _, t := range s.targets {
		for _, root := range t.Trees {
			if under(p, root) {
				return true
			}
		}
	}
	return false
}

// matches reports whether a change to p concerns t.
func (s *state) matches(t Target, p string) bool {
	if slices.Contains(t.Files, p) {
		return true
	}
	name := filepath.Base(p)
	if ignored(name) || !slices.Contains(t.Exts, filepath.Ext(name)) {
		return false
	}
	for _, root := range t.Trees {
		if under(p, root) && !s.skipped(p, root) {
			return true
		}
	}
	return false
}

// skipped reports whether some directory between root and p is skipped.
func (s *state) skipped(p, root string) bool {
	for d := filepath.Dir(p); d != root && len(d) > len(root); d = filepath.Dir(d) {
		if s.skipDir(d) {
			return true
		}
	}
	return false
}

// ignored: editor droppings that end like sources: emacs lock files
// (.#app.py), backups (app.py~), vim swap files (.app.py.swp) and
// bytecode.
func ignored(name string) bool {
	switch {
	case strings.HasPrefix(name, ".#"), strings.HasSuffix(name, "~"):
		return true
	}
	switch filepath.Ext(name) {
	case ".swp", ".swo", ".swx", ".pyc", ".pyo":
		return true
	}
	return false
}

func under(p, root string) bool {
	return strings.HasPrefix(p, root+string(filepath.Separator))
}

// touch records a change of key; its event waits for the burst to end.
func (s *state) touch(key, p string) {
	now := time.Now()
	pe := s.pending[key]
	if pe == nil {
		s.pending[key] = &pending{path: p, first: now, due: now.Add(s.w.opts.Debounce)}
		return
	}
	pe.due = now.Add(s.w.opts.Debounce)
	if limit := pe.first.Add(10 * s.w.opts.Debounce); pe.due.After(limit) {
		pe.due = limit
	}
}
