package fastcgi

import (
	"github.com/gwhq/gw/gateway/connserve"

	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gwhq/gw/gateway/cgireq"
	"github.com/gwhq/gw/internal/fcgi"
)

// Causes a request context can be cancelled with, and the errors its body
// reads then return.
var (
	// ErrRequestAborted: the web server sent ABORT_REQUEST.
	ErrRequestAborted = errors.New("fastcgi: request aborted by the web server")
	// ErrConnClosed: the web server closed the connection mid-request
	// (nginx does when its client goes away).
	ErrConnClosed = errors.New("fastcgi: web server closed the connection")
)

// errDone ends a connection's read loop without a log line.
var errDone = errors.New("fastcgi: connection done")

// conn is one web-server connection. Its read loop (serveConn) owns the
// reading side; each request's handler runs in its own goroutine so that
// STDIN can stream into it while ABORT_REQUEST, GET_VALUES or a closed
// connection are still noticed.
type conn struct {
	srv   *Server
	rwc   net.Conn
	log   *slog.Logger
	state *connserve.State

	wmu sync.Mutex // one record per Write: handler and read loop both write

	mu      sync.Mutex
	req     *request // in flight, nil when idle
	closing bool     // close once req's STDIN is drained

	handlers sync.WaitGroup
}

// request is the state of the one request in flight. The read loop sets
// up everything before the handler starts; after that, shared fields are
// guarded by conn.mu.
type request struct {
	id       uint16
	keep     bool
	ctx      context.Context
	cancel   context.CancelCauseFunc
	params   []byte
	vars     cgireq.Vars // set when the PARAMS stream ends
	started  bool        // handler launched (read loop only)
	pw       *io.PipeWriter
	pr       *io.PipeReader
	stdinEnd bool // the empty STDIN record arrived
	finished bool // the handler returned
}

// Write sends one record; see conn.wmu.
func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.rwc.Write(p)
}

func (s *Server) serveConn(c *conn) {
	c.srv = s
	c.log = s.log().With("remote", remoteAddr(c.rwc))
	rd := fcgi.NewReader(bufio.NewReaderSize(c.rwc, 16<<10))
	err := c.readLoop(rd)
	if err != ErrConnClosed {
		c.rwc.Close()
	} // else the peer may only have half-closed: let the handler answer
	defer c.rwc.Close()
	c.mu.Lock()
	req := c.req
	unfinished := req != nil && !req.finished
	c.mu.Unlock()
	if unfinished {
		if err == nil {
			err = ErrConnClosed
		}
		req.cancel(err)
		if req.pw != nil {
			req.pw.CloseWithError(err)
		}
	}
	c.handlers.Wait()
}

func (c *conn) readLoop(rd *fcgi.Reader) error {
	for {
		if c.armDeadline() {
			return nil
		}
		h, content, err := rd.Next()
		if err != nil {
			return c.readFailed(err)
		}
		if err := c.record(h, content); err != nil {
			if err == errDone {
				return nil
			}
			c.log.Warn("fastcgi: closing the connection", "err", err)
			return err
		}
	}
}

// armDeadline sets the read deadline for the next record: IdleTimeout
// unless a handler runs. It reports true when the loop should end
// because the connection was only waiting to close.
func (c *conn) armDeadline() (done bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		// The finishing handler set a drain deadline; keep it.
		return c.req == nil || c.req.stdinEnd
	}
	if c.req == nil || !c.req.started {
		c.rwc.SetReadDeadline(time.Now().Add(c.srv.idleTimeout()))
	} else {
		c.rwc.SetReadDeadline(time.Time{})
	}
	return false
}

// readFailed decides how loudly a read error is reported: EOF between
// requests is how web servers close, so it is silent.
func (c *conn) readFailed(err error) error {
	c.mu.Lock()
	req := c.req
	quiet := c.closing || (req != nil && req.finished)
	c.mu.Unlock()
	switch {
	case quiet || c.state.Closed():
		return nil
	case req == nil && errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Debug("fastcgi: idle connection timed out")
		return nil
	case req == nil:
		// Between requests, or cut inside the rest of a body a
		// finished handler left unread: nginx drops a kept-alive
		// connection whose request body it could not finish sending.
		c.log.Debug("fastcgi: connection closed between requests", "err", err)
		return nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		c.log.Warn("fastcgi: web server closed the connection mid-request", "request", req.id)
		return ErrConnClosed
	}
	c.log.Warn("fastcgi: reading a record failed, closing", "err", err)
	return err
}

// record dispatches one record (spec §3.3: records for request IDs that
// are not active are ignored).
func (c *conn) record(h fcgi.Header, content []byte) error {
	if h.ID == 0 {
		return c.management(h, content)
	}
	switch h.Type {
	case fcgi.TypeBeginRequest:
		return c.begin(h, content)
	case fcgi.TypeAbortRequest:
		return c.abort(h.ID)
	case fcgi.TypeParams:
		return c.params(h.ID, content)
	case fcgi.TypeStdin:
		return c.stdin(h.ID, content)
	case fcgi.TypeData:
		return nil // the FILTER role's second stream; RESPONDER has none
	case fcgi.TypeEndRequest, fcgi.TypeStdout, fcgi.TypeStderr, fcgi.TypeGetValuesResult, fcgi.TypeUnknownType:
		if c.active(h.ID) != nil {
			return fmt.Errorf("%s record from the web server for request %d", h.Type, h.ID)
		}
		return nil
	}
	_, err := c.Write(fcgi.AppendUnknownType(nil, h.Type))
	return err
}

