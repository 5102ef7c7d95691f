package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gwhq/gw/runners/daemon"
)

var (
	descDaemonRestarts = prometheus.NewDesc("gw_daemon_restarts_total", "Attached daemons restarted, by why they ended.", []string{"daemon", "reason"}, nil)
	descDaemonUp       = prometheus.NewDesc("gw_daemon_up", "1 while an attached daemon's process runs.", []string{"daemon"}, nil)
	descCronRuns       = prometheus.NewDesc("gw_cron_runs_total", "Cron runs by result (skipped: the previous run was still going).", []string{"job", "result"}, nil)

	daemonReasons = []string{daemon.ReasonExit, daemon.ReasonFailure, daemon.ReasonSignal, daemon.ReasonStartFailed}
	cronResults   = []string{daemon.ResultOK, daemon.ResultFailed, daemon.ResultTimeout, daemon.ResultStartFailed, daemon.ResultSkipped}
)

// collectDaemons adds the daemons' and cron jobs' series, every label
// value with zeros too, so rate() sees a counter's first rise.
func collectDaemons(ch chan<- prometheus.Metric, s Snapshot) {
	for _, d := range s.Daemons {
		for _, r := range daemonReasons {
			ch <- prometheus.MustNewConstMetric(descDaemonRestarts, prometheus.CounterValue, float64(d.Restarts[r]), d.Name, r)
		}
		up := 0.0
		if d.State == daemon.StateRunning {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descDaemonUp, prometheus.GaugeValue, up, d.Name)
	}
	for _, j := range s.Cron {
		for _, r := range cronResults {
			ch <- prometheus.MustNewConstMetric(descCronRuns, prometheus.CounterValue, float64(j.Runs[r]), j.Name, r)
		}
	}
}
