package runners

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/gwhq/gw/bridge"
	"github.com/gwhq/gw/internal/cgi"
	"github.com/gwhq/gw/internal/reqid"
	"github.com/gwhq/gw/runners/pool"
)

// rawChannel is a Rack or PSGI runner's session channel: it carries the
// app's end of each upgrade request's connection (docs/design/websocket.md,
// "Raw connections") as RAW_CONNECT and one byte with SCM_RIGHTS.
type rawChannel struct {
	mu   sync.Mutex // a RAW_CONNECT and its byte go out together
	c    *net.UnixConn
	next atomic.Uint32
}

func newRawChannel(c net.Conn) *rawChannel {
	uc, _ := c.(*net.UnixConn) // socketpair's FileConn: always one
	return &rawChannel{c: uc}
}

// send passes f to the runner and returns the id the request head names.
func (ch *rawChannel) send(f *os.File) (uint32, error) {
	id := ch.next.Add(1)
	if id == 0 {
		id = ch.next.Add(1)
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if _, err := ch.c.Write(bridge.RawConnectFrame(id)); err != nil {
		return 0, err
	}
	// Its own write: a runner reads the frame with exact-length reads,
	// then this byte with recvmsg, so no plain read ever drops the socket.
	if _, _, err := ch.c.WriteMsgUnix([]byte{0}, syscall.UnixRights(int(f.Fd())), nil); err != nil {
		return 0, err
	}
	return id, nil
}

// serveRaw serves an upgrade request whose app may take the connection:
// the app's end goes ahead on the session channel, then the request on
// slot i as any other, naming it. The slot is busy while the app's code
// runs (a full hijack returns at once in faye-websocket and ActionCable).
func (w *bridgeWorker) serveRaw(i int, rh bridge.RawHijacker, r *http.Request) error {
	// gw's end on the poller; the app's is closed once sent (the runner
	// has its copy).
	conn, f, err := socketpair()
	if err != nil {
		return fmt.Errorf("%w: %w: %v", pool.ErrWorkerGone, pool.ErrNotDelivered, err)
	}
	id, err := w.t.raw.send(f)
	f.Close()
	if err != nil {
		conn.Close()
		return fmt.Errorf("%w: %w: raw connection: %v", pool.ErrWorkerGone, pool.ErrNotDelivered, err)
	}
	rh.OfferRaw(conn)
	w.t.busy.Add(1)
	defer w.t.busy.Add(-1)
	h := bridge.BeginHead(nil)
	cgi.Build(&h, r, w.mount)
	// The connection is the app's to speak on: its hop-by-hop headers
	// are the app's too (Protocol::WebSocket checks them).
	h.AddHeader("Connection", strings.Join(r.Header["Connection"], ", "))
	h.AddHeader("Upgrade", strings.Join(r.Header["Upgrade"], ", "))
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	head := bridge.RawHead(h.Finish(scheme, r.Header.Get(reqid.Header)), id)
	_, err = w.t.slots[i].Exchange(rh, r, head, nil)
	return poolError(err)
}
