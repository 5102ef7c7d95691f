// Package gateway is gw's front end: listeners, the route table and the
// HTTP server that hands each request to its app's runner pool.
package gateway

import (
	"context"
	"errors"
	"log/slog"

	"github.com/gwhq/gw/internal/config"
)

// Gateway serves every app of one Config.
type Gateway struct {
	cfg *config.Config
	log *slog.Logger
}

// New prepares a gateway; nothing runs until Start.
func New(cfg *config.Config, log *slog.Logger) (*Gateway, error) {
	return &Gateway{cfg: cfg, log: log}, nil
}

// Start boots every app's runners (waiting until each is ready), then opens
// the listeners and serves in the background. An app that fails to load
// makes Start fail with an error that unwraps to *proc.SpawnError.
func (g *Gateway) Start(ctx context.Context) error { return errors.New("not implemented") }

// Shutdown stops accepting, finishes in-flight requests until ctx ends, then
// stops every runner.
func (g *Gateway) Shutdown(ctx context.Context) error { return nil }
