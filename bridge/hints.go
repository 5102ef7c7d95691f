package bridge

import (
	"context"
	"maps"
	"net/http"
	"net/textproto"
	"sync"

	"github.com/gwhq/gw/proto/bridgepb"
)

// Signals on a slot beside the request and its answer (bridge.proto):
// CLIENT_GONE tells a runner that said client_gone in READY that the
// client of its request left; EARLY_HINTS asks for a 103 before the head.
const (
	ClientGone = bridgepb.FrameType_CLIENT_GONE
	EarlyHints = bridgepb.FrameType_EARLY_HINTS
)

var clientGoneFrame = AppendHeader(nil, ClientGone, 0)

// goneNotice sends CLIENT_GONE at most once for one exchange: when the
// request's context ends (the front end saw the connection close) or a
// write to the client failed. It writes only once the request stream's
// REQUEST_END is out, so the frame never lands inside a request, and
// never after the exchange is over.
type goneNotice struct {
	s       *Slot
	ready   <-chan struct{} // closed once REQUEST_END is written
	written chan struct{}   // ready, when the exchange writes REQUEST_END itself
	isSent  bool            // written is closed
	ended   chan struct{}   // closed by end
	once    sync.Once
	wg      sync.WaitGroup
	stop    func() bool
}

// watchGone starts the watch. ready is the body pump's end, or nil when the
// exchange writes the whole request itself: then the watch starts before
// that write, as a slot with descriptors waits for the answer inside its
// send (internal/sendwait), and sent says when the request is out.
func (s *Slot) watchGone(ctx context.Context, ready <-chan struct{}) *goneNotice {
	g := &goneNotice{s: s, ready: ready, ended: make(chan struct{})}
	if ready == nil {
		g.written = make(chan struct{})
		g.ready = g.written
	}
	g.stop = context.AfterFunc(ctx, g.fire)
	return g
}

// sent says REQUEST_END is out; called on the exchange's goroutine only
// (directly, or from inside its send's wait).
func (g *goneNotice) sent() {
	if !g.isSent && g.written != nil {
		g.isSent = true
		close(g.written)
	}
}

// fire sends the frame on its own goroutine: a write error is found on
// the goroutine that drains the runner, which must keep draining.
func (g *goneNotice) fire() {
	g.once.Do(func() {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			select {
			case <-g.ready:
				// An error here is the runner gone, which the
				// exchange reports itself.
				g.s.w.Write(clientGoneFrame)
			case <-g.ended:
			}
		}()
	})
}

// end rules out a later frame and waits for one under way: the slot's next
// request must not get it.
func (g *goneNotice) end() {
	g.stop()
	g.once.Do(func() {})
	close(g.ended)
	g.wg.Wait()
}

// writeHints sends the app's EARLY_HINTS as a 103 (RFC 8297) carrying
// those fields alone: the header map is set aside meanwhile, as the final
// head's fields must not go out early nor the hints stay for it. An
// HTTP/1.0 client gets no interim answer (RFC 9110 §15.2); the uwsgi and
// FastCGI front ends drop it (gateway/cgireq).
func writeHints(w http.ResponseWriter, r *http.Request, b []byte) error {
	h := w.Header()
	saved := maps.Clone(h)
	clear(h)
	if _, err := DecodeResponseHead(b, func(name, value []byte) {
		k := textproto.CanonicalMIMEHeaderKey(string(name))
		if hopHeaders[k] || k == "Content-Length" || k == "Transfer-Encoding" {
			return
		}
		h[k] = append(h[k], string(value))
	}); err != nil {
		return err
	}
	if len(h) > 0 && r.ProtoAtLeast(1, 1) {
		w.WriteHeader(http.StatusEarlyHints)
	}
	clear(h)
	maps.Copy(h, saved)
	return nil
}
