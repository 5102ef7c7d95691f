// Package sdk turns an http.Handler into a gw Go plugin.
//
// A plugin is an ordinary program whose main calls Serve:
//
//	func main() {
//		mux := http.NewServeMux()
//		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
//			io.WriteString(w, "Hello, World!")
//		})
//		sdk.Serve(mux)
//	}
//
// Build it with go build and serve it with gw run --lang go ./myplugin. gw
// starts one plugin process per worker (hashicorp/go-plugin over gRPC), and
// each process serves many requests at once, each on its own goroutine, as
// net/http does.
//
// The handler sees what a net/http server would give it: Method, RequestURI
// and URL (parsed from the raw request target), Proto, Header, Host,
// RemoteAddr, ContentLength (-1 when unknown), TLS non-nil for https, a
// streamed Body, and a Context that ends when the client goes away or the
// request's deadline in gw passes. The
// ResponseWriter streams too: it buffers up to 64 KiB, implements
// http.Flusher (and FlushError for http.ResponseController), and sends
// trailers declared with a "Trailer" header or set
// with http.TrailerPrefix. It implements http.Hijacker for HTTP/1.1
// upgrade requests, so WebSocket libraries (coder/websocket,
// gorilla/websocket) work: the handler gets a real socket, and gw copies
// bytes between it and the client. A handler that serves the connection
// inside ServeHTTP holds no slot of gw's: the request counts as done once
// hijacked, and the connection against the app's max_websockets.
//
// A panic in the handler is logged with its stack and answered with 500 if
// the response head has not left the plugin yet (otherwise the response is
// cut off); the process keeps serving. Anything the plugin writes to stdout
// or stderr, including the log package's output, ends up in gw's log with the
// app, worker and pid it came from.
//
// The program must print nothing on stdout before Serve: go-plugin's
// handshake is the first line there.
package sdk

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/gwhq/gw/proto/pluginpb"
	"github.com/gwhq/gw/runners/goplugin/internal/wire"
)

// Serve serves h to gw until gw stops the plugin, then returns, so deferred
// cleanup in main runs. Run by hand rather than by gw, it prints a notice
// and exits with status 1.
//
// gw owns the plugin's lifecycle: SIGTERM is ignored (systemd sends it to
// every process of the unit at once, while gw may still be draining
// requests), the plugin exits when gw goes away, and SIGUSR1 logs every
// goroutine's stack. Serve also drops the date and time from the log
// package's default logger: gw's records have their own.
func Serve(h http.Handler) {
	// hclog's JSON lines on the real stderr are how go-plugin carries log
	// levels and attributes to the host; plain lines arrive as text.
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: os.Stderr, JSONFormat: true})
	log.SetFlags(log.Flags() &^ (log.Ldate | log.Ltime | log.Lmicroseconds))
	s := &service{h: h, log: logger, raw: startRaw(logger)}
	defer watchOwner(logger)()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	// Ends when Serve returns.
	go func() {
		defer wg.Done()
		for {
			select {
			case sig := <-sigs:
				if sig == syscall.SIGUSR1 {
					s.dumpStacks() // gw's slow-request log
				} else {
					logger.Warn("ignoring SIGTERM: gw stops its plugins itself")
				}
			case <-quit:
				return
			}
		}
	}()
	defer wg.Wait()
	defer close(quit)

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake(),
		// Every version this SDK speaks: go-plugin takes the highest the
		// host offers too, so an older gw still serves this plugin.
		VersionedPlugins: wire.VersionedPlugins(plugin.PluginSet{wire.PluginName: &grpcPlugin{s: s}}),
		GRPCServer:       newGRPCServer,
		Logger:           logger,
	})
}

// watchOwner makes the process exit once gw is gone, however it went: gw
// holds the write end of the pipe named by wire.OwnerFDEnv and never writes,
// so a read returns only at gw's exit. The returned func stops watching.
func watchOwner(log hclog.Logger) (stop func()) {
	v := os.Getenv(wire.OwnerFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return func() {}
	}
	os.Unsetenv(wire.OwnerFDEnv) // the handler's children have no such fd
	syscall.CloseOnExec(fd)
	// Non-blocking makes the file pollable, so Close ends a pending Read.
	syscall.SetNonblock(fd, true)
	f := os.NewFile(uintptr(fd), "gw-owner")
	done := make(chan struct{})
	// Ends at gw's exit (exiting the process) or at stop.
	go func() {
		defer close(done)
		var b [1]byte
		if _, err := f.Read(b[:]); errors.Is(err, os.ErrClosed) {
			return
		}
		log.Error("gw is gone: exiting")
		os.Exit(1)
	}()
	return func() {
		f.Close()
		<-done
	}
}

// newGRPCServer is go-plugin's default server, except that as many
// long-lived goroutines as gw has slots run the streams: a new goroutine per
// request grows its stack through the protobuf decoder every time
// (runtime.newstack was a fifth of the plugin's CPU in bench/goplugin), and
// grpc-go falls back to one when all workers are busy.
func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	n, err := strconv.Atoi(os.Getenv(wire.SlotsEnv))
	if err != nil || n < 1 || n > 4096 {
		n = 32
	}
	return grpc.NewServer(append(opts, grpc.NumStreamWorkers(uint32(n)))...)
}

// grpcPlugin registers the handler service on go-plugin's gRPC server. It is
// never dispensed on this side.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	s *service
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, g *grpc.Server) error {
	pluginpb.RegisterHandlerServer(g, p.s)
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, _ *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: the plugin side has no client")
}
