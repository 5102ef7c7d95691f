package watch

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const debounce = 100 * time.Millisecond

// quiet is how long a test waits to be sure no event comes: several
// debounce periods.
const quiet = 5 * debounce

func start(t *testing.T, opts Options, ts ...Target) *Watcher {
	t.Helper()
	if opts.Debounce == 0 {
		opts.Debounce = debounce
	}
	w, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	w.Set(ts)
	return w
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// want waits for the next event and checks it.
func want(t *testing.T, w *Watcher, key, path string) {
	t.Helper()
	select {
	case ev := <-w.Events():
		if ev.Key != key || ev.Path != path {
			t.Fatalf("event %+v, want key %q path %q", ev, key, path)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no event for %s within 5s", path)
	}
}

// none checks that no event comes within quiet.
func none(t *testing.T, w *Watcher) {
	t.Helper()
	select {
	case ev := <-w.Events():
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(quiet):
	}
}

func pyTree(key, root string) Target {
	return Target{Key: key, Trees: []string{root}, Exts: []string{".py"}}
}

func TestDebounceBurstIsOneEvent(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app.py")
	write(t, app, "v0")
	w := start(t, Options{}, pyTree("a", dir))
	for i := range 10 {
		write(t, app, strings.Repeat("x", i))
		time.Sleep(5 * time.Millisecond) // 10 writes over 50ms: one burst
	}
	want(t, w, "a", app)
	none(t, w)
}

// TestEditorSaves: the ways editors save, each one event naming the source.
func TestEditorSaves(t *testing.T) {
	for _, tc := range []struct {
		name string
		save func(t *testing.T, app string)
	}{
		{"in place", func(t *testing.T, app string) { write(t, app, "new") }},
		{"rename over (vim, atomic savers)", func(t *testing.T, app string) {
			tmp := filepath.Join(filepath.Dir(app), ".app.py.tmp1234")
			write(t, tmp, "new")
			if err := os.Rename(tmp, app); err != nil {
				t.Fatal(err)
			}
		}},
		{"backup by rename, then a new file (vim backupcopy=no)", func(t *testing.T, app string) {
			if err := os.Rename(app, app+"~"); err != nil {
				t.Fatal(err)
			}
			write(t, app, "new")
		}},
		{"delete and recreate", func(t *testing.T, app string) {
			if err := os.Remove(app); err != nil {
				t.Fatal(err)
			}
			write(t, app, "new")
		}},
		{"touch", func(t *testing.T, app string) {
			now := time.Now()
			if err := os.Chtimes(app, now, now); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			app := filepath.Join(dir, "app.py")
			write(t, app, "old")
			w := start(t, Options{}, pyTree("a", dir))
			tc.save(t, app)
			want(t, w, "a", app)
			none(t, w)
		})
	}
}

// TestIgnored: changes that are not sources make no event. A source
// written after them must be the event's path: had an ignored file
// counted, the burst's first path would name it.
func TestIgnored(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app.py")
	write(t, app, "v0")
	for _, d := range []string{"__pycache__", ".git", ".venv/lib", "node_modules/x"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w := start(t, Options{}, pyTree("a", dir))
	for _, f := range []string{"app.pyc", ".#app.py", "app.py~", ".app.py.swp", "notes.txt", "4913",
		"__pycache__/app.cpython-311.pyc", "__pycache__/x.py", ".git/hooks.py", ".venv/lib/site.py", "node_modules/x/y.py"} {
		write(t, filepath.Join(dir, f), "x")
	}
	none(t, w)
	write(t, app, "v1")
	want(t, w, "a", app)
}

func TestNewSubdirectoriesAreWatched(t *testing.T) {
	dir := t.TempDir()
	w := start(t, Options{}, pyTree("a", dir))
	mod := filepath.Join(dir, "pkg", "sub", "deep", "mod.py")
	write(t, mod, "v0") // mkdir -p, then the file: maybe before the watch on deep exists
	want(t, w, "a", mod)
	write(t, mod, "v1") // now certainly through deep's own watch
	want(t, w, "a", mod)
	// A directory renamed into the tree counts too.
	out := t.TempDir()
	write(t, filepath.Join(out, "lib", "m.py"), "x")
	if err := os.Rename(filepath.Join(out, "lib"), filepath.Join(dir, "lib")); err != nil {
		t.Fatal(err)
	}
	want(t, w, "a", filepath.Join(dir, "lib", "m.py"))
	write(t, filepath.Join(dir, "lib", "m.py"), "y")
	want(t, w, "a", filepath.Join(dir, "lib", "m.py"))
}

func TestFilesTouchReload(t *testing.T) {
	dir := t.TempDir()
	trigger := filepath.Join(dir, "reload.txt") // missing at the start
	w := start(t, Options{}, Target{Key: "api", Files: []string{trigger}})
	write(t, filepath.Join(dir, "other.txt"), "x")
	none(t, w)
	write(t, trigger, "")
	want(t, w, "api", trigger)
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(trigger, later, later); err != nil {
		t.Fatal(err)
	}
	want(t, w, "api", trigger)
}

// TestKeysAreSeparate: a change reaches only its key, and Set replaces
// what is watched.
func TestKeysAreSeparate(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	w := start(t, Options{}, pyTree("a", a), pyTree("b", b))
	write(t, filepath.Join(b, "x.py"), "1")
	want(t, w, "b", filepath.Join(b, "x.py"))
	none(t, w)
	w.Set([]Target{pyTree("b", b)})
	write(t, filepath.Join(a, "x.py"), "1")
	none(t, w)
}

// syncBuf is a log destination the watcher's goroutine writes while the
// test reads.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCapAndSkip(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"a", "b", "c", "d", "rt/sub"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var log syncBuf
	// Walked in lexical order: dir, a, b are watched; c and d are not; rt
	// is skipped and costs nothing.
	w := start(t, Options{MaxDirs: 3, Skip: []string{filepath.Join(dir, "rt")}, Log: slog.New(slog.NewTextHandler(&log, nil))},
		pyTree("a", dir))
	if s := log.String(); !strings.Contains(s, "left_out=2") || !strings.Contains(s, filepath.Join(dir, "c")) {
		t.Fatalf("log does not say which directories were left out:\n%s", s)
	}
	write(t, filepath.Join(dir, "c", "x.py"), "1")
	write(t, filepath.Join(dir, "rt", "sub", "x.py"), "1")
	none(t, w)
	write(t, filepath.Join(dir, "b", "x.py"), "1")
	want(t, w, "a", filepath.Join(dir, "b", "x.py"))
}

// TestReaderBusy: changes while the reader is away fold into one event.
func TestReaderBusy(t *testing.T) {
	dir := t.TempDir()
	w := start(t, Options{}, pyTree("a", dir))
	first := filepath.Join(dir, "one.py")
	write(t, first, "1")
	time.Sleep(3 * debounce) // the first burst is over and ready, unread
	write(t, filepath.Join(dir, "two.py"), "2")
	time.Sleep(3 * debounce)
	want(t, w, "a", first)
	none(t, w)
}

// TestDirectoryMovedOut: a directory moved out of the tree stops counting,
// its subdirectories too (their inotify watches would follow them).
func TestDirectoryMovedOut(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "pkg", "sub", "x.py"), "0")
	w := start(t, Options{}, pyTree("a", dir))
	if err := os.Rename(filepath.Join(dir, "pkg"), filepath.Join(out, "pkg")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(out, "pkg", "sub", "x.py"), "1")
	write(t, filepath.Join(out, "pkg", "y.py"), "1")
	none(t, w)
}
