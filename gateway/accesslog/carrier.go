package accesslog

import "log/slog"

// The access log reaches the gateway riding on its *slog.Logger: gw's
// main logger is what every layer is handed already, so the access log
// needs no new parameter or field on the way from internal/cli to
// Gateway.ServeHTTP. The carrier changes nothing about how that logger
// logs. When the access log is off there is no carrier, and From costs a
// failed type assertion.

// carrier is a main-log handler with the access log attached.
type carrier struct {
	slog.Handler
	access *Logger
}

// Attach returns log with a attached, for From to find; log itself is
// unchanged. A nil a (the access log is off) returns log.
func Attach(log *slog.Logger, a *Logger) *slog.Logger {
	if a == nil {
		return log
	}
	return slog.New(&carrier{Handler: log.Handler(), access: a})
}

// From returns the access log attached to log, or nil.
func From(log *slog.Logger) *Logger {
	if c, ok := log.Handler().(*carrier); ok {
		return c.access
	}
	return nil
}

// WithAttrs and WithGroup keep the access log attached to derived loggers
// (log.With("app", name)).
func (c *carrier) WithAttrs(as []slog.Attr) slog.Handler {
	return &carrier{Handler: c.Handler.WithAttrs(as), access: c.access}
}

func (c *carrier) WithGroup(name string) slog.Handler {
	return &carrier{Handler: c.Handler.WithGroup(name), access: c.access}
}

var _ slog.Handler = (*carrier)(nil)
