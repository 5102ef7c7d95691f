package runners

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/gwhq/gw/bridge"
	"github.com/gwhq/gw/internal/cgi"
	"github.com/gwhq/gw/internal/reqid"
	"github.com/gwhq/gw/runners/pool"
	"github.com/gwhq/gw/runners/proc"
)

// webSockets is a bridge worker's WebSocket side (docs/design/websocket.md):
// one session channel per runner carries all its sessions, so a session
// holds no slot once the app accepted it.
type webSockets struct {
	sessionConn net.Conn    // gw's end of the session channel; nil: none
	wsReady     bool        // READY said the runner serves sessions
	mux         *bridge.Mux // nil unless both
	rawReady    bool        // READY said the runner takes raw connections
	raw         *rawChannel // nil unless sessionConn and rawReady
	rawSocket   bool        // READY said it takes client TCP sockets too (handover)
	wsSocket    bool        // READY said it frames WebSockets on client TCP sockets itself
}

// sessionChannel adds the session channel to a runner's start: a
// socketpair, the runner's end as the next inherited fd (--session-fd).
func (l *bridgeLauncher) sessionChannel(spec *proc.Spec, files *[]*os.File) (net.Conn, error) {
	if !l.sessions {
		return nil, nil
	}
	c, f, err := socketpair()
	if err != nil {
		return nil, err
	}
	fd := 3 + len(*files)      // proc.Files.Extra start at fd 3
	*files = append(*files, f) // the transport's Close closes c
	spec.Args = append(spec.Args, "--session-fd", strconv.Itoa(fd))
	return c, nil
}

// startSessions serves the session channel once READY said the runner
// speaks it; a runner that does not (a WSGI app) gets plain HTTP upgrade
// requests, as before.
func (w *webSockets) startSessions() {
	if w.sessionConn == nil {
		return
	}
	if w.rawReady {
		w.raw = newRawChannel(w.sessionConn, w.rawSocket) // rawconn.go
		return
	}
	if !w.wsReady {
		w.sessionConn.Close()
		return
	}
	w.mux = bridge.NewMux(w.sessionConn)
	// Run returns when the channel closes: the runner exited or Close.
	go w.mux.Run()
}

func (w *webSockets) closeSessions() {
	if w.sessionConn != nil {
		w.sessionConn.Close()
	}
}

// upgrade offers a WebSocket handshake to the app on slot i: the slot is
// busy until the app accepted or refused; then the session lives on the
// session channel and the slot is free.
func (w *bridgeWorker) upgrade(i int, u bridge.Upgrader, r *http.Request) error {
	sess, err := w.t.mux.Open()
	if err != nil {
		return fmt.Errorf("%w: %w: %w", pool.ErrWorkerGone, pool.ErrNotDelivered, err)
	}
	w.t.busy.Add(1)
	defer w.t.busy.Add(-1)
	h := bridge.BeginHead(nil)
	cgi.Build(&h, r, w.mount)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	frame := bridge.ConnectFrame(h.Finish(scheme, r.Header.Get(reqid.Header)), sess.ID)
	// The client's socket itself goes when both sides can (docs/design/
	// websocket.md "Handover for ASGI"): its RAW_CONNECT first, under the
	// session's id, then the WS_CONNECT naming it.
	if su, ok := u.(bridge.SocketUpgrader); ok && w.t.wsSocket {
		if tc := su.ClientSocket(); tc != nil {
			if err := w.t.mux.SendSocket(sess, tc); err != nil {
				sess.Forget()
				return fmt.Errorf("%w: %w: %v", pool.ErrWorkerGone, pool.ErrNotDelivered, err)
			}
			maxMsg, ping := su.WSLimits()
			frame = bridge.HandedConnect(frame, sess.ID, maxMsg, ping)
		}
	}
	_, accepted, err := w.t.slots[i].Upgrade(u, frame, sess)
	if !accepted {
		sess.Forget()
	}
	if accepted && err != nil {
		// The client's side of the handshake failed: the app hears it left.
		sess.Close(bridge.CloseAbnormal, "handshake failed")
		return nil
	}
	return poolError(err)
}

// poolError maps an exchange's error to the pool's: the runner gone (not
// delivered: another runner may take the request), the app's error, the
// client's body. Anything else is a protocol violation: the slot's stream
// cannot be trusted. The bridge's error stays in the chain, cause and all,
// for the log; the gateway branches on the pool's sentinels alone.
func poolError(err error) error {
	var (
		ae *bridge.AppError
		be *bridge.BodyError
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bridge.ErrNotDelivered):
		return fmt.Errorf("%w: %w: %w", pool.ErrWorkerGone, pool.ErrNotDelivered, err)
	case errors.Is(err, bridge.ErrRunnerGone):
		return fmt.Errorf("%w: %w", pool.ErrWorkerGone, err)
	case errors.As(err, &ae):
		return &pool.AppError{Msg: ae.Msg}
	case errors.As(err, &be):
		return &pool.BodyError{Err: be.Err}
	}
	return fmt.Errorf("%w: %w", pool.ErrWorkerGone, err)
}
