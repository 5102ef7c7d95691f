package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/gwhq/gw/gateway"
	"github.com/gwhq/gw/gateway/control"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/watch"
	"github.com/gwhq/gw/runners/proc"
)

// appsDirWatch keeps what serves in step with the apps directory
// (apps_dir:), as uWSGI's Emperor does with its vassals: a new file starts
// its app, a changed (or touched) one reloads it, a removed one drains
// and stops it, each through the gateway alone (PutApp, RemoveApp) while
// the other apps serve on. A refused file (broken, or clashing with an
// app already there) is logged with its path and line, and what it held
// before keeps serving. On each event of the directory it loads the
// whole config again, so a file is judged as gw check judges it, and
// acts on the files whose state differs from what it applied last.
type appsDirWatch struct {
	g      *gateway.Gateway
	log    *slog.Logger
	load   func(serving []string) (*config.Config, error)
	after  func() // after an app came or changed: its touch_reload may watch
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	syncMu sync.Mutex // one sync or reset at a time; held while apps boot

	mu      sync.Mutex // the fields below, held briefly: status reads them
	dir     string
	w       *watch.Watcher
	stopped bool
	// files are the directory's files whose apps serve, by path, as
	// they were when applied; refused the refused ones already logged, by
	// path, at the content logged.
	files   map[string]config.AppFile
	refused map[string]config.AppFile
	// failed are the files whose app failed to boot, by path, as they
	// were then: tried again once they change, not at every sync.
	failed map[string]config.AppFile
}

func newAppsDirWatch(g *gateway.Gateway, log *slog.Logger, load func([]string) (*config.Config, error), after func()) *appsDirWatch {
	ctx, cancel := context.WithCancel(context.Background())
	return &appsDirWatch{g: g, log: log, load: load, after: after, ctx: ctx, cancel: cancel,
		files: map[string]config.AppFile{}, refused: map[string]config.AppFile{}, failed: map[string]config.AppFile{}}
}

// reset takes the files of cfg, the config that serves now (at start and
// after a full reload), as applied, logs the refused ones, and watches
// cfg's directory.
func (d *appsDirWatch) reset(cfg *config.Config) {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	d.files, d.refused, d.failed = map[string]config.AppFile{}, map[string]config.AppFile{}, map[string]config.AppFile{}
	for _, f := range cfg.AppFiles {
		if f.Name != "" {
			d.files[f.Path] = f
		} else {
			d.report(f)
		}
	}
	if cfg.AppsDir == d.dir {
		return
	}
	d.dir = cfg.AppsDir
	if d.dir == "" {
		if d.w != nil {
			d.w.Set(nil)
		}
		return
	}
	if d.w == nil {
		opts := watch.Options{Log: d.log}
		if rt := d.g.RuntimeDir(); rt != "" {
			opts.Skip = []string{rt}
		}
		w, err := watch.New(opts)
		if err != nil {
			d.log.Error("apps_dir: cannot watch the directory; its files are read again only at SIGHUP", "dir", d.dir, "err", err)
			return
		}
		d.w = w
		d.wg.Add(1)
		// Ended by stop.
		go func() { defer d.wg.Done(); d.loop(w) }()
	}
	// Files in subdirectories are no apps; their events cost one load.
	d.w.Set([]watch.Target{{Key: "apps_dir", Trees: []string{d.dir}, Exts: []string{".yaml"}}})
	d.log.Info("apps_dir: watching", "dir", d.dir, "apps", len(d.files))
}

// serving lists the files whose apps serve: they win clashes at a load.
func (d *appsDirWatch) serving() []string {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.files))
	for p := range d.files {
		out = append(out, p)
	}
	return out
}

// fileNames maps the apps of the directory to their files.
func (d *appsDirWatch) fileNames() map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]string, len(d.files))
	for p, f := range d.files {
		out[f.Name] = p
	}
	return out
}

// loop syncs at each debounced change of the directory until stop.
func (d *appsDirWatch) loop(w *watch.Watcher) {
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-w.Events():
		}
		d.sync()
	}
}

// sync loads the config again and applies what changed in the directory.
func (d *appsDirWatch) sync() {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	cfg, err := d.load(d.serving())
	if err != nil {
		d.log.Error("apps_dir: config rejected; every app keeps serving as it does", "err", err)
		return
	}
	d.keep(cfg, d.g.Config())
	d.mu.Lock()
	applied, failed := maps.Clone(d.files), d.failed
	d.mu.Unlock()
	now := map[string]config.AppFile{}
	for _, f := range cfg.AppFiles {
		now[f.Path] = f
	}
	changed := false // the apps changed: the source watch follows
	// Removed files first: the mount or name a removed app frees may be
	// what a new file takes.
	for _, p := range slices.Sorted(maps.Keys(applied)) {
		if _, ok := now[p]; !ok {
			d.remove(p, applied[p].Name)
			changed = true
		}
	}
	d.mu.Lock()
	gone := func(p string, _ config.AppFile) bool { _, ok := now[p]; return !ok }
	maps.DeleteFunc(d.refused, gone)
	maps.DeleteFunc(d.failed, gone)
	d.mu.Unlock()
	for _, f := range cfg.AppFiles { // by path
		old, had := applied[f.Path]
		switch {
		case f.Name == "":
			d.mu.Lock()
			d.report(f) // what it held, if anything, serves on
			d.mu.Unlock()
			continue
		case had && same(old, f), same(failed[f.Path], f):
			continue
		case had && old.Name != f.Name:
			d.remove(f.Path, old.Name) // renamed: the old name goes
			changed = true
		}
		err := d.g.PutApp(d.ctx, cfg, f.Name)
		if d.ctx.Err() != nil {
			return
		}
		if err != nil {
			attrs := []any{"file", f.Path, "app", f.Name, "err", err}
			var se *proc.SpawnError
			if errors.As(err, &se) && se.Detail != "" {
				attrs = append(attrs, "detail", se.Detail)
			}
			d.log.Error("apps_dir: app not started; what served keeps serving, the next change of the file tries again", attrs...)
			d.mu.Lock()
			d.failed[f.Path] = f
			d.mu.Unlock()
			continue
		}
		d.mu.Lock()
		delete(d.refused, f.Path)
		delete(d.failed, f.Path)
		d.files[f.Path] = f
		d.mu.Unlock()
		changed = true
	}
	if changed && d.after != nil {
		d.after()
	}
}

