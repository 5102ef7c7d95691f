// Command goplugin is an example gw Go plugin: a plain net/http handler
// served through sdk.Serve. Build and serve it with
//
//	go build -o myplugin ./examples/goplugin && gw run --lang go ./myplugin
//
// gw's own tests build and drive it too (runners/goplugin).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/gwhq/gw/runners/goplugin/sdk"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", hello)
	mux.HandleFunc("POST /hash", hash)
	mux.HandleFunc("/stream", stream)
	mux.HandleFunc("/panic", panicky)
	mux.HandleFunc("/sleep", sleep)
	mux.HandleFunc("/pid", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, os.Getpid()) })
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/trailers", trailers)
	mux.HandleFunc("/log", logLines)
	mux.HandleFunc("/ws", wsEcho)
	mux.HandleFunc("/raw", rawEcho)
	mux.HandleFunc("/early", early)
	sdk.Serve(mux)
}

func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "Hello, World!")
}

// early sends a 103 Early Hints with two Link fields, then the answer.
// net/http keeps the map's fields for the final head, so they go first.
func early(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Link", "</style.css>; rel=preload; as=style")
	w.Header().Add("Link", "</app.js>; rel=preload; as=script")
	w.WriteHeader(http.StatusEarlyHints)
	w.Header().Del("Link")
	io.WriteString(w, "hinted")
}

// hash answers "<bytes> <sha256 hex>" for the request body, read as it
// streams in.
func hash(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%d %s\n", n, hex.EncodeToString(h.Sum(nil)))
}

// stream sends three chunks 300 ms apart, each flushed to the client.
func stream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	for i := range 3 {
		if i > 0 {
			time.Sleep(300 * time.Millisecond)
		}
		fmt.Fprintf(w, "chunk %d\n", i)
		w.(http.Flusher).Flush()
	}
}

// panicky panics: before anything is sent gw answers 500; with ?late,
// after part of the response went out, so the client sees it cut off.
func panicky(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery == "late" {
		io.WriteString(w, "partial\n")
		w.(http.Flusher).Flush()
	}
	panic("boom")
}

// sleep waits ?S seconds (default 1), or until the client goes away.
func sleep(w http.ResponseWriter, r *http.Request) {
	s, err := strconv.ParseFloat(r.URL.RawQuery, 64)
	if err != nil {
		s = 1
	}
	select {
	case <-time.After(time.Duration(s * float64(time.Second))):
		fmt.Fprintf(w, "slept %gs\n", s)
	case <-r.Context().Done():
		log.Printf("sleep interrupted: %v", r.Context().Err())
	}
}

// echo describes the request as the handler sees it.
func echo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	body, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "method=%s\nuri=%s\npath=%s\nquery=%s\nproto=%s\nhost=%s\nremote=%s\ntls=%t\nlength=%d\nbody=%s\n",
		r.Method, r.RequestURI, r.URL.Path, r.URL.RawQuery, r.Proto, r.Host, r.RemoteAddr, r.TLS != nil, r.ContentLength, body)
	for _, v := range r.Header.Values("X-Dup") {
		fmt.Fprintf(w, "x-dup=%s\n", v)
	}
}

// trailers sends a body, then two trailers: one announced up front, one not.
func trailers(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Trailer", "X-Checksum")
	io.WriteString(w, "body with trailers\n")
	w.Header().Set("X-Checksum", "abc123")
	w.Header().Set(http.TrailerPrefix+"X-Late", "late")
}

// logLines writes to each place a plugin may log to; gw logs them all.
func logLines(w http.ResponseWriter, r *http.Request) {
	msg := strings.TrimSpace(r.URL.Query().Get("msg"))
	log.Printf("log package: %s", msg)
	fmt.Fprintf(os.Stderr, "stderr: %s\n", msg)
	fmt.Fprintf(os.Stdout, "stdout: %s\n", msg)
	io.WriteString(w, "logged\n")
}

// wsEcho is a WebSocket echo with coder/websocket: Accept hijacks the
// ResponseWriter (the SDK's implements http.Hijacker for upgrade
// requests), and the session runs inside the handler until the client
// closes.
func wsEcho(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		log.Printf("ws accept: %v", err)
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(4 << 20)
	ctx := r.Context()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			log.Printf("ws closed: %v", websocket.CloseStatus(err))
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

// rawEcho takes the connection itself, writes its own 101 and echoes
// bytes in a goroutine after the handler returned (gorilla/websocket's
// way). A request that is not an upgrade cannot be hijacked: 426.
func rawEcho(w http.ResponseWriter, r *http.Request) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusUpgradeRequired)
		return
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	if err := brw.Flush(); err != nil {
		conn.Close()
		return
	}
	go func() {
		defer conn.Close()
		io.Copy(conn, brw.Reader) // what the client sent after the head comes through the reader
	}()
}
