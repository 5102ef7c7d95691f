package goplugin

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/gwhq/gw/runners/pool"
	"github.com/gwhq/gw/runners/proc"
)

// Raw connections (plugin.proto, docs/design/websocket.md): for an upgrade
// request the plugin gets the app's end of a socketpair ahead of the
// request, so a handler can hijack its ResponseWriter and speak its own
// protocol (a WebSocket library) on a real socket, while gw copies bytes
// between the client's connection and its own end, as for Rack and PSGI.

// rawHijacker is the gateway's ResponseWriter of an upgrade request
// (gateway/rawconn.go): it takes gw's end of the socketpair, and the
// client's connection once the handler has taken the plugin's end.
type rawHijacker interface {
	http.ResponseWriter
	OfferRaw(conn net.Conn)
	HijackRaw() error
}

// errHijacked ends copyResponse: the handler took the connection.
var errHijacked = errors.New("the handler hijacked the connection")

// rawChannel is gw's end of a plugin's raw-connection socket. SOCK_SEQPACKET
// keeps each id with its descriptor: one message, one sendmsg.
type rawChannel struct {
	c    *net.UnixConn
	next atomic.Uint32
}

// newRawChannel makes the socket; the file is the plugin's end (fd 4).
func newRawChannel() (*rawChannel, *os.File, error) {
	c, f, err := proc.Socketpair(syscall.SOCK_SEQPACKET, "gw-plugin-raw")
	if err != nil {
		return nil, nil, err
	}
	return &rawChannel{c: c.(*net.UnixConn)}, f, nil
}

func (ch *rawChannel) close() { ch.c.Close() }

// send passes f to the plugin and returns the id the request head names.
func (ch *rawChannel) send(f *os.File) (uint32, error) {
	id := ch.next.Add(1)
	if id == 0 {
		id = ch.next.Add(1)
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], id)
	if _, _, err := ch.c.WriteMsgUnix(b[:], syscall.UnixRights(int(f.Fd())), nil); err != nil {
		return 0, fmt.Errorf("send connection %d: %w", id, err)
	}
	return id, nil
}

// serveRaw serves an upgrade request with its connection offered to the
// handler. A handler that hijacks frees the slot at once: the connection
// then lives on its own (counted against max_websockets, cut at a drain's
// end by the gateway), and so does the request's stream, which ends when
// the handler returns.
func (w *worker) serveRaw(i int, rh rawHijacker, r *http.Request) error {
	conn, f, err := proc.Socketpair(syscall.SOCK_STREAM, "gw-raw-conn")
	if err != nil {
		return fmt.Errorf("%w: %w: raw connection: %w", pool.ErrWorkerGone, pool.ErrNotDelivered, err)
	}
	id, err := w.raw.send(f)
	f.Close() // the plugin has its copy
	if err != nil {
		conn.Close()
		return fmt.Errorf("%w: %w: raw connection: %w", pool.ErrWorkerGone, pool.ErrNotDelivered, err)
	}
	rh.OfferRaw(conn) // the gateway closes it unless the handler takes it
	ctx, cancel := context.WithCancelCause(r.Context())
	w.setAbort(i, cancel)
	defer w.setAbort(i, nil)
	head := newHead(r, false)
	head.RawConnection = id
	stream, err := w.handler.ServeBodyless(ctx, head)
	if err == nil {
		err = copyResponse(rh, stream, r.Method, rh)
	}
	if errors.Is(err, errHijacked) {
		// The handler may serve the connection inside ServeHTTP (as
		// coder/websocket's Accept does) for as long as it lasts; its
		// context lives until then, or until the client's request ends.
		go func() {
			defer cancel(nil)
			for {
				if _, err := stream.Recv(); err != nil {
					return
				}
			}
		}()
		return nil
	}
	cancel(nil)
	return classify(ctx, r, err)
}
