package e2e

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gwhq/gw/gateway/admin"
	"github.com/gwhq/gw/internal/gwtest"
)

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metric finds the value of name with all of labels.
func metric(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestStatsAndMetrics: after a known sequence of requests, a killed runner
// and a timed-out request, /metrics and /stats count exactly that, and
// /readyz flips while the app has no ready runner.
func TestStatsAndMetrics(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequirePython(t), "--workers", "2", "--timeout", "1s",
		"--name", "suite", "--stats", "127.0.0.1:0", app("suite.py"))
	stats := "http://" + s.Addr("stats")
	if stats == "http://" {
		t.Fatalf("no stats address logged:\n%s", s.Log())
	}
	for range 5 {
		gwtest.Get(t, s.URL+"/pid")
	}
	for range 2 {
		gwtest.Get(t, s.URL+"/nope")
	}
	if code, _ := gwtest.Get(t, s.URL+"/sleep?5"); code != 504 {
		t.Fatalf("sleep: %d", code)
	}
	_, pid := gwtest.Get(t, s.URL+"/pid")
	n, _ := strconv.Atoi(pid)
	syscall.Kill(n, syscall.SIGKILL)
	app := map[string]string{"app": "suite"}
	// Settled: both exits recorded and two runners taking requests again
	// (the timed-out one is replaced once idle, the killed one respawned).
	var fams map[string]*dto.MetricFamily
	waitFor(t, "pool settled", func() bool {
		fams = scrape(t, stats)
		d, _ := metric(fams, "gw_runner_exits_total", map[string]string{"app": "suite", "reason": "deadline"})
		c, _ := metric(fams, "gw_runner_exits_total", map[string]string{"app": "suite", "reason": "crash"})
		idle, _ := metric(fams, "gw_runners", map[string]string{"app": "suite", "state": "idle"})
		return d == 1 && c == 1 && idle == 2
	})
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"gw_requests_total", map[string]string{"app": "suite", "code": "2xx"}, 6},
		{"gw_requests_total", map[string]string{"app": "suite", "code": "4xx"}, 2},
		{"gw_requests_total", map[string]string{"app": "suite", "code": "5xx"}, 1},
		{"gw_runner_exits_total", map[string]string{"app": "suite", "reason": "deadline"}, 1},
		{"gw_runner_exits_total", map[string]string{"app": "suite", "reason": "crash"}, 1},
		{"gw_request_duration_seconds", app, 9},
		{"gw_queue_wait_seconds", app, 9},
		{"gw_queue_depth", app, 0},
	} {
		got, ok := metric(fams, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if rss, ok := metric(fams, "gw_runner_rss_bytes", app); !ok || rss < 1<<20 {
		t.Errorf("runner RSS %v (found %v)", rss, ok)
	}
	if spawns, ok := metric(fams, "gw_runner_spawn_seconds", app); !ok || spawns < 2 {
		t.Errorf("spawn count %v", spawns)
	}

	resp, err := http.Get(stats + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var snap admin.Snapshot
	json.NewDecoder(resp.Body).Decode(&snap)
	resp.Body.Close()
	if len(snap.Apps) != 1 {
		t.Fatalf("/stats apps: %+v", snap)
	}
	a := snap.Apps[0]
	if a.Name != "suite" || a.Status["2xx"] != 6 || a.Exits["crash"] != 1 || a.LastExit == "" || len(a.Runners) == 0 ||
		a.Latency.P99 < a.Latency.P50 || snap.PID != s.PID() {
		t.Errorf("/stats: %+v", snap)
	}
	for _, r := range a.Runners {
		if r.PID == 0 || r.RSS == 0 || (r.State != "idle" && r.State != "busy") {
			t.Errorf("runner %+v", r)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := gwtest.Get(t, stats+path); code != 200 {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}
	code, out := gwtest.Run(t, 10*time.Second, "stats", "--addr", s.Addr("stats"))
	if code != 0 || !strings.Contains(out, "suite") || !strings.Contains(out, "2xx:6") {
		t.Errorf("gw stats: %d\n%s", code, out)
	}
}

// TestReadyzFlips: /readyz is 503 while an app has no ready runner (its
// only runner crashed and the respawn is failing), 200 again after.
func TestReadyzFlips(t *testing.T) {
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	appPath := dir + "/app.py"
	writeVersion(t, appPath, "v1")
	s := gwtest.Start(t, "--interpreter", py, "--workers", "1", "--stats", "127.0.0.1:0", appPath)
	stats := "http://" + s.Addr("stats")
	if code, _ := gwtest.Get(t, stats+"/readyz"); code != 200 {
		t.Fatalf("readyz at start: %d", code)
	}
	writeVersion(t, appPath, "")
	_, body := gwtest.Get(t, s.URL+"/")
	pid, _ := strconv.Atoi(strings.Fields(body)[1])
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, "readyz 503", func() bool { code, _ := gwtest.Get(t, stats+"/readyz"); return code == 503 })
	if code, _ := gwtest.Get(t, stats+"/healthz"); code != 200 {
		t.Errorf("healthz while unready: %d", code)
	}
	writeVersion(t, appPath, "v2")
	waitFor(t, "readyz 200 again", func() bool { code, _ := gwtest.Get(t, stats+"/readyz"); return code == 200 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitUntil(t, what, 15*time.Second, cond)
}
