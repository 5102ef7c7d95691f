// Command goplugin is the Go plugin of the hostile framing suite
// (internal/e2e/hostile_framing_test.go). It routes on the last path
// segment, wherever it is mounted.
package main

import (
	"io"
	"net/http"
	"path"

	"github.com/gwhq/gw/runners/goplugin/sdk"
)

func main() {
	sdk.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch path.Base(r.URL.Path) {
		case "nul":
			w.Header().Set("X-Nul", "a\x00b")
			io.WriteString(w, "nul")
		case "long":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello world")
		case "short":
			w.Header().Set("Content-Length", "20")
			io.WriteString(w, "hello")
		case "switch":
			w.Header().Set("Upgrade", "websocket")
			w.WriteHeader(http.StatusSwitchingProtocols)
		case "head":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		default:
			io.WriteString(w, "ok")
		}
	}))
}
