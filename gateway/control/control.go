// Package control serves gw's control socket (listen.control): HTTP/1.1
// with JSON bodies over a unix socket of mode 0600, which `gw ctl` speaks.
// It reports status and asks the gateway to reload, restart, scale or
// drain; nothing on it runs app code or reads files named by the client.
//
//	GET  /v1/ping                       {"gw": VERSION, "pid": N}
//	GET  /v1/status                     Status
//	GET  /v1/apps/{name}                AppStatus of that app
//	POST /v1/reload                     the whole config, as SIGHUP
//	POST /v1/apps/{name}/reload         that app from the config file
//	POST /v1/apps/{name}/restart        rolling restart, config unchanged
//	POST /v1/apps/{name}/drain          no new requests; runners stop
//	POST /v1/apps/{name}/scale          {"workers": N}
//
// Every answer carries the Gw-Control header, so a client can tell gw from
// another HTTP server on a socket; failures are {"error": "..."} with 400,
// 403, 404, 409 or 500.
package control

import (
	"context"
	"errors"
	"time"
)

// Header is set on every answer of the control socket, with the protocol
// version as its value.
const Header = "Gw-Control"

// Version is the control protocol's version (the /v1/ of its paths).
const Version = "1"

// Controller is what the control socket acts on: the gateway, with the
// config loader of the process that started it.
type Controller interface {
	Status() Status
	// Reload re-reads the config and boots a new generation of every app,
	// as SIGHUP does; it returns once that is done or has failed.
	Reload(ctx context.Context) error
	ReloadApp(ctx context.Context, name string) error
	RestartApp(ctx context.Context, name string) error
	ScaleApp(ctx context.Context, name string, workers int) error
	DrainApp(ctx context.Context, name string) error
}

// ErrUnknownApp says no app has the name asked for (404).
var ErrUnknownApp = errors.New("no such app")

// Conflict is an action the current state refuses (409): an app whose
// mount changed cannot be reloaded alone, a drained app cannot be scaled.
// Reason says why and what to do instead.
type Conflict struct{ Reason string }

func (c *Conflict) Error() string { return c.Reason }

// Status is gw's state as `gw ctl status` shows it.
type Status struct {
	PID        int         `json:"pid"`
	Version    string      `json:"version"`
	Started    time.Time   `json:"started"`
	Uptime     float64     `json:"uptime_s"`
	Generation int64       `json:"generation"` // route tables so far: 1 at start, +1 per reload, app reload or drain
	Apps       []AppStatus `json:"apps"`
}

// AppStatus is one app's part of Status.
type AppStatus struct {
	Name       string         `json:"name"`
	Lang       string         `json:"lang"`
	Mount      string         `json:"mount"`
	Host       string         `json:"host,omitempty"`
	File       string         `json:"file,omitempty"` // the apps_dir file it comes from
	MinWorkers int            `json:"min_workers"`
	MaxWorkers int            `json:"max_workers"`
	Target     int            `json:"target"` // runners the pool is keeping now
	State      string         `json:"state"`  // serving, failed or drained
	Failed     bool           `json:"failed"`
	Queue      int            `json:"queue"`
	Runners    []Runner       `json:"runners"`
	Exits      map[string]int `json:"exits"` // runners that left, by reason
}

// Runner is one runner process of an app.
type Runner struct {
	ID       int    `json:"id"`
	PID      int    `json:"pid"`
	State    string `json:"state"` // idle, busy or draining
	Requests int64  `json:"requests"`
	RSS      int64  `json:"rss_bytes"`
}

// Scale is the body of POST /v1/apps/{name}/scale.
type Scale struct {
	Workers *int `json:"workers"`
}

// Result is the body of a successful POST: what was done.
type Result struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// Ping is the body of GET /v1/ping.
type Ping struct {
	GW  string `json:"gw"`
	PID int    `json:"pid"`
}

// Error is the body of every failed request.
type Error struct {
	Error string `json:"error"`
}
