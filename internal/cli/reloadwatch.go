package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/gwhq/gw/gateway"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/internal/watch"
	"github.com/gwhq/gw/runners/proc"
)

// sourceExts are the files whose change reloads an app under --reload, by
// language. PHP has none: php-cgi compiles each script at each request
// (opcache, where loaded, checks the file's mtime), so an edit is served
// without a reload. A Go plugin is its binary (sourceTargets).
var sourceExts = map[config.Lang][]string{
	config.LangPython: {".py"},
	config.LangRuby:   {".rb", ".ru", ".erb"},
	config.LangPerl:   {".pl", ".pm", ".psgi"},
}

// sourceWatch reloads one app when its sources change (reload: true,
// --reload) or one of its touch_reload files does. The reload is gw ctl
// reload APP's (Gateway.ReloadApp) with the config serving now: the new
// runners boot while the old serve, and a boot that fails (a syntax error)
// leaves the old ones serving. It is started once gw serves, rebuilt
// after each reload (the apps may have changed), and stopped first at a
// stop or an upgrade's hand-over, so only one gw reloads on a change.
type sourceWatch struct {
	g      *gateway.Gateway
	log    *slog.Logger
	ctx    context.Context // ends at stop: a reload under way is abandoned
	cancel context.CancelFunc
	wg     sync.WaitGroup // the event loop

	mu      sync.Mutex
	w       *watch.Watcher // nil until some app has something to watch
	stopped bool
}

func newSourceWatch(g *gateway.Gateway, log *slog.Logger) *sourceWatch {
	ctx, cancel := context.WithCancel(context.Background())
	return &sourceWatch{g: g, log: log, ctx: ctx, cancel: cancel}
}

// update watches what the config serving now asks for. The watcher (an
// inotify instance) is made only once some app asks for one.
func (s *sourceWatch) update() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	cfg := s.g.Config()
	ts := sourceTargets(cfg, s.log)
	if len(ts) == 0 && s.w == nil {
		return
	}
	if s.w == nil {
		opts := watch.Options{Log: s.log}
		if rt := s.g.RuntimeDir(); rt != "" {
			opts.Skip = []string{rt}
		}
		w, err := watch.New(opts)
		if err != nil {
			s.log.Error("reload: cannot watch files; apps reload only at SIGHUP or gw ctl reload", "err", err)
			return
		}
		s.w = w
		s.wg.Add(1)
		// Ended by stop.
		go func() { defer s.wg.Done(); s.loop(w) }()
	}
	s.w.Set(ts)
}

// loop reloads the app of each change until stop.
func (s *sourceWatch) loop(w *watch.Watcher) {
	for {
		var ev watch.Event
		select {
		case <-s.ctx.Done():
			return
		case ev = <-w.Events():
		}
		s.log.Info("reload: file changed", "app", ev.Key, "file", ev.Path)
		if err := s.g.ReloadApp(s.ctx, nil, ev.Key); err != nil {
			if s.ctx.Err() != nil {
				return
			}
			attrs := []any{"app", ev.Key, "err", err}
			var se *proc.SpawnError
			if errors.As(err, &se) && se.Detail != "" {
				attrs = append(attrs, "detail", se.Detail)
			}
			s.log.Error("reload: app not reloaded, the running runners keep serving; the next change tries again", attrs...)
		}
	}
}

// stop ends the watching and waits for a reload under way to give up.
func (s *sourceWatch) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	s.cancel()
	s.wg.Wait()
	if s.w != nil {
		s.w.Close()
	}
}

// sourceTargets is what each app of cfg watches: with reload, the tree of
// its directory (and its import root) for its language's sources, or a Go
// plugin's binary; its touch_reload files in any case.
func sourceTargets(cfg *config.Config, log *slog.Logger) []watch.Target {
	var ts []watch.Target
	for _, a := range cfg.Apps {
		t := watch.Target{Key: a.Name, Files: slices.Clone(a.TouchReload)}
		if a.Reload {
			switch a.Lang {
			case config.LangGo:
				t.Files = append(t.Files, a.Path)
			case config.LangPHP:
				log.Info("reload: php-cgi reads each script anew, nothing to watch", "app", a.Name)
			default:
				t.Exts, t.Trees = sourceExts[a.Lang], appDirs(a)
			}
		}
		if len(t.Trees)+len(t.Files) > 0 {
			ts = append(ts, t)
		}
	}
	return ts
}

// appDirs are the directories an app's code comes from: its file's, and
// its import root (dir:; the working directory for a module:callable
// without one).
func appDirs(a config.App) []string {
	var dirs []string
	if fi, err := os.Stat(a.Path); err == nil && !fi.IsDir() {
		dirs = append(dirs, filepath.Dir(a.Path))
	}
	dir := a.Dir
	if dir == "" && len(dirs) == 0 {
		dir, _ = os.Getwd()
	}
	if dir != "" && (len(dirs) == 0 || dirs[0] != dir) {
		dirs = append(dirs, dir)
	}
	return dirs
}
