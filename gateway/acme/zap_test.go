package acme

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestZapToSlog: certmagic's zap lines reach gw's slog handler with their
// level, logger name and fields; below the handler's level they do not.
func TestZapToSlog(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})
	zl := zapLogger(h).Named("renew").With(zap.String("identifier", "example.org"))
	zl.Debug("hidden")
	zl.Error("renewing", zap.Error(errors.New("boom")), zap.Int("attempt", 2))
	got := buf.String()
	for _, want := range []string{"level=ERROR", `msg=renewing`, "logger=acme.renew", "identifier=example.org", "error=boom", "attempt=2"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in %q", want, got)
		}
	}
	if strings.Contains(got, "hidden") {
		t.Errorf("a debug line passed an info handler: %q", got)
	}
}
