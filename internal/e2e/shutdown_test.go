package e2e

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// TestShutdownDelay: at SIGTERM with --shutdown-delay, /readyz turns 503 at
// once while new connections are still served for the delay; then gw
// drains and exits 0.
func TestShutdownDelay(t *testing.T) {
	const delay = 1500 * time.Millisecond
	s := gwtest.Start(t, "--shutdown-delay", delay.String(), "--stats", "127.0.0.1:0", "--workers", "1",
		"--interpreter", gwtest.RequirePython(t), suitePath("python/suite.py"))
	stats := "http://" + s.Addr("stats")
	if code, _ := gwtest.Get(t, stats+"/readyz"); code != 200 {
		t.Fatalf("readyz before SIGTERM: %d", code)
	}
	// A new connection per request, as a client the load balancer still
	// sends would open.
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	syscall.Kill(s.PID(), syscall.SIGTERM)
	waitFor(t, "readyz 503", func() bool { code, _ := gwtest.Get(t, stats+"/readyz"); return code == 503 })
	served := 0
	for time.Since(start) < delay-300*time.Millisecond {
		resp, err := fresh.Get(s.URL + "/pid")
		if err != nil {
			t.Fatalf("request %v after SIGTERM, within the delay: %v", time.Since(start), err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request within the delay: %d", resp.StatusCode)
		}
		served++
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-s.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("gw did not stop")
	}
	if took := time.Since(start); took < delay {
		t.Errorf("gw stopped %v after SIGTERM, before the %v delay", took, delay)
	}
	if s.ExitCode() != 0 {
		t.Errorf("exit %d, want 0:\n%s", s.ExitCode(), s.Log())
	}
	t.Logf("%d requests served during the delay", served)
}