// management answers GET_VALUES, and UNKNOWN_TYPE to anything else with
// request ID 0 (spec §4).
func (c *conn) management(h fcgi.Header, content []byte) error {
	if h.Type != fcgi.TypeGetValues {
		_, err := c.Write(fcgi.AppendUnknownType(nil, h.Type))
		return err
	}
	names, err := fcgi.ParseGetValues(content)
	if err != nil {
		return fmt.Errorf("GET_VALUES: %w", err)
	}
	limit := strconv.Itoa(c.srv.maxConns())
	var pairs []fcgi.Pair
	for _, n := range names {
		switch n {
		case fcgi.MaxConns, fcgi.MaxReqs:
			pairs = append(pairs, fcgi.Pair{Name: n, Value: limit})
		case fcgi.MpxsConns:
			pairs = append(pairs, fcgi.Pair{Name: n, Value: "0"}) // one request per connection
		}
	}
	b, err := fcgi.AppendGetValuesResult(nil, pairs)
	if err != nil {
		return err
	}
	_, err = c.Write(b)
	return err
}

// active returns the request in flight if it has this id.
func (c *conn) active(id uint16) *request {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.req != nil && c.req.id == id {
		return c.req
	}
	return nil
}

func (c *conn) begin(h fcgi.Header, content []byte) error {
	br, err := fcgi.ParseBeginRequest(content)
	if err != nil {
		return err
	}
	c.mu.Lock()
	cur, closing := c.req, c.closing
	c.mu.Unlock()
	switch {
	case closing:
		return errDone
	case cur != nil && cur.id == h.ID:
		return fmt.Errorf("BEGIN_REQUEST for request %d, already in flight", h.ID)
	case cur != nil:
		// nginx never multiplexes; gw does not either (spec §5.5).
		_, err := c.Write(fcgi.AppendEndRequest(nil, h.ID, 0, fcgi.StatusCantMultiplex))
		return err
	case br.Role != fcgi.RoleResponder:
		c.log.Warn("fastcgi: refused role", "role", br.Role, "request", h.ID)
		if _, err := c.Write(fcgi.AppendEndRequest(nil, h.ID, 0, fcgi.StatusUnknownRole)); err != nil || !br.KeepConn() {
			return errDone
		}
		return nil
	case !c.state.Activate():
		return errDone // Shutdown closed the connection
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	c.mu.Lock()
	c.req = &request{id: h.ID, keep: br.KeepConn(), ctx: ctx, cancel: cancel}
	c.mu.Unlock()
	return nil
}

func (c *conn) params(id uint16, content []byte) error {
	req := c.active(id)
	switch {
	case req == nil:
		return nil
	case req.vars != nil:
		return fmt.Errorf("PARAMS for request %d after its empty PARAMS record", id)
	case len(content) > 0:
		if len(req.params)+len(content) > c.srv.maxParams() {
			return fmt.Errorf("PARAMS for request %d over MaxParams (%d bytes)", id, c.srv.maxParams())
		}
		req.params = append(req.params, content...)
		return nil
	}
	// The stream is complete; a pair may have straddled records, which
	// the spec allows (only php-cgi chokes on it, trap 5).
	vars := cgireq.Vars{}
	if err := fcgi.ParseParams(req.params, func(n, v []byte) error {
		vars.Add(string(n), string(v))
		return nil
	}); err != nil {
		return fmt.Errorf("PARAMS for request %d: %w", id, err)
	}
	req.vars, req.params = vars, nil
	return nil
}

func (c *conn) stdin(id uint16, content []byte) error {
	req := c.active(id)
	switch {
	case req == nil:
		return nil // e.g. the rest of a body the handler did not read
	case req.vars == nil:
		return fmt.Errorf("STDIN for request %d before its empty PARAMS record", id)
	}
	c.mu.Lock()
	ended := req.stdinEnd
	c.mu.Unlock()
	if ended {
		return fmt.Errorf("STDIN for request %d after its empty STDIN record", id)
	}
	if !req.started {
		// The first STDIN record tells whether there is a body at all,
		// so a GET gets http.NoBody rather than a pipe (net/http/fcgi
		// waits for it too).
		c.start(req, len(content) > 0)
	}
	if len(content) > 0 {
		// io.Pipe hands the bytes straight to the handler's Read: the
		// body streams with one record in flight, never buffered whole.
		// An error means the handler is done with the body (or aborted);
		// the rest is discarded.
		req.pw.Write(content)
		return nil
	}
	c.mu.Lock()
	req.stdinEnd = true
	closing := c.closing
	c.mu.Unlock()
	if req.pw != nil {
		req.pw.Close()
	}
	if closing {
		return errDone
	}
	return nil
}

// abort handles ABORT_REQUEST: the handler's context is cancelled and its
// body reads fail; it still ends with END_REQUEST (spec §5.4). nginx never
// sends it; it closes the connection instead.
func (c *conn) abort(id uint16) error {
	req := c.active(id)
	if req == nil {
		return nil
	}
	req.cancel(ErrRequestAborted)
	if req.pw != nil {
		req.pw.CloseWithError(ErrRequestAborted)
	}
	if req.started {
		return nil
	}
	// No handler yet: answer for it.
	c.mu.Lock()
	c.req = nil
	c.mu.Unlock()
	c.state.SetIdle()
	if _, err := c.Write(fcgi.AppendEndRequest(nil, id, 0, fcgi.StatusRequestComplete)); err != nil || !req.keep {
		return errDone
	}
	return nil
}

func remoteAddr(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}
