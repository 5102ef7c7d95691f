package gateway

import (
	"log/slog"

	"github.com/gwhq/gw/gateway/respbuf"
	"github.com/gwhq/gw/internal/config"
)

// bufferAnswers gives each route of t whose app buffers answers (the
// default; nginx's proxy_buffering) the generation's response buffering,
// with temp files in dir, a private directory under the runtime directory.
func (t *table) bufferAnswers(cfg *config.Config, dir string, log *slog.Logger) {
	lim := cfg.Limits
	if lim.ResponseBuffer <= 0 {
		return // limits.response_buffer: 0 turns it off for every app
	}
	o := &respbuf.Options{
		Memory:      int(lim.ResponseBuffer),
		TempMax:     int64(lim.ResponseTempMax),
		Dir:         dir,
		SendTimeout: lim.SendTimeout,
		Log:         log,
	}
	on := map[string]bool{}
	for _, a := range cfg.Apps {
		on[a.Name] = a.ResponseBuffering
	}
	for i := range t.routes {
		if on[t.routes[i].name] {
			t.routes[i].respbuf = o
		}
	}
}
