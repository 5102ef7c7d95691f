package gateway

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/gwhq/gw/bridge"
)

// Handover for ASGI (docs/design/websocket.md): on plain HTTP/1.1 an ASGI
// runner that says READY ws_socket gets the client's TCP socket itself and
// frames RFC 6455 there, so messages never cross gw. gw still validates the
// handshake, counts the session (max_websockets, /stats, placement) until
// the runner's RAW_CLOSED, and at a drain asks for a 1001 close, then cuts
// the socket after limits.shutdown_timeout.

var _ bridge.SocketUpgrader = (*wsUpgrade)(nil)

// ClientSocket is bridge.SocketUpgrader's: the client's socket unless TLS,
// net/http, a PROXY-protocol listener or buffered bytes stand in the way
// (clientSocket), or permessage-deflate would be negotiated (gw's to do).
func (u *wsUpgrade) ClientSocket() *net.TCPConn {
	if u.r.TLS != nil || (u.mode != websocket.CompressionDisabled && offersDeflate(u.r)) {
		return nil
	}
	tc, in0, out0 := clientSocket(u.statusWriter)
	u.in0, u.out0 = in0, out0
	return tc
}

func offersDeflate(r *http.Request) bool {
	return hasToken(extensionNames(r.Header["Sec-Websocket-Extensions"]), "permessage-deflate")
}

// extensionNames drops each offer's parameters ("permessage-deflate;
// client_max_window_bits" offers permessage-deflate).
func extensionNames(values []string) []string {
	var out []string
	for _, v := range values {
		for o := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(o, ";")
			out = append(out, name)
		}
	}
	return out
}

func (u *wsUpgrade) WSLimits() (uint64, uint32) {
	return uint64(max(u.opts.maxMessage, 0)), uint32(u.opts.ping / time.Millisecond)
}

// Handed takes the connection from h1 (the runner wrote the 101): gw keeps
// a descriptor off the poller to cut it and count its bytes.
func (u *wsUpgrade) Handed(s *bridge.Session) error {
	fd, err := takeSocket(u.statusWriter)
	if err != nil {
		return err
	}
	u.handed = &handedConn{fd: fd, closed: s.Done(), in0: u.in0, out0: u.out0}
	u.sess = s
	u.wrote, u.status = true, http.StatusSwitchingProtocols
	return nil
}

// handedWS is an open handed-over session in its generation's set: a drain
// asks the runner for a 1001 close and cuts the socket if it is still open
// after the shutdown timeout.
type handedWS struct {
	h    *handedConn
	s    *bridge.Session
	cut  time.Duration
	once sync.Once
	t    *time.Timer
}

func (hw *handedWS) end() {
	hw.once.Do(func() {
		// Not inline: closeAll holds its set's lock, and a write on the
		// session channel may wait for a busy runner.
		go hw.s.GoAway(bridge.CloseGoingAway, "gw is stopping")
		hw.t = time.AfterFunc(hw.cut, hw.h.end)
	})
}

// endHandedWS waits for a handed-over session to end (RAW_CLOSED, or the
// runner's exit) and counts it. Like a relayed session it does not pin its
// generation: the drain asks for its close instead.
func (g *Gateway) endHandedWS(u *wsUpgrade, c *wsCounters, t *table) {
	c.total.Add(1)
	c.handed.Add(1)
	t.release() // a retired table's drain may start (reload.go)
	defer t.pin()
	hw := &handedWS{h: u.handed, s: u.sess, cut: t.wsOpts.cut}
	if t.ws.add(hw) {
		defer t.ws.remove(hw)
	} else {
		hw.end() // gw is stopping
	}
	<-u.sess.Done()
	hw.once.Do(func() {}) // no timer from here on
	if hw.t != nil {
		hw.t.Stop()
	}
	u.handed.finish()
	in, out := u.sess.Counts()
	c.msgsIn.Add(in)
	c.msgsOut.Add(out)
}
