// Package admin serves gw's stats listener: /stats (JSON), /metrics
// (Prometheus), /healthz and /readyz. It runs on its own address, never on
// the public one, and is answered by the Go front end alone, so it answers
// even when every runner is busy (php-fpm's status page starves exactly
// then).
package admin

import (
	"encoding/json"
	"github.com/gwhq/gw/internal/cgroup"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gwhq/gw/runners/budget"
	"github.com/gwhq/gw/runners/daemon"
	"github.com/gwhq/gw/runners/pool"
)

// Snapshot is what gw reports about itself.
type Snapshot struct {
	Version  string     `json:"version"`
	PID      int        `json:"pid"`
	Started  time.Time  `json:"started"`
	Uptime   float64    `json:"uptime_s"`
	Requests uint64     `json:"requests"`
	InFlight int64      `json:"inflight"`
	BytesIn  uint64     `json:"bytes_in"`
	BytesOut uint64     `json:"bytes_out"`
	Apps     []AppStats `json:"apps"`
	// Budget is max_runners and each app's part of it (nil: no cap).
	Budget *budget.Stats `json:"budget,omitempty"`
	// Daemons and Cron are the attached processes (runners/daemon).
	Daemons []daemon.Stats    `json:"daemons,omitempty"`
	Cron    []daemon.JobStats `json:"cron,omitempty"`
	// ProxyProtocolClosed counts connections closed for a PROXY header
	// from an untrusted peer, or a missing or malformed one.
	ProxyProtocolClosed int64 `json:"proxy_protocol_closed,omitempty"`
}

// AppStats is one app's part of a Snapshot.
type AppStats struct {
	Name     string            `json:"name"`
	Lang     string            `json:"lang"`
	Mount    string            `json:"mount"`
	Host     string            `json:"host,omitempty"`
	Status   map[string]uint64 `json:"status"` // requests by status class: 2xx, 4xx...
	BytesIn  uint64            `json:"bytes_in"`
	BytesOut uint64            `json:"bytes_out"`
	// BodiesSpliced counts request bodies that went client → pipe →
	// runner without entering gw's memory (docs/design/hop.md).
	BodiesSpliced uint64 `json:"bodies_spliced,omitempty"`
	// WebSockets: open now, accepted since start, refused (max_websockets),
	// messages client to app (in) and app to client (out).
	WebSockets WebSocketStats `json:"websockets"`
	// Raw connections: upgrade requests a Rack or PSGI app took over
	// (open counts those under way too; refusals are in WebSockets).
	Raw       RawStats    `json:"raw_connections"`
	QueueWait Percentiles `json:"queue_wait_ms"`
	Latency   Percentiles `json:"latency_ms"`
	// Cgroup is the app's cgroup use and limit hits, when its limits: asked
	// for one.
	Cgroup *cgroup.Usage `json:"cgroup,omitempty"`
	pool.Stats
}

// Percentiles of a duration histogram, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// PercentilesOf summarises a histogram.
func PercentilesOf(s pool.Snapshot) Percentiles {
	ms := func(q float64) float64 { return float64(s.Quantile(q).Microseconds()) / 1000 }
	return Percentiles{P50: ms(0.5), P90: ms(0.9), P99: ms(0.99)}
}

// Source is what the admin listener reads; the gateway implements it.
type Source interface {
	Snapshot() Snapshot
	// Ready reports whether every app has a ready runner and gw is not
	// shutting down; why says what is missing.
	Ready() (ok bool, why string)
}

// Handler serves the admin endpoints for src.
func Handler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{src: src})
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(src.Snapshot())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if ok, why := src.Ready(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: " + why + "\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}

// WebSocketStats are an app's WebSocket counts.
type WebSocketStats struct {
	Open        int64  `json:"open"`
	Total       uint64 `json:"total"`
	Refused     uint64 `json:"refused"`
	Handed      uint64 `json:"handed"` // of total: framed by the runner on the client's socket (handover)
	MessagesIn  uint64 `json:"messages_in"`
	MessagesOut uint64 `json:"messages_out"`
}

// RawStats are an app's hijacked connections; bytes count when one ends.
type RawStats struct {
	Open     int64  `json:"open"`
	Total    uint64 `json:"total"`
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
}
