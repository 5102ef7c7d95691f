package admin

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gwhq/gw/runners/pool"
)

// collector turns a Snapshot into Prometheus metrics at scrape time, so
// the request path records into gw's own lock-free counters only.
type collector struct{ src Source }

var (
	descRequests  = prometheus.NewDesc("gw_requests_total", "Requests answered, by app and status class.", []string{"app", "code"}, nil)
	descLatency   = prometheus.NewDesc("gw_request_duration_seconds", "Time requests spent in a runner.", []string{"app"}, nil)
	descQueueWait = prometheus.NewDesc("gw_queue_wait_seconds", "Time requests waited for a free runner.", []string{"app"}, nil)
	descSpawn     = prometheus.NewDesc("gw_runner_spawn_seconds", "Time from starting a runner to its ready message.", []string{"app"}, nil)
	descQueue     = prometheus.NewDesc("gw_queue_depth", "Requests waiting for a free runner now.", []string{"app"}, nil)
	descInFlight  = prometheus.NewDesc("gw_inflight_requests", "Requests being served by a runner now.", []string{"app"}, nil)
	descBusyRatio = prometheus.NewDesc("gw_busy_ratio", "Busy runner slots over all slots (scale out on this).", []string{"app"}, nil)
	descRunners   = prometheus.NewDesc("gw_runners", "Runners by state.", []string{"app", "state"}, nil)
	descExits     = prometheus.NewDesc("gw_runner_exits_total", "Runners that left the pool, by reason.", []string{"app", "reason"}, nil)
	descRSS       = prometheus.NewDesc("gw_runner_rss_bytes", "Resident set size of each runner.", []string{"app", "worker"}, nil)
	descRunnerCPU = prometheus.NewDesc("gw_runner_cpu_seconds_total", "User and system CPU time of each runner.", []string{"app", "worker"}, nil)
	descAppRSS    = prometheus.NewDesc("gw_app_rss_bytes", "Resident set size of the app's runners alive now, summed.", []string{"app"}, nil)
	descAppCPU    = prometheus.NewDesc("gw_app_cpu_seconds_total", "CPU time of all the app's runners since gw started, exited ones included.", []string{"app"}, nil)
	descCgMemory  = prometheus.NewDesc("gw_app_cgroup_memory_bytes", "Memory charged to the app's cgroup.", []string{"app"}, nil)
	descCgPids    = prometheus.NewDesc("gw_app_cgroup_pids", "Processes and threads in the app's cgroup.", []string{"app"}, nil)
	descCgHits    = prometheus.NewDesc("gw_app_cgroup_limit_hits_total", "Times the app's cgroup hit a limit: oom_kill (a process killed), memory (an allocation refused at memory_max, reclaim followed).", []string{"app", "event"}, nil)
	descBytesIn   = prometheus.NewDesc("gw_received_bytes_total", "Request body bytes received.", []string{"app"}, nil)
	descBytesOut  = prometheus.NewDesc("gw_sent_bytes_total", "Response body bytes sent.", []string{"app"}, nil)
	descWSOpen    = prometheus.NewDesc("gw_websockets_open", "WebSockets open now.", []string{"app"}, nil)
	descWSTotal   = prometheus.NewDesc("gw_websockets_total", "WebSockets accepted.", []string{"app"}, nil)
	descWSRefused = prometheus.NewDesc("gw_websockets_refused_total", "WebSocket handshakes refused beyond max_websockets.", []string{"app"}, nil)
	descWSHanded  = prometheus.NewDesc("gw_websockets_handed_total", "WebSockets accepted whose client socket went to the runner (handover).", []string{"app"}, nil)
	descWSMsgs    = prometheus.NewDesc("gw_websocket_messages_total", "WebSocket messages, by direction (in: client to app).", []string{"app", "direction"}, nil)
	descRawOpen   = prometheus.NewDesc("gw_raw_connections_open", "Upgrade requests a Rack or PSGI app holds the connection of (or may still take) now.", []string{"app"}, nil)
	descRawTotal  = prometheus.NewDesc("gw_raw_connections_total", "Connections Rack or PSGI apps took over (rack.hijack, psgix.io).", []string{"app"}, nil)
	descRawBytes  = prometheus.NewDesc("gw_raw_connection_bytes_total", "Bytes relayed on taken-over connections, by direction (in: client to app), counted when each ends.", []string{"app", "direction"}, nil)
	descFailed    = prometheus.NewDesc("gw_app_failed", "1 while an app's runners keep crashing at start.", []string{"app"}, nil)
	descScale     = prometheus.NewDesc("gw_scale_events_total", "Runners added (up) or retired (down) as demand changed.", []string{"app", "direction"}, nil)
	descTarget    = prometheus.NewDesc("gw_runners_target", "Runners the app means to have now, between its floor and ceiling.", []string{"app"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descLatency, descQueueWait, descSpawn, descQueue, descInFlight,
		descBusyRatio, descRunners, descExits, descRSS, descBytesIn, descBytesOut, descFailed, descScale, descTarget,
		descWSOpen, descWSTotal, descWSRefused, descWSHanded, descWSMsgs, descDaemonRestarts, descDaemonUp, descCronRuns,
		descRawOpen, descRawTotal, descRawBytes, descRunnerCPU, descAppRSS, descAppCPU, descCgMemory, descCgPids, descCgHits} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.src.Snapshot()
	collectDaemons(ch, snap)
	for _, a := range snap.Apps {
		for class, n := range a.Status {
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), a.Name, class)
		}
		ch <- histogram(descLatency, a.Stats.Latency, a.Name)
		ch <- histogram(descQueueWait, a.Stats.QueueWait, a.Name)
		ch <- histogram(descSpawn, a.Spawn, a.Name)
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(a.Queue), a.Name)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(a.InFlight), a.Name)
		busy, slots := 0, 0
		for _, r := range a.Runners {
			if r.State != "draining" {
				busy += r.Busy
				slots += r.Slots
			}
			ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, float64(r.RSS), a.Name, strconv.Itoa(r.ID))
			ch <- prometheus.MustNewConstMetric(descRunnerCPU, prometheus.CounterValue, r.CPU, a.Name, strconv.Itoa(r.ID))
		}
		ch <- prometheus.MustNewConstMetric(descAppRSS, prometheus.GaugeValue, float64(a.RSS), a.Name)
		ch <- prometheus.MustNewConstMetric(descAppCPU, prometheus.CounterValue, a.CPU, a.Name)
		if cg := a.Cgroup; cg != nil {
			ch <- prometheus.MustNewConstMetric(descCgMemory, prometheus.GaugeValue, float64(cg.MemoryBytes), a.Name)
			ch <- prometheus.MustNewConstMetric(descCgPids, prometheus.GaugeValue, float64(cg.Pids), a.Name)
			ch <- prometheus.MustNewConstMetric(descCgHits, prometheus.CounterValue, float64(cg.OOMKills), a.Name, "oom_kill")
			ch <- prometheus.MustNewConstMetric(descCgHits, prometheus.CounterValue, float64(cg.MemoryFailcnt), a.Name, "memory")
		}
		ratio := 1.0 // no slot at all: as saturated as it gets
		if slots > 0 {
			ratio = float64(busy) / float64(slots)
		}
		ch <- prometheus.MustNewConstMetric(descBusyRatio, prometheus.GaugeValue, ratio, a.Name)
		for state, n := range a.States {
			ch <- prometheus.MustNewConstMetric(descRunners, prometheus.GaugeValue, float64(n), a.Name, state)
		}
		for _, reason := range pool.Reasons {
			// Every reason, zeros too, so rate() sees a counter's first rise.
			ch <- prometheus.MustNewConstMetric(descExits, prometheus.CounterValue, float64(a.Exits[reason]), a.Name, string(reason))
		}
		ch <- prometheus.MustNewConstMetric(descScale, prometheus.CounterValue, float64(a.ScaleUps), a.Name, "up")
		ch <- prometheus.MustNewConstMetric(descScale, prometheus.CounterValue, float64(a.ScaleDowns), a.Name, "down")
		ch <- prometheus.MustNewConstMetric(descTarget, prometheus.GaugeValue, float64(a.Target), a.Name)
		ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(a.BytesIn), a.Name)
		ch <- prometheus.MustNewConstMetric(descBytesOut, prometheus.CounterValue, float64(a.BytesOut), a.Name)
		ws := a.WebSockets
		ch <- prometheus.MustNewConstMetric(descWSOpen, prometheus.GaugeValue, float64(ws.Open), a.Name)
		ch <- prometheus.MustNewConstMetric(descWSTotal, prometheus.CounterValue, float64(ws.Total), a.Name)
		ch <- prometheus.MustNewConstMetric(descWSRefused, prometheus.CounterValue, float64(ws.Refused), a.Name)
		ch <- prometheus.MustNewConstMetric(descWSHanded, prometheus.CounterValue, float64(ws.Handed), a.Name)
		ch <- prometheus.MustNewConstMetric(descWSMsgs, prometheus.CounterValue, float64(ws.MessagesIn), a.Name, "in")
		ch <- prometheus.MustNewConstMetric(descWSMsgs, prometheus.CounterValue, float64(ws.MessagesOut), a.Name, "out")
		raw := a.Raw
		ch <- prometheus.MustNewConstMetric(descRawOpen, prometheus.GaugeValue, float64(raw.Open), a.Name)
		ch <- prometheus.MustNewConstMetric(descRawTotal, prometheus.CounterValue, float64(raw.Total), a.Name)
		ch <- prometheus.MustNewConstMetric(descRawBytes, prometheus.CounterValue, float64(raw.BytesIn), a.Name, "in")
		ch <- prometheus.MustNewConstMetric(descRawBytes, prometheus.CounterValue, float64(raw.BytesOut), a.Name, "out")
		failed := 0.0
		if a.Failed {
			failed = 1
		}
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.GaugeValue, failed, a.Name)
	}
}

// histogram converts gw's bucket counts to a Prometheus histogram.
func histogram(d *prometheus.Desc, s pool.Snapshot, app string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(pool.Bounds))
	var cum uint64
	for i, b := range pool.Bounds {
		cum += s.Counts[i]
		buckets[b] = cum
	}
	return prometheus.MustNewConstHistogram(d, s.Count, s.Sum.Seconds(), buckets, app)
}
