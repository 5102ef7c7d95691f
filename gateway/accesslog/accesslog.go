// Package accesslog writes gw's access log: one line per request, in
// log/slog's text or JSON format, to stderr or to a file that is reopened
// on demand for log rotation.
//
// Each line has msg "request" and the attributes app, method, path,
// status, bytes (response body bytes), queue_wait (waiting for a free
// runner), app_time (in the runner), total, pid (the runner; 0 when the
// request never reached one), request_id, remote and proto (HTTP/1.1,
// HTTP/2.0, HTTP/3.0), then the fields the app set (uwsgi.set_logvar) in
// the group vars. Durations are slog's:
// Go duration strings in text ("1.5ms"), integer nanoseconds in JSON,
// so neither format ever falls into float exponents.
package accesslog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gwhq/gw/internal/logfile"
)

// Entry is one request as the access log records it.
type Entry struct {
	Time      time.Time // when the response finished
	App       string    // "" when no app is mounted at the path
	Method    string
	Path      string
	Proto     string // the request's protocol as net/http names it: "HTTP/1.1", "HTTP/2.0", "HTTP/3.0"
	Status    int
	Bytes     int64 // response body bytes written
	QueueWait time.Duration
	AppTime   time.Duration
	Total     time.Duration
	PID       int // the runner that served it; 0 = none
	RequestID string
	Remote    string // the client's address, as the front end saw it
	// Vars are fields the app set (uwsgi.set_logvar): name, value, ...;
	// logged last, as the group vars (vars.NAME=VALUE in text).
	Vars []string
}

// Logger writes entries. Its methods are safe for concurrent use. A nil
// *Logger is the access log turned off: Reopen, Path and Close accept it.
type Logger struct {
	h    slog.Handler
	file *logfile.File // nil when writing to a stream (stderr)
}

// Open returns the access log dest names: nil for "" (off), stderr for
// "-", else the file at dest, created if need be and appended to. format
// is "json" or "text".
func Open(dest, format string, stderr io.Writer) (*Logger, error) {
	switch dest {
	case "":
		return nil, nil
	case "-":
		return New(stderr, format), nil
	}
	f, err := logfile.Open(dest)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	l := New(f, format)
	l.file = f
	return l, nil
}

// New returns an access log writing to w, "json" or "text" formatted.
// slog's handlers write each record in a single Write.
func New(w io.Writer, format string) *Logger {
	if format == "json" {
		return &Logger{h: slog.NewJSONHandler(w, nil)}
	}
	return &Logger{h: slog.NewTextHandler(w, nil)}
}

// Log writes e. The record is built from typed attributes, no formatting
// or reflection: this runs once per request.
func (l *Logger) Log(e Entry) {
	r := slog.NewRecord(e.Time, slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("app", e.App),
		slog.String("method", e.Method),
		slog.String("path", e.Path),
		slog.Int("status", e.Status),
		slog.Int64("bytes", e.Bytes),
		slog.Duration("queue_wait", e.QueueWait),
		slog.Duration("app_time", e.AppTime),
		slog.Duration("total", e.Total),
		slog.Int("pid", e.PID),
		slog.String("request_id", e.RequestID),
		slog.String("remote", e.Remote),
		slog.String("proto", e.Proto), // last: added after the others, whose order parsers may rely on
	)
	if len(e.Vars) > 0 {
		vars := make([]any, 0, len(e.Vars)/2)
		for i := 0; i+1 < len(e.Vars); i += 2 {
			vars = append(vars, slog.String(e.Vars[i], e.Vars[i+1]))
		}
		r.AddAttrs(slog.Group("vars", vars...))
	}
	// A failed write (disk full) has nowhere better to be reported than
	// the log that failed, and the request is done either way.
	_ = l.h.Handle(context.Background(), r)
}

// Reopen reopens the log file at its path (after logrotate renamed it);
// lines go to the old file up to the switch and to the new one after it.
// It does nothing when the log is a stream or off.
func (l *Logger) Reopen() error {
	if l == nil || l.file == nil {
		return nil
	}
	if err := l.file.Reopen(); err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	return nil
}

// Path is the log file's path, "" when the log is a stream or off.
func (l *Logger) Path() string {
	if l == nil || l.file == nil {
		return ""
	}
	return l.file.Path()
}

// Close closes the log file, if there is one.
func (l *Logger) Close() error {
	if l == nil || l.file == nil {
		return nil
	}
	return l.file.Close()
}
