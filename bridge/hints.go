package bridge

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"sync"
	"time"

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

// goneAfter: the context watch is armed only for an exchange still
// running this long. context.AfterFunc costs 4 allocations and the
// parent's lock twice (4.6% of gw's CPU on an ASGI hello), while a hello
// is over in well under a millisecond; and h1, the usual front end, itself
// notices a client leaving only after connserve.WatchAfter (50 ms, the
// same figure: bridge may not import gateway). A context already done when
// the watch arms fires at once, so nothing is missed, only told later.
const goneAfter = 50 * time.Millisecond

// goneNotice sends CLIENT_GONE at most once per exchange: when the
// request's context ends (the front end saw the connection close) or a
// write to the client failed. The frame goes only after the request's
// REQUEST_END, so it never lands inside a request, and never after the
// exchange is over. One per slot, reused: a request costs a timer's reset
// and stop; the context watch starts from the timer, for a request still
// running after goneAfter.
type goneNotice struct {
	w              io.Writer
	fireFn, sentFn func() // fire and sent, bound once
	t              *time.Timer
	armed          chan struct{} // arm's end, when the timer fired
	ctx            context.Context

	mu      sync.Mutex
	reqSent bool            // REQUEST_END is out (or the pump will write it)
	fired   bool            // the client left
	ended   bool            // the exchange is over
	pump    <-chan struct{} // the body pump's end, nil without a pump
	wg      sync.WaitGroup  // a write under way
	stop    func() bool
}

// watchGone starts the watch of one exchange. pump is the body pump's end,
// or nil when the exchange writes the whole request itself: then the
// watch starts before that write (a slot with descriptors waits for the
// answer inside its send, internal/sendwait) and sent says when it is out.
func (s *Slot) watchGone(ctx context.Context, pump <-chan struct{}) *goneNotice {
	g := &s.gone
	// The previous exchange's end waited for its timer and writes: no
	// goroutine touches g now.
	g.reqSent, g.fired, g.ended, g.pump = pump != nil, false, false, pump
	g.ctx, g.stop = ctx, nil
	if g.t == nil {
		g.w, g.fireFn, g.sentFn = s.w, g.fire, g.sent
		g.armed = make(chan struct{}, 1)
		g.t = time.AfterFunc(goneAfter, g.arm)
	} else {
		g.t.Reset(goneAfter)
	}
	return g
}

// arm runs on the timer's goroutine: the exchange is still running, so
// its context is watched from now on.
func (g *goneNotice) arm() {
	g.mu.Lock()
	if !g.ended {
		g.stop = context.AfterFunc(g.ctx, g.fireFn)
	}
	g.mu.Unlock()
	g.armed <- struct{}{}
}

// sent says REQUEST_END is out; on the exchange's goroutine (directly, or
// from inside its send's wait).
func (g *goneNotice) sent() {
	g.mu.Lock()
	if !g.reqSent {
		g.reqSent = true
		if g.fired && !g.ended {
			g.write()
		}
	}
	g.mu.Unlock()
}

func (g *goneNotice) fire() {
	g.mu.Lock()
	if !g.fired && !g.ended {
		g.fired = true
		if g.reqSent {
			g.write()
		}
	}
	g.mu.Unlock()
}

// write sends the frame on its own goroutine, after the pump's end if
// there is a pump: a write error is found on the goroutine that drains
// the runner, which must keep draining. Called with mu held.
func (g *goneNotice) write() {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if g.pump != nil {
			<-g.pump
		}
		// An error here is the runner gone, which the exchange reports.
		g.w.Write(clientGoneFrame)
	}()
}

// end rules out a later frame and waits for one under way: the slot's next
// request must not get it. The pump, if any, has ended.
func (g *goneNotice) end() {
	if g.t.Stop() {
		g.ctx = nil // not kept past the request
		return      // never armed: nothing fired, nothing written
	}
	<-g.armed
	g.ctx = nil
	if g.stop != nil {
		g.stop()
	}
	g.mu.Lock()
	g.ended = true
	g.mu.Unlock()
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
