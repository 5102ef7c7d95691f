package runners

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
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
// "Raw connections") as RAW_CONNECT and one byte with SCM_RIGHTS. For a
// runner that takes client TCP sockets whole (READY raw_socket: the
// handover), it also carries RAW_CLOSED back: the runner's copy of such a
// socket is closed.
type rawChannel struct {
	mu   sync.Mutex // a RAW_CONNECT and its byte go out together
	c    *net.UnixConn
	next atomic.Uint32

	wmu     sync.Mutex
	waiters map[uint32]chan struct{} // handed-over sockets the runner holds; nil once the channel ended
}

func newRawChannel(c net.Conn, sockets bool) *rawChannel {
	uc, _ := c.(*net.UnixConn) // socketpair's FileConn: always one
	ch := &rawChannel{c: uc}
	if sockets {
		ch.waiters = map[uint32]chan struct{}{}
		go ch.readClosed()
	}
	return ch
}

// send passes fd to the runner and returns the id the request head names.
func (ch *rawChannel) send(fd int) (uint32, error) {
	id := ch.next.Add(1)
	if id == 0 {
		id = ch.next.Add(1)
	}
	return id, ch.sendID(id, fd)
}

func (ch *rawChannel) sendID(id uint32, fd int) error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if _, err := ch.c.Write(bridge.RawConnectFrame(id)); err != nil {
		return err
	}
	// Its own write: a runner reads the frame with exact-length reads,
	// then this byte with recvmsg, so no plain read ever drops the socket.
	_, _, err := ch.c.WriteMsgUnix([]byte{0}, syscall.UnixRights(fd), nil)
	return err
}

// sendSocket hands the client's socket itself to the runner. The channel
// it returns is closed when the runner's copy is closed (RAW_CLOSED) or
// the runner is gone: the waiter is filed before the socket goes, as
// RAW_CLOSED may come back before the slot's RAW_HIJACKED is read.
func (ch *rawChannel) sendSocket(tc *net.TCPConn) (uint32, <-chan struct{}, error) {
	id := ch.next.Add(1)
	if id == 0 {
		id = ch.next.Add(1)
	}
	done := make(chan struct{})
	ch.wmu.Lock()
	if ch.waiters == nil {
		ch.wmu.Unlock()
		return 0, nil, fmt.Errorf("session channel closed")
	}
	ch.waiters[id] = done
	ch.wmu.Unlock()
	sc, err := tc.SyscallConn()
	if err == nil {
		cerr := sc.Control(func(fd uintptr) { err = ch.sendID(id, int(fd)) })
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		ch.closed(id)
		return 0, nil, err
	}
	return id, done, nil
}

func (ch *rawChannel) closed(id uint32) {
	ch.wmu.Lock()
	defer ch.wmu.Unlock()
	if done, ok := ch.waiters[id]; ok {
		delete(ch.waiters, id)
		close(done)
	}
}

// readClosed reads RAW_CLOSED frames until the channel ends (the runner
// exited, taking its copies with it, or gw closed it), then releases
// every waiter.
func (ch *rawChannel) readClosed() {
	defer func() {
		ch.wmu.Lock()
		defer ch.wmu.Unlock()
		for _, done := range ch.waiters {
			close(done)
		}
		ch.waiters = nil
	}()
	var b [bridge.HeaderSize + 4]byte
	for {
		if _, err := io.ReadFull(ch.c, b[:]); err != nil {
			return
		}
		if bridge.Type(b[0]) != bridge.RawClosed || binary.LittleEndian.Uint32(b[4:8]) != 4 {
			return // not the protocol: treat as gone
		}
		ch.closed(binary.LittleEndian.Uint32(b[bridge.HeaderSize:]))
	}
}

// serveRaw serves an upgrade request whose app may take the connection:
// the app's end goes ahead on the session channel, then the request on
// slot i as any other, naming it. The slot is busy while the app's code
// runs (a full hijack returns at once in faye-websocket and ActionCable).
// When the runner takes TCP sockets and the gateway can give the client's
// own (bridge.RawHandover), that socket goes instead of a socketpair end.
func (w *bridgeWorker) serveRaw(i int, rh bridge.RawHijacker, r *http.Request) error {
	id, err := w.offerRaw(rh)
	if err != nil {
		return fmt.Errorf("%w: %w: raw connection: %w", pool.ErrWorkerGone, pool.ErrNotDelivered, err)
	}
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

// offerRaw sends the runner the request's connection, the client's socket
// or a socketpair end, and tells rh which.
func (w *bridgeWorker) offerRaw(rh bridge.RawHijacker) (uint32, error) {
	if ho, ok := rh.(bridge.RawHandover); ok && w.t.rawSocket {
		if tc := ho.ClientSocket(); tc != nil {
			id, closed, err := w.t.raw.sendSocket(tc)
			if err != nil {
				return 0, err
			}
			ho.OfferSocket(closed)
			return id, nil
		}
	}
	// gw's end on the poller; the app's is closed once sent (the runner
	// has its copy).
	conn, f, err := socketpair()
	if err != nil {
		return 0, err
	}
	id, err := w.t.raw.send(int(f.Fd()))
	f.Close()
	if err != nil {
		conn.Close()
		return 0, err
	}
	rh.OfferRaw(conn)
	return id, nil
}
