package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/gwhq/gw/bridge"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/pool"
)

// WebSockets are terminated here (docs/design/websocket.md): gw speaks RFC
// 6455 to the client with github.com/coder/websocket and hands the app
// whole messages over its runner's session channel (bridge.Mux).

// errTooManyWebSockets: the app has max_websockets open already (fail: 503).
var errTooManyWebSockets = errors.New("too many open WebSockets for this app (max_websockets)")

// wsCounters are an app's WebSocket figures for /stats and /metrics.
type wsCounters struct {
	open    atomic.Int64 // sessions open now (handshakes under way included)
	total   atomic.Uint64
	refused atomic.Uint64 // beyond max_websockets
	handed  atomic.Uint64 // of total: the runner framed it on the client's socket
	msgsIn  atomic.Uint64 // client to app
	msgsOut atomic.Uint64 // app to client
}

// isWebSocket reports whether r is a WebSocket handshake (RFC 6455
// §4.2.1); anything else, odd ones included, is an ordinary request.
func isWebSocket(r *http.Request) bool {
	return r.Method == http.MethodGet && r.ProtoMajor == 1 && r.ProtoMinor >= 1 &&
		hasToken(r.Header["Upgrade"], "websocket") && hasToken(r.Header["Connection"], "upgrade") &&
		r.Header.Get("Sec-Websocket-Version") == "13" && r.Header.Get("Sec-Websocket-Key") != "" &&
		r.ContentLength <= 0 && len(r.TransferEncoding) == 0
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// wsOptions are the gateway-wide WebSocket limits (config.Limits).
type wsOptions struct {
	maxMessage  int64
	ping        time.Duration
	compression websocket.CompressionMode
	cut         time.Duration // limits.shutdown_timeout: a handed session's bound after its 1001
}

func newWSOptions(lm config.Limits) wsOptions {
	o := wsOptions{maxMessage: int64(lm.WebSocketMaxMessage), ping: lm.WebSocketPing, cut: lm.ShutdownTimeout}
	switch lm.WebSocketCompression {
	case config.WSCompressionOn:
		o.compression = websocket.CompressionNoContextTakeover
	case config.WSCompressionContextTakeover:
		o.compression = websocket.CompressionContextTakeover
	}
	return o
}

type wsSession struct{ goingAway chan struct{} }

// end tells the session's relay to close with 1001 (going away); the
// openSet calls it once.
func (ws *wsSession) end() { close(ws.goingAway) }

// wsUpgrade is the ResponseWriter the pool gets for a handshake: the
// worker calls Upgrade when the app accepted (bridge.Upgrader); a refusal
// is written to it as any answer.
type wsUpgrade struct {
	*statusWriter
	r    *http.Request
	mode websocket.CompressionMode // permessage-deflate, if the client offers it
	conn *websocket.Conn
	sess *bridge.Session
	room *sendRoom // nil: every message goes through the relay's queue

	// The handover (wshanded.go): the runner frames the session on the
	// client's socket.
	opts   wsOptions
	in0    uint64 // byte baseline read when the socket was offered
	out0   uint64
	handed *handedConn // set once the app accepted on it
}

func (u *wsUpgrade) Upgrade(s *bridge.Session, subprotocol string, h http.Header) error {
	for k, v := range h {
		u.Header()[k] = v
	}
	// Origin checks are the app's (it sees Origin in its scope), as with
	// uvicorn; coder/websocket's same-origin default would refuse every
	// cross-origin app.
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: u.mode}
	if subprotocol != "" {
		opts.Subprotocols = []string{subprotocol}
	}
	hj := &hijackRecorder{ResponseWriter: u.statusWriter}
	c, err := websocket.Accept(hj, u.r, opts)
	if err != nil {
		return err
	}
	u.wrote, u.status = true, http.StatusSwitchingProtocols
	u.conn, u.sess = c, s
	if hj.conn != nil {
		u.room = newSendRoom(hj.conn)
	}
	return nil
}

// admitConn counts one more open connection in open (the app's WebSocket
// sessions or its taken connections) against max_websockets, which both
// kinds share; over it, it takes the count back, counts a refusal and
// reports false. The caller takes the count back when the connection ends.
func (rt *route) admitConn(open *atomic.Int64) bool {
	open.Add(1)
	if max := rt.maxWS; max > 0 && rt.stats.ws.open.Load()+rt.stats.raw.open.Load() > max {
		open.Add(-1)
		rt.stats.ws.refused.Add(1)
		return false
	}
	return true
}

// serveWebSocket offers r's handshake to the app through its pool and, if
// the app accepts, relays the session until one side ends it.
func (g *Gateway) serveWebSocket(sw *statusWriter, r *http.Request, t *table, rt *route) {
	c := &rt.stats.ws
	if !rt.admitConn(&c.open) {
		g.fail(sw, r, rt, errTooManyWebSockets)
		return
	}
	defer c.open.Add(-1)
	u := &wsUpgrade{statusWriter: sw, r: r, mode: t.wsOpts.compression, opts: t.wsOpts}
	// The session counts on its runner until it ends, so the pool places
	// the next handshakes elsewhere (a refusal ends it on return).
	var held pool.Conn
	defer held.Close()
	err := rt.serveConn(u, r, &held)
	if u.handed != nil {
		g.endHandedWS(u, c, t)
		rt.stats.record(http.StatusSwitchingProtocols, 0, 0)
		return
	}
	if u.conn == nil {
		if err != nil {
			g.fail(sw, r, rt, err)
		}
		rt.stats.record(sw.code(), 0, sw.bytes)
		return
	}
	c.total.Add(1)
	// An open session holds no slot and does not pin its generation:
	// the generation's drain closes it with 1001 instead (t.ws).
	t.release()
	defer t.pin()
	g.relay(u.conn, u.sess, u.room, c, t)
	rt.stats.record(http.StatusSwitchingProtocols, 0, 0)
}

