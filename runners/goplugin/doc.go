// Package goplugin runs Go apps as plugin processes: a program built with
// the sdk subpackage (sdk.Serve(handler)) is started by hashicorp/go-plugin
// and serves gw's requests over gRPC (proto/plugin.proto).
//
// Launcher.Launch starts one process per pool worker:
//
//   - checks first what can be checked without running anything: the file
//     is executable, has the configured sha256 (go-plugin's SecureConfig),
//     and, if it is a Go program, links go-plugin at all;
//   - starts it through go-plugin's RunnerFunc (process.go), so gw owns the
//     process: its own process group, an owner pipe on fd 3 whose EOF tells
//     the plugin gw is gone, a channel closed at exit, and the first stdout
//     bytes for the error when the handshake line is not one;
//   - runs go-plugin's handshake (magic cookie, protocol version, gRPC only)
//     and a first health check within StartTimeout, killing the process on
//     timeout, on ctx's end, or as soon as it exits by itself, and reports
//     each failure as a *proc.SpawnError whose Stage and message say what
//     the binary did (printed something else, printed nothing, exited).
//
// A worker (worker.go) has Slots request slots, all multiplexed over one
// gRPC connection. Each request is one stream (exchange.go): the head and
// body chunks of at most 64 KiB go one way, the response head, body chunks,
// flush marks and trailers come back, and the stream lives in the request's
// context, so a client that leaves or a deadline cancels just that request
// in the plugin. The worker's life is runners/lifecycle's, with go-plugin's
// client as its transport (transport.go): it pings go-plugin's health
// service every PingEvery and kills a plugin that does not answer within
// PingTimeout; Done closes when the process has exited and go-plugin's
// client is released, which is how the pool learns to respawn it. Stop
// uses go-plugin's Shutdown RPC, and kills at its context's end.
//
// Everything the plugin writes reaches gw's log with the app, worker and
// pid (logging.go): its stderr through go-plugin's hclog parsing (so the
// SDK's JSON records keep their level and attributes), its synced stdout and
// stderr line by line. go-plugin's own chatter goes to Debug.
package goplugin