// same says whether a and b are one version of a file holding one app.
func same(a, b config.AppFile) bool {
	return a.Name != "" && a.Name == b.Name && a.Sum == b.Sum && a.ModTime.Equal(b.ModTime)
}

// remove stops app name of file p.
func (d *appsDirWatch) remove(p, name string) {
	d.mu.Lock()
	delete(d.files, p)
	d.mu.Unlock()
	if err := d.g.RemoveApp(d.ctx, name); err != nil && !errors.Is(err, control.ErrUnknownApp) {
		d.log.Error("apps_dir: app not removed", "file", p, "app", name, "err", err)
		return
	}
	d.log.Info("apps_dir: file gone, app stopping", "file", p, "app", name)
}

// report logs why file f is refused, once per content of it; d.mu held.
func (d *appsDirWatch) report(f config.AppFile) {
	if old, ok := d.refused[f.Path]; ok && old.Sum == f.Sum && old.ModTime.Equal(f.ModTime) {
		return
	}
	d.refused[f.Path] = f
	serving := "no app of it serves"
	if _, ok := d.files[f.Path]; ok {
		serving = "its running version keeps serving"
	}
	d.log.Error("apps_dir: file refused; "+serving, "file", f.Path, "problems", f.Problems.Error())
}

// stop ends the watching and waits for a change under way to give up.
func (d *appsDirWatch) stop() {
	d.cancel()
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.stopped = true
	w := d.w
	d.mu.Unlock()
	d.wg.Wait()
	if w != nil {
		w.Close()
	}
}

// keep carries into cfg, read again, the serving apps of files it
// refuses, so a broken file leaves its running version alone, at a sync
// and at a full reload; serving is the config serving now. A kept app
// still holds its name and mount: a file of the directory that takes
// either is refused in turn. Against the config file's apps it loses.
func (d *appsDirWatch) keep(cfg, serving *config.Config) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fromDir := map[string]int{} // app name -> index in cfg.AppFiles
	for i, f := range cfg.AppFiles {
		if f.Name != "" {
			fromDir[f.Name] = i
		}
	}
	clashes := func(a, b config.App) bool {
		return a.Name == b.Name || a.Host == b.Host && a.Mount == b.Mount
	}
	for i, f := range cfg.AppFiles {
		old, ok := d.files[f.Path]
		if f.Name != "" || !ok {
			continue
		}
		j := slices.IndexFunc(serving.Apps, func(a config.App) bool { return a.Name == old.Name })
		if j < 0 {
			continue
		}
		kept := serving.Apps[j]
		if slices.ContainsFunc(cfg.Apps, func(a config.App) bool { _, dir := fromDir[a.Name]; return !dir && clashes(a, kept) }) {
			continue // the config file took its name or mount: it goes
		}
		cfg.Apps = slices.DeleteFunc(cfg.Apps, func(a config.App) bool {
			k, dir := fromDir[a.Name]
			if !dir || !clashes(a, kept) {
				return false
			}
			cfg.AppFiles[k].Name = ""
			cfg.AppFiles[k].Problems = config.Problems{{File: cfg.AppFiles[k].Path, Msg: fmt.Sprintf(
				"its name or mount is already served by %s, whose running version serves on while that file is refused; this file is refused", f.Path)}}
			return true
		})
		d.report(f)
		cfg.Apps = append(cfg.Apps, kept)
		cfg.AppFiles[i] = old
	}
}

// refuseUsers refuses, alone, the files of the apps directory whose app
// may not run as the user it names (unknown, root without --allow-root,
// another uid than a gw that is not root), which would otherwise reject
// the whole config at runnerUsers.
func refuseUsers(cfg *config.Config) {
	for i, f := range cfg.AppFiles {
		j := slices.IndexFunc(cfg.Apps, func(a config.App) bool { return f.Name != "" && a.Name == f.Name })
		if j < 0 {
			continue
		}
		one := *cfg
		one.Apps, one.Daemons, one.Cron = []config.App{cfg.Apps[j]}, nil, nil
		if _, err := runnerUsers(&one); err != nil {
			cfg.AppFiles[i].Name = ""
			cfg.AppFiles[i].Problems = config.Problems{{File: f.Path, Msg: err.Error()}}
			cfg.Apps = slices.Delete(cfg.Apps, j, j+1)
		}
	}
}
