// Package hostenv is the environment gw hands the processes it starts
// (runners, daemons, Go plugins): its own, less the variables gw sets in
// it for the libraries it links.
package hostenv

import (
	"os"
	"slices"
	"strings"
)

// QUICNoBufferWarning silences quic-go's warning that the kernel capped a
// UDP socket's buffers: quic-go (v0.65.0, sys_conn.go) reads it with
// os.Getenv and has no option for it, and gw says the same in one line of
// its own (gateway/http3.go).
const QUICNoBufferWarning = "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING"

// own are the variables gw sets in its own environment. They are never
// passed on, whoever set them: a new gw inherits them from the one an
// upgrade replaces and cannot tell. An app that wants one sets it in its
// env.
var own = []string{QUICNoBufferWarning}

// Environ is os.Environ without gw's own variables.
func Environ() []string {
	env := os.Environ()
	kept := env[:0]
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !slices.Contains(own, k) {
			kept = append(kept, kv)
		}
	}
	return kept
}