// relay copies messages both ways until the client or the app ends the
// session, or the generation drains.
func (g *Gateway) relay(conn *websocket.Conn, s *bridge.Session, room *sendRoom, c *wsCounters, t *table) {
	set, ping := t.ws, t.wsOpts.ping
	ws := &wsSession{goingAway: make(chan struct{})}
	if !set.add(ws) {
		s.Close(bridge.CloseGoingAway, "gw is stopping")
		conn.Close(websocket.StatusGoingAway, "server going away")
		return
	}
	defer set.remove(ws)
	// Reads and writes take no cancellable context: coder/websocket arms a
	// context.AfterFunc per call for one, and every way out of here closes
	// the connection, which ends a read or write anyway.
	ctx := context.Background()
	conn.SetReadLimit(t.wsOpts.maxMessage)
	readDone := make(chan struct{})
	// Client to app; ends when the client's side ends (close, error,
	// CloseNow from here).
	go func() {
		defer close(readDone)
		for {
			typ, p, err := conn.Read(ctx)
			if err != nil {
				code, reason := bridge.CloseAbnormal, "client went away"
				var ce websocket.CloseError
				switch {
				case errors.As(err, &ce):
					code, reason = int(ce.Code), ce.Reason
				case errors.Is(err, websocket.ErrMessageTooBig):
					code, reason = bridge.CloseTooBig, "message too big"
				default:
					// Said, so an abnormal end seen with a live client
					// (1011 "client went away" under load, not yet
					// explained) can be told apart from a vanished one.
					g.log.Info("websocket: client side ended without a close", "err", err)
				}
				s.Close(code, reason)
				return
			}
			if typ == websocket.MessageText && !utf8.Valid(p) {
				// RFC 6455 §8.1: fail the connection.
				s.Close(int(websocket.StatusInvalidFramePayloadData), "invalid UTF-8")
				conn.Close(websocket.StatusInvalidFramePayloadData, "invalid UTF-8")
				return
			}
			if err := s.Send(bridge.Message{Binary: typ == websocket.MessageBinary, Data: p}); err != nil {
				conn.Close(websocket.StatusInternalError, "the app's runner went away")
				return
			}
			c.msgsIn.Add(1)
		}
	}()
	var tick <-chan time.Time
	if ping > 0 {
		tk := time.NewTicker(ping)
		defer tk.Stop()
		tick = tk.C
	}
	write := func(m bridge.Message) bool {
		typ := websocket.MessageText
		if m.Binary {
			typ = websocket.MessageBinary
		}
		if conn.Write(ctx, typ, m.Data) != nil {
			return false
		}
		c.msgsOut.Add(1)
		return true
	}
	if room != nil {
		// The session channel's reader writes to this client itself
		// while nothing is queued and the kernel takes the frame at once
		// (its header is at most 14 bytes).
		s.SetDirect(func(m bridge.Message) bool {
			if len(m.Data) > maxDirectMessage || !room.fits(len(m.Data)+14) {
				return false
			}
			if !write(m) {
				conn.CloseNow() // the reader then ends the session
			}
			return true
		})
	}
	for {
		select {
		case m := <-s.Messages():
			ok := write(m)
			s.Took()
			if !ok {
				conn.CloseNow()
				s.Close(bridge.CloseAbnormal, "client went away")
				<-readDone
				return
			}
		case <-s.Done():
			// What the app sent before it closed goes out first.
			for flushed := false; !flushed; {
				select {
				case m := <-s.Messages():
					write(m)
					s.Took()
				default:
					flushed = true
				}
			}
			code, reason := s.End()
			conn.Close(clientCode(code), reason)
			<-readDone
			return
		case <-readDone:
			conn.CloseNow()
			return
		case <-ws.goingAway:
			s.Close(bridge.CloseGoingAway, "gw is stopping")
			conn.Close(websocket.StatusGoingAway, "server going away")
			<-readDone
			return
		case <-tick:
			// Ping waits for the pong, which the reader takes in.
			go func() {
				pctx, cancel := context.WithTimeout(ctx, ping)
				defer cancel()
				if conn.Ping(pctx) != nil && ctx.Err() == nil {
					conn.CloseNow() // the reader then ends the session
				}
			}()
		}
	}
}

// maxDirectMessage bounds what the session channel's reader writes to a
// client itself (compression included): larger messages, whose copy
// costs more than the hand-off, go through the relay.
const maxDirectMessage = 16 << 10

// clientCode is the close code to send for the app's: codes that must
// not go on the wire (RFC 6455 §7.4.1: 1005, 1006, 1015; out of range)
// become 1000 or 1011.
func clientCode(code int) websocket.StatusCode {
	switch {
	case code == 1005 || code == 1006 || code == 1015:
		if code == 1006 {
			return websocket.StatusInternalError
		}
		return websocket.StatusNormalClosure
	case code >= 1000 && code < 5000:
		return websocket.StatusCode(code)
	}
	return websocket.StatusNormalClosure
}
