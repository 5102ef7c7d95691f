package gateway

import (
	"github.com/gwhq/gw/gateway/compress"
	"github.com/gwhq/gw/internal/config"
)

// compressAnswers gives each route of t whose app compresses (compress:,
// per app or top-level) the generation's compression options.
func (t *table) compressAnswers(cfg *config.Config) {
	o := &compress.Options{Min: int64(cfg.CompressMin)}
	on := map[string]bool{}
	for _, a := range cfg.Apps {
		on[a.Name] = a.Compress
	}
	for i := range t.routes {
		if on[t.routes[i].name] {
			t.routes[i].compress = o
		}
	}
}
