package goplugin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter is the hclog.Logger go-plugin logs to, writing to gw's slog
// logger (which carries the app and worker attributes).
//
// go-plugin logs the plugin's stderr through a sub-logger named after the
// plugin binary: hclog JSON lines keep their level and attributes, and
// plain lines arrive at Debug with no attributes. Those plain lines are the
// plugin's own output (log.Printf, panics go to Error anyway), so they are
// raised to Info like other runners' stderr lines. Everything else is
// go-plugin's host-side chatter ("plugin process exited", ...), which the
// pool already reports in its own words, so it goes to Debug (and Trace
// below it).
type hclogAdapter struct {
	log     *slog.Logger
	name    string
	plugin  string     // the sub-logger name that carries the plugin's stderr
	pid     func() int // the plugin's pid, known once it started
	implied []any
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLogger(log *slog.Logger, pluginName string, pid func() int) *hclogAdapter {
	return &hclogAdapter{log: log, plugin: pluginName, pid: pid}
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	lvl := min(slogLevel(level), slog.LevelDebug)
	if a.name == a.plugin {
		lvl = slogLevel(level)
		if level == hclog.Debug && len(args) == 0 {
			lvl, args = slog.LevelInfo, []any{"stream", "stderr"}
		}
		args = append([]any{"pid", a.pid()}, args...)
	}
	ctx := context.Background()
	if !a.log.Enabled(ctx, lvl) {
		return
	}
	a.log.Log(ctx, lvl, msg, a.attrs(args)...)
}

// attrs joins the implied and given pairs, renders hclog.Format values, and
// drops "timestamp": go-plugin adds the plugin's clock to every JSON line,
// and gw's record has its own.
func (a *hclogAdapter) attrs(args []any) []any {
	all := append(append([]any(nil), a.implied...), args...)
	out := all[:0]
	for i := 0; i < len(all); i += 2 {
		if i+1 == len(all) {
			out = append(out, all[i]) // slog reports the odd one out
			break
		}
		k, v := all[i], all[i+1]
		if k == "timestamp" {
			continue
		}
		if f, ok := v.(hclog.Format); ok && len(f) > 0 {
			if s, ok := f[0].(string); ok {
				v = fmt.Sprintf(s, f[1:]...)
			}
		}
		out = append(out, k, v)
	}
	return out
}

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

// GetLevel is the lowest level gw's handler would record. go-plugin skips
// parsing the plugin's JSON lines below it.
func (a *hclogAdapter) GetLevel() hclog.Level {
	ctx := context.Background()
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if a.log.Enabled(ctx, slogLevel(l)) {
			return l
		}
	}
	return hclog.Off
}

func (a *hclogAdapter) IsTrace() bool { return a.GetLevel() <= hclog.Trace }
func (a *hclogAdapter) IsDebug() bool { return a.GetLevel() <= hclog.Debug }
func (a *hclogAdapter) IsInfo() bool  { return a.GetLevel() <= hclog.Info }
func (a *hclogAdapter) IsWarn() bool  { return a.GetLevel() <= hclog.Warn }
func (a *hclogAdapter) IsError() bool { return a.GetLevel() <= hclog.Error }

// SetLevel does nothing: gw's slog handler owns the level.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

func (a *hclogAdapter) ImpliedArgs() []any { return a.implied }
func (a *hclogAdapter) Name() string       { return a.name }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	b := *a
	b.implied = append(append([]any(nil), a.implied...), args...)
	return &b
}

func (a *hclogAdapter) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return a.ResetNamed(name)
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	b := *a
	b.name = name
	return &b
}

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return newLineWriter(func(line string) { a.Log(level, line) })
}

// lineWriter calls emit for each complete line written to it. go-plugin
// hands the plugin's synced stdout and stderr over in arbitrary chunks.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(line string)
}

// maxLine bounds a line kept while waiting for its newline.
const maxLine = 64 << 10

func newLineWriter(emit func(string)) *lineWriter { return &lineWriter{emit: emit} }

// lineLogger logs each line at Info with the pid and stream it came from.
func lineLogger(log *slog.Logger, pid func() int, stream string) *lineWriter {
	return newLineWriter(func(line string) { log.Info(line, "pid", pid(), "stream", stream) })
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	rest := w.buf
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		w.emit(strings.TrimSuffix(string(rest[:i]), "\r"))
		rest = rest[i+1:]
	}
	if len(rest) > maxLine {
		w.emit(string(rest))
		rest = nil
	}
	w.buf = append(w.buf[:0], rest...)
	return len(p), nil
}

// flush emits a last line that never got its newline.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = w.buf[:0]
	}
}

// tail keeps the last lines the plugin wrote to stderr, for spawn errors.
type tail struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == t.max {
		t.lines = append(t.lines[:0], t.lines[1:]...)
	}
	t.lines = append(t.lines, line)
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
