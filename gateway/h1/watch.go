package h1

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// watchAfter is how long a handler runs, its body read, before the
// connection is watched for the client leaving.
//
// net/http watches every request: a background goroutine reads from the
// connection as soon as the body is done, which costs a goroutine wake-up,
// a read that returns EAGAIN and a deadline to abort it, per request.
// Most requests are over long before a client could be told apart from
// one that left, and what gw needs the signal for (dropping a request
// queued for a runner; a 499 in the access log) only matters to slow
// ones. So a per-connection timer starts the same background read only
// for a handler still running after watchAfter: a fast request pays a
// timer reset and stop (no syscall, no goroutine), a slow one what
// net/http pays, once.
//
// 1 ms was too short: under load most requests wait that long in the
// runner queue (hello at 32 connections on 2 runners: ~1-3 ms), so the
// watch armed for nearly every one and h1 made as many read(2) calls per
// request as net/http (perf stat: 4.7 both). A client that left is
// still noticed within 50 ms, long before a queue wait ends.
const watchAfter = 50 * time.Millisecond

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
