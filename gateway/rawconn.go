package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gwhq/gw/internal/config"
)

// Raw connections (docs/design/websocket.md, "Raw connections"): Rack and
// PSGI apps do their own framing (faye-websocket, ActionCable,
// Protocol::WebSocket), and so do Go plugins (http.Hijacker), so for them gw does not terminate WebSockets: an
// upgrade request carries the app's end of a socketpair, and if the app
// takes it (rack.hijack, psgix.io) gw copies bytes between the client's
// connection and its own end until one side closes.

// errNoUpgrade: php-cgi answers one request and exits; it cannot hold a
// connection (fail: 501).
var errNoUpgrade = errors.New("php-cgi cannot hold a connection open: upgrade requests (WebSockets) are not supported for PHP apps")

// rawCounters are an app's hijacked-connection figures for /stats and
// /metrics.
type rawCounters struct {
	open     atomic.Int64 // upgrade requests under way and hijacked connections open
	total    atomic.Uint64
	bytesIn  atomic.Uint64 // client to app, counted when a connection ends
	bytesOut atomic.Uint64
}

// rawLang reports whether lang's apps get raw connections for upgrade
// requests (their shims speak RAW_CONNECT; a Go plugin's SDK hijacks, or
// if it predates raw connections, answers as to any request).
func rawLang(lang config.Lang) bool {
	return lang == config.LangRuby || lang == config.LangPerl || lang == config.LangGo
}

// isUpgrade reports whether r asks to switch protocols on its connection
// (RFC 9110 §7.8) without a body; HTTP/2 has no such request.
func isUpgrade(r *http.Request) bool {
	return r.ProtoMajor == 1 && r.ProtoMinor >= 1 && len(r.Header["Upgrade"]) > 0 &&
		hasToken(r.Header["Connection"], "upgrade") && r.ContentLength <= 0 && len(r.TransferEncoding) == 0
}

// rawUpgrade is the ResponseWriter the pool gets for an upgrade request
// to a Rack or PSGI app (bridge.RawHijacker).
type rawUpgrade struct {
	*statusWriter
	app   net.Conn  // gw's end of the socketpair; nil unless offered
	relay *rawRelay // set once the app took the connection
	set   *openSet  // the generation's hijacked connections
}

type rawRelay struct {
	client net.Conn
	br     *bufio.Reader // what gw's HTTP server read past the head
	app    net.Conn

	done    chan struct{} // closed when run returns
	in, out int64         // bytes each way; read after done
}

func (u *rawUpgrade) OfferRaw(c net.Conn) { u.app = c }

// end cuts both sides (openSet.closeAll at a drain's end).
func (rr *rawRelay) end() {
	rr.client.Close()
	rr.app.Close()
}

// HijackRaw takes the client's connection from the HTTP server and starts
// relaying at once: the app may serve the connection inside its request
// (a Perl app has no other thread), so the relay cannot wait for it.
func (u *rawUpgrade) HijackRaw() error {
	if u.app == nil {
		return errors.New("no connection was offered")
	}
	c, brw, err := http.NewResponseController(u.statusWriter).Hijack()
	if err != nil {
		return err
	}
	// The server's deadlines are not the app's: net/http leaves its
	// timeouts on a hijacked connection, and h1's idle watch may leave
	// its abort deadline (aLongTimeAgo) when it fired during the request.
	c.SetDeadline(time.Time{})
	u.relay = &rawRelay{client: c, br: brw.Reader, app: u.app, done: make(chan struct{})}
	u.wrote, u.status = true, http.StatusSwitchingProtocols
	go u.relay.run(u.set) // serveRaw waits for done
	return nil
}

// serveRaw hands r, an upgrade request, to a Rack or PSGI app with its
// connection, and relays that connection if the app takes it.
func (g *Gateway) serveRaw(sw *statusWriter, r *http.Request, t *table, rt *route) {
	c := &rt.stats.raw
	// Hijacked connections and WebSockets share max_websockets.
	if max := rt.maxWS; c.open.Add(1)+rt.stats.ws.open.Load() > max && max > 0 {
		c.open.Add(-1)
		rt.stats.ws.refused.Add(1)
		g.fail(sw, r, rt, errTooManyWebSockets)
		return
	}
	defer c.open.Add(-1)
	u := &rawUpgrade{statusWriter: sw, set: t.raw}
	err := rt.serve(u, r)
	if u.relay == nil {
		if u.app != nil {
			u.app.Close()
		}
		if err != nil {
			g.fail(sw, r, rt, err)
		}
		rt.stats.record(sw.code(), 0, sw.bytes)
		return
	}
	if err != nil {
		g.log.Warn("app failed after taking its connection", "app", rt.name, "path", r.URL.Path, "err", err)
	}
	c.total.Add(1)
	rt.stats.record(http.StatusSwitchingProtocols, 0, 0)
	// The open connection pins its generation (t.refs, held by
	// ServeHTTP): a reload or shutdown waits for it up to the shutdown
	// timeout, then cuts it (openSet.closeAll).
	<-u.relay.done
	c.bytesIn.Add(uint64(u.relay.in))
	c.bytesOut.Add(uint64(u.relay.out))
}

// run copies both ways until the app closes its end (or the client
// vanishes and the app, seeing EOF, does), then closes both.
func (rr *rawRelay) run(set *openSet) {
	defer close(rr.done)
	defer rr.client.Close()
	defer rr.app.Close()
	if !set.add(rr) {
		return // gw is stopping
	}
	defer set.remove(rr)
	in := make(chan struct{})
	go func() {
		defer close(in)
		// Client to app: gw's buffered bytes first. At the client's EOF
		// (or reset) the app reads EOF and may still answer.
		rr.in, _ = io.Copy(rr.app, rr.br)
		if cw, ok := rr.app.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	rr.out, _ = io.Copy(rr.client, rr.app)
	// The app is done (closed its socket, or the client stopped taking
	// bytes): end the client's side, which ends the copy above.
	rr.client.Close()
	rr.app.Close()
	<-in
}
