package config

import (
	"strings"
	"testing"
)

// TestResponseBufferingKeys: the response-buffering keys from the file,
// per app and under limits:, and their problems.
func TestResponseBufferingKeys(t *testing.T) {
	f := newFixture(t)
	cfg := f.mustLoad(`
limits:
  response_buffer: 64KiB
  response_temp_max: 0
  send_timeout: 5s
apps:
  - path: wsgi.py
    mount: /a
    response_buffering: false
  - path: wsgi.py
    name: b
    mount: /b
`, nil)
	if l := cfg.Limits; l.ResponseBuffer != 64<<10 || l.ResponseTempMax != 0 || l.SendTimeout.String() != "5s" {
		t.Errorf("limits: %+v", l)
	}
	if cfg.Apps[0].ResponseBuffering || !cfg.Apps[1].ResponseBuffering {
		t.Errorf("response_buffering: %v %v, want false true", cfg.Apps[0].ResponseBuffering, cfg.Apps[1].ResponseBuffering)
	}
	for i, tc := range []struct{ yaml, want string }{
		{"limits:\n  response_buffer: lots\napps:\n  - path: wsgi.py\n", "limits.response_buffer"},
		{"limits:\n  send_timeout: -1s\napps:\n  - path: wsgi.py\n", "must not be negative"},
		{"apps:\n  - path: wsgi.py\n    response_buffering: maybe\n", "must be true or false"},
		{"apps:\n  - path: wsgi.py\n    response_bufering: false\n", "response_buffering"},
	} {
		_, err := f.load(tc.yaml, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: %q: got %v, want a problem naming %q", i, tc.yaml, err, tc.want)
		}
	}
}
