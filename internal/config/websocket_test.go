package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWebSocketCompressionConfig(t *testing.T) {
	for _, tc := range []struct {
		yaml    string
		want    string
		problem string // substring of the problem, "" = none
	}{
		{"", WSCompressionOff, ""},
		{"limits: { websocket_compression: on }\n", WSCompressionOn, ""}, // YAML's on is a bool: true
		{"limits: { websocket_compression: 'on' }\n", WSCompressionOn, ""},
		{"limits: { websocket_compression: Context-Takeover }\n", WSCompressionContextTakeover, ""},
		{"limits: { websocket_compression: false }\n", WSCompressionOff, ""},
		{"limits: { websocket_compression: gzip }\n", "", "websocket compression must be off, on or context-takeover, got \"gzip\""},
	} {
		dir := t.TempDir()
		file := filepath.Join(dir, "gw.yaml")
		os.WriteFile(filepath.Join(dir, "app.py"), []byte("def application(e, s): pass\n"), 0o644)
		os.WriteFile(file, []byte(tc.yaml+"apps:\n  - path: app.py\n"), 0o644)
		cfg, err := Load(Sources{File: file})
		switch {
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
			t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.problem)
		case tc.problem == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.problem == "" && cfg.Limits.WebSocketCompression != tc.want:
			t.Errorf("%q: got %q, want %q", tc.yaml, cfg.Limits.WebSocketCompression, tc.want)
		}
	}
}
