package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/pool"
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

	// The handover: the client's socket itself went to the runner.
	tls    bool            // never handed over: TLS is gw's
	closed <-chan struct{} // the runner's copy is closed; nil unless offered
	handed *handedConn     // set once the app took it
	in0    uint64          // byte baseline read when the socket was chosen (tcpBaseline)
	out0   uint64
}

// handoverer is gateway/h1's response writer: it can give the client's
// socket up whole (h1 response.Handover).
type handoverer interface {
	Handover() (*net.TCPConn, bool)
}

// ClientSocket is bridge.RawHandover's: the client's socket when the
// request came over plain HTTP/1.1 on gw's own server with nothing read
// past the head; nil otherwise (TLS, net/http, PROXY protocol, bytes
// buffered), and the connection is relayed.
func (u *rawUpgrade) ClientSocket() *net.TCPConn {
	if u.tls {
		return nil
	}
	tc, in0, out0 := clientSocket(u.statusWriter)
	u.in0, u.out0 = in0, out0
	return tc
}

// clientSocket is the client's socket of w's request if gw's h1 server can
// give it up whole (response.Handover), with the byte baseline the app's
// share is counted from; nil otherwise.
func clientSocket(w http.ResponseWriter) (tc *net.TCPConn, in0, out0 uint64) {
	for {
		if h, ok := w.(handoverer); ok {
			tc, ok := h.Handover()
			if !ok {
				return nil, 0, 0
			}
			// The baseline is read now, before the runner has the socket:
			// by the time the app hijacks, it may already be echoing.
			in0, out0 = tcpBaseline(tc)
			return tc, in0, out0
		}
		uw, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil, 0, 0
		}
		w = uw.Unwrap()
	}
}

func (u *rawUpgrade) OfferSocket(closed <-chan struct{}) { u.closed = closed }

// handedConn is a connection handed over to the runner. gw keeps its own
// descriptor, outside Go's poller (it never reads or writes it), so it can
// cut the connection at a drain's end (shutdown(2) reaches the runner's
// copy: same socket) and read the byte counts when it ends.
type handedConn struct {
	mu     sync.Mutex
	fd     int // -1 once closed
	in0    uint64
	out0   uint64
	closed <-chan struct{}
}

// end cuts the connection: the app reads EOF and its writes fail; the
// runner then closes its copy and says so (openSet.closeAll).
func (h *handedConn) end() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fd >= 0 {
		unix.Shutdown(h.fd, unix.SHUT_RDWR)
	}
}

// finish reads the bytes each way since the handover (TCP_INFO: received,
// and sent as acknowledged by the client) and closes gw's descriptor.
func (h *handedConn) finish() (in, out uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ti, err := unix.GetsockoptTCPInfo(h.fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
		in, out = ti.Bytes_received-min(h.in0, ti.Bytes_received), ti.Bytes_acked-min(h.out0, ti.Bytes_acked)
	}
	unix.Close(h.fd)
	h.fd = -1
	return in, out
}

// tcpBaseline reads the byte counts the app's share is measured from:
// received minus what is still unread in the kernel (the app reads it), and
// acknowledged plus what is still queued unacknowledged (gw wrote it).
func tcpBaseline(tc *net.TCPConn) (in0, out0 uint64) {
	sc, err := tc.SyscallConn()
	if err != nil {
		return 0, 0
	}
	sc.Control(func(s uintptr) {
		ti, err := unix.GetsockoptTCPInfo(int(s), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return
		}
		unread, _ := unix.IoctlGetInt(int(s), unix.SIOCINQ)
		unacked, _ := unix.IoctlGetInt(int(s), unix.SIOCOUTQ)
		in0 = ti.Bytes_received - min(ti.Bytes_received, uint64(max(unread, 0)))
		out0 = ti.Bytes_acked + uint64(max(unacked, 0))
	})
	return in0, out0
}

// handOver takes the client's connection from the HTTP server, which
// forgets it without closing the socket, and keeps a descriptor of it off
// the poller: from here bytes go client <-> app directly.
func (u *rawUpgrade) handOver() error {
	fd, err := takeSocket(u.statusWriter)
	if err != nil {
		return err
	}
	u.handed = &handedConn{fd: fd, closed: u.closed, in0: u.in0, out0: u.out0}
	u.wrote, u.status = true, http.StatusSwitchingProtocols
	return nil
}

// takeSocket hijacks sw's connection and returns a dup of its descriptor,
// off the poller; the poller's is closed.
func takeSocket(sw *statusWriter) (int, error) {
	c, _, err := http.NewResponseController(sw).Hijack()
	if err != nil {
		return -1, err
	}
	defer c.Close() // gw's poller descriptor; the socket lives on in the runner and in fd
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return -1, errors.New("handover: not a TCP connection")
	}
	sc, err := tc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if cerr := sc.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		return -1, fmt.Errorf("handover: dup: %w", err)
	}
	return fd, nil
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
	if u.closed != nil {
		return u.handOver()
	}
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
	if !rt.admitConn(&c.open) {
		g.fail(sw, r, rt, errTooManyWebSockets)
		return
	}
	defer c.open.Add(-1)
	u := &rawUpgrade{statusWriter: sw, set: t.raw, tls: r.TLS != nil}
	// A taken connection counts on its runner until it ends (relayed or
	// handed over), so the pool places the next upgrades elsewhere.
	var held pool.Conn
	defer held.Close()
	err := rt.serveConn(u, r, &held)
	if u.handed != nil {
		g.endHanded(u.handed, r, rt, err, t.raw)
		return
	}
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

// endHanded waits for a handed-over connection to end: the runner closed
// its copy (RAW_CLOSED) or exited. Until then it counts against
// max_websockets and pins its generation, and a drain's end cuts it.
func (g *Gateway) endHanded(h *handedConn, r *http.Request, rt *route, err error, set *openSet) {
	c := &rt.stats.raw
	if err != nil {
		g.log.Warn("app failed after taking its connection", "app", rt.name, "path", r.URL.Path, "err", err)
	}
	c.total.Add(1)
	rt.stats.record(http.StatusSwitchingProtocols, 0, 0)
	if set.add(h) {
		defer set.remove(h)
	} else {
		h.end() // gw is stopping
	}
	<-h.closed
	in, out := h.finish()
	c.bytesIn.Add(in)
	c.bytesOut.Add(out)
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
