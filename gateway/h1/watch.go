package h1

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gwhq/gw/gateway/connserve"
)

// watchAfter: a handler still running this long after its body was read
// gets the connection watched for the client leaving (connserve.WatchAfter
// says why not every request).
const watchAfter = connserve.WatchAfter

// ErrClientGone is the cause (context.Cause) of a request context
// cancelled because the client closed its connection (or half-closed it:
// net/http cannot tell either) while the handler ran.
var ErrClientGone = errors.New("h1: client closed the connection")

// aLongTimeAgo aborts a pending read at once.
var aLongTimeAgo = time.Unix(1, 0)

type watcher struct {
	c      *conn
	t      *time.Timer
	done   chan struct{}
	cancel context.CancelCauseFunc
	armed  bool

	mu      sync.Mutex
	reading bool
	aborted bool
}

// arm starts the timer, unless the next request's bytes are here already
// (then there is nothing to watch: net/http's read would find them too).
func (w *watcher) arm() {
	r := &w.c.r
	if w.armed || r.buffered() > 0 || w.c.hijacked {
		return
	}
	r.r, r.w = 0, 0 // the watch reads its byte to the start of the buffer
	if w.t == nil {
		w.done = make(chan struct{}, 1)
		w.t = time.AfterFunc(watchAfter, w.read)
	} else {
		w.t.Reset(watchAfter)
	}
	w.armed = true
}

// stop ends the watch: usually just the timer; if it fired, the read is
// aborted and waited for.
func (w *watcher) stop() {
	if !w.armed {
		return
	}
	w.armed = false
	if w.t.Stop() {
		return
	}
	w.mu.Lock()
	w.aborted = true
	if w.reading {
		w.c.rwc.SetReadDeadline(aLongTimeAgo)
	}
	w.mu.Unlock()
	<-w.done
	w.reading, w.aborted = false, false
	w.c.rdlSet = false // whatever it is, it is not what idleWait last set
}

// read runs on the timer's goroutine: one byte, which is either the next
// request's first (kept for it) or the end of the connection.
func (w *watcher) read() {
	defer func() { w.done <- struct{}{} }()
	c := w.c
	w.mu.Lock()
	if w.aborted {
		w.mu.Unlock()
		return
	}
	w.reading = true
	c.rwc.SetReadDeadline(time.Time{}) // the idle deadline is no handler's limit
	w.mu.Unlock()
	n, err := c.rwc.Read(c.r.buf[:1])
	w.mu.Lock()
	aborted := w.aborted
	w.mu.Unlock()
	switch {
	case n > 0:
		c.r.w = n
	case aborted || isTimeout(err):
		// stop's own deadline, or one the handler set: no news.
	default:
		c.r.err = err
		w.cancel(ErrClientGone)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
