package runners

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gwhq/gw/bridge"
	"github.com/gwhq/gw/internal/cgi"
	"github.com/gwhq/gw/internal/reqid"
	"github.com/gwhq/gw/proto/bridgepb"
	"github.com/gwhq/gw/runners/pool"
	"github.com/gwhq/gw/runners/proc"
)

// bridgeLauncher starts runners that speak the bridge protocol (the Python,
// Ruby and Perl shims).
type bridgeLauncher struct {
	app          string
	spec         proc.Spec
	threads      int
	mount        cgi.Mount
	readyTimeout time.Duration
	sessions     bool // give the runner a WebSocket session channel (websocket.go)
	pingEvery    time.Duration
	pingTimeout  time.Duration
	log          *slog.Logger
}

var _ pool.Launcher = (*bridgeLauncher)(nil)
var _ pool.Worker = (*bridgeWorker)(nil)

// socketpair returns our end as a net.Conn and the runner's end as a file.
func socketpair() (net.Conn, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "gw-bridge")
	defer ours.Close() // FileConn dups it
	c, err := net.FileConn(ours)
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return c, os.NewFile(uintptr(fds[1]), "gw-bridge-runner"), nil
}

// slotPipes are one slot's two pipes: requests gw→runner, responses
// runner→gw. Pipes, not a socketpair: a pipe has one wait queue per
// direction and pipe_read wakes a writer only when the pipe was full, where
// reading a unix socket wakes the peer sleeping in recv on the same socket
// (unix_write_space) and the peer's read gives gw an EPOLLOUT edge, both for
// nothing: on a PVM guest, where each wake-up costs hypercalls, that was 8%
// of gw's CPU (issue 14).
type slotPipes struct {
	req, resp *os.File    // gw's ends: write requests, read responses
	child     [2]*os.File // the runner's: read requests, write responses
}

// reqPipeSize is the request pipe's capacity: a whole small request.
const reqPipeSize = 128 << 10

// newSlotPipes makes a slot's pipes. gw's ends are non-blocking, on Go's
// poller (so Close wakes a blocked Read or Write: Abort); the runner's ends
// are separate open files and stay blocking, as its shim wants them.
func newSlotPipes() (sp slotPipes, err error) {
	var req, resp [2]int
	if err := syscall.Pipe2(req[:], syscall.O_CLOEXEC); err != nil {
		return sp, fmt.Errorf("pipe: %w", err)
	}
	if err := syscall.Pipe2(resp[:], syscall.O_CLOEXEC); err != nil {
		syscall.Close(req[0])
		syscall.Close(req[1])
		return sp, fmt.Errorf("pipe: %w", err)
	}
	// A request with a body of up to 64 KiB goes to the runner in one
	// write (head, body, end: a little over 64 KiB), which the default
	// 64 KiB pipe cannot take at once: the rest would wait for the runner
	// to read, a wake-up each way (echo at 32 connections lost ~10%).
	// Best effort: past the user's pipe-user-pages-soft Linux refuses, and
	// the default stays.
	unix.FcntlInt(uintptr(req[1]), unix.F_SETPIPE_SZ, reqPipeSize)
	// os.NewFile puts a non-blocking fd on the poller.
	syscall.SetNonblock(req[1], true)
	syscall.SetNonblock(resp[0], true)
	sp.req = os.NewFile(uintptr(req[1]), "gw-slot-req")
	sp.resp = os.NewFile(uintptr(resp[0]), "gw-slot-resp")
	sp.child = [2]*os.File{os.NewFile(uintptr(req[0]), "gw-slot-req-runner"), os.NewFile(uintptr(resp[1]), "gw-slot-resp-runner")}
	return sp, nil
}

// Launch starts one runner and waits for its READY. The runner gets the
// control socketpair as fd 3 and each slot's pipe pair as the next two fds:
// --slot-fds 4:5,6:7 (its read fd, then its write fd).
func (l *bridgeLauncher) Launch(ctx context.Context, id int) (pool.Worker, error) {
	fail := func(stage proc.Stage, err error, detail string) error {
		return &proc.SpawnError{App: l.app, Worker: id, Stage: stage, Err: err, Detail: detail}
	}
	var ours []io.Closer
	var files []*os.File
	closeAll := func() {
		for _, c := range ours {
			c.Close()
		}
	}
	defer func() {
		for _, f := range files {
			f.Close() // the child has its copies
		}
	}()
	control, cf, err := socketpair()
	if err != nil {
		return nil, fail(proc.StageExec, err, "")
	}
	ours, files = append(ours, control), append(files, cf)
	pipes := make([]slotPipes, l.threads)
	fds := make([]string, l.threads)
	for i := range pipes {
		sp, err := newSlotPipes()
		if err != nil {
			closeAll()
			return nil, fail(proc.StageExec, err, "")
		}
		pipes[i] = sp
		ours, files = append(ours, sp.req, sp.resp), append(files, sp.child[0], sp.child[1])
		fds[i] = fmt.Sprintf("%d:%d", 4+2*i, 5+2*i)
	}
	spec := l.spec
	spec.Args = append(append([]string(nil), spec.Args...), "--control-fd", "3", "--slot-fds", strings.Join(fds, ","))
	sessions, err := l.sessionChannel(&spec, &files, &ours)
	if err != nil {
		closeAll()
		return nil, fail(proc.StageExec, err, "")
	}
	log := l.log.With("app", l.app, "worker", id)
	p, err := proc.Start(spec, proc.Files{Extra: files}, log)
	if err != nil {
		closeAll()
		return nil, fail(proc.StageExec, fmt.Errorf("start %s: %w", spec.Path, err), "")
	}
	w := &bridgeWorker{proc: p, control: control, mount: l.mount, log: log}
	w.sessionConn = sessions
	for _, sp := range pipes {
		w.slots = append(w.slots, bridge.NewSlot(sp.resp, sp.req))
	}
	if err := w.handshake(ctx, l.readyTimeout); err != nil {
		p.Kill()
		<-p.Done()
		w.closeConns()
		var se *proc.SpawnError
		if errors.As(err, &se) {
			se.App, se.Worker = l.app, id
			if se.Detail == "" {
				se.Detail = p.Tail()
			}
			return nil, se
		}
		return nil, fail(proc.StageHandshake, err, p.Tail())
	}
	if n := w.served; n > 0 && n < len(w.slots) {
		// The runner serves fewer slots than it was given (a WSGI app
		// found by --interface auto gets one thread): it closed the
		// rest, so do we.
		for _, s := range w.slots[n:] {
			s.Close()
		}
		w.slots = w.slots[:n]
	}
	w.startSessions()
	// The health loop ends when the process exits.
	go w.health(l.pingEvery, l.pingTimeout)
	return w, nil
}

// bridgeWorker is one running bridge runner.
type bridgeWorker struct {
	proc    *proc.Process
	control net.Conn
	slots   []*bridge.Slot
	mount   cgi.Mount
	log     *slog.Logger
	ctrl    *bridge.Reader
	closed  sync.Once
	busy    atomic.Int32 // slots serving a request now
	served  int          // READY's slot count: the first served slots are used
	webSockets
}

func (w *bridgeWorker) handshake(ctx context.Context, timeout time.Duration) error {
	w.ctrl = bridge.NewReader(bufio.NewReader(w.control))
	type msg struct {
		t   bridge.Type
		b   []byte
		err error
	}
	got := make(chan msg, 1)
	// Ends with the first frame or when the control socket is closed.
	go func() {
		t, n, err := w.ctrl.Header()
		if err != nil {
			got <- msg{err: err}
			return
		}
		b, err := w.ctrl.Payload(n)
		got <- msg{t, append([]byte(nil), b...), err}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var m msg
	select {
	case m = <-got:
	case <-w.proc.Done():
		// The reader sees EOF right behind the exit; prefer its
		// LOAD_ERROR if the runner managed to send one.
		select {
		case m = <-got:
		case <-time.After(time.Second):
			m.err = io.EOF // exited without closing: same as EOF
		}
	case <-timer.C:
		return &proc.SpawnError{Stage: proc.StageReadyTimeout, Err: fmt.Errorf("no ready message within %v", timeout)}
	case <-ctx.Done():
		return ctx.Err()
	}
	if m.err != nil {
		if !errors.Is(m.err, io.EOF) && !errors.Is(m.err, io.ErrUnexpectedEOF) {
			return &proc.SpawnError{Stage: proc.StageHandshake, Err: fmt.Errorf("not the bridge protocol: %w", m.err)}
		}
		<-w.proc.Done()
		return &proc.SpawnError{Stage: proc.StageLoad, Err: fmt.Errorf("runner exited before ready (%s)", w.proc.ExitString())}
	}
	switch m.t {
	case bridge.Ready:
		var r bridgepb.Ready
		if err := proto.Unmarshal(m.b, &r); err != nil {
			return err
		}
		if r.Protocol != bridge.Protocol {
			return &proc.SpawnError{Stage: proc.StageHandshake, Err: fmt.Errorf("runner speaks bridge protocol %d, gw speaks %d", r.Protocol, bridge.Protocol)}
		}
		w.served, w.wsReady = int(r.Slots), r.Websocket
		w.log.Info("runner ready", "pid", w.proc.PID(), "runtime", r.Runtime, "slots", r.Slots)
		return nil
	case bridge.LoadError:
		var le bridgepb.LoadError
		if err := proto.Unmarshal(m.b, &le); err != nil {
			return err
		}
		stage := proc.StageLoad
		return &proc.SpawnError{Stage: stage, Err: errors.New(le.Message), Detail: strings.TrimRight(le.Detail, "\n")}
	default:
		return &proc.SpawnError{Stage: proc.StageHandshake, Err: fmt.Errorf("not the bridge protocol: first frame type %d", m.t)}
	}
}

// health pings the runner and kills it when it stops answering: a wedged
// interpreter must not hold slots forever.
func (w *bridgeWorker) health(every, timeout time.Duration) {
	pongs := make(chan uint64, 1)
	// The reader ends when the control socket closes (runner exit).
	go func() {
		for {
			var pong bridgepb.Pong
			if err := w.ctrl.Message(bridge.Pong, &pong); err != nil {
				close(pongs)
				return
			}
			select {
			case pongs <- pong.Seq:
			default:
			}
		}
	}()
	tick := time.NewTicker(every)
	defer tick.Stop()
	defer w.closeConns()
	var seq uint64
	for {
		select {
		case <-w.proc.Done():
			return
		case <-tick.C:
		}
		if int(w.busy.Load()) == len(w.slots) {
			// Every slot is busy: a single-threaded runner (Perl) cannot
			// answer now, and a stuck request is the deadline's to end.
			continue
		}
		seq++
		if err := bridge.WriteMessage(w.control, bridge.Ping, &bridgepb.Ping{Seq: seq}); err != nil {
			continue // exit is noticed through Done
		}
		select {
		case _, ok := <-pongs:
			if !ok {
				<-w.proc.Done()
				return
			}
		case <-time.After(timeout):
			w.log.Error("runner failed its health check, killing it", "pid", w.proc.PID(), "timeout", timeout)
			w.proc.Kill()
		case <-w.proc.Done():
			return
		}
	}
}

func (w *bridgeWorker) closeConns() {
	w.closed.Do(func() {
		w.control.Close()
		w.closeSessions()
		for _, s := range w.slots {
			s.Close()
		}
	})
}

func (w *bridgeWorker) PID() int                 { return w.proc.PID() }
func (w *bridgeWorker) Slots() int               { return len(w.slots) }
func (w *bridgeWorker) Kill()                    { w.proc.Kill() }
func (w *bridgeWorker) Done() <-chan struct{}    { return w.proc.Done() }
func (w *bridgeWorker) Exit() string             { return w.proc.ExitString() }
func (w *bridgeWorker) Stop(ctx context.Context) { w.proc.Stop(ctx) }

var headPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// DumpStacks asks the runner to log its threads' stacks (SIGUSR1: Python's
// faulthandler, Ruby's Thread#backtrace, Perl's Carp), php-fpm's slowlog
// for every language.
func (w *bridgeWorker) DumpStacks() { syscall.Kill(w.proc.PID(), syscall.SIGUSR1) }

// Abort closes slot i, which ends its exchange at once; the pool then
// retires this runner.
func (w *bridgeWorker) Abort(i int) { w.slots[i].Close() }

// Serve streams r through slot i.
func (w *bridgeWorker) Serve(i int, rw http.ResponseWriter, r *http.Request) error {
	if u, ok := rw.(bridge.Upgrader); ok && w.mux != nil {
		return w.upgrade(i, u, r) // websocket.go
	}
	slot := w.slots[i]
	w.busy.Add(1)
	defer w.busy.Add(-1)
	bp := headPool.Get().(*[]byte)
	h := bridge.BeginHead((*bp)[:0])
	cgi.Build(&h, r, w.mount)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	// The gateway gave r exactly one X-Request-Id; the shims expose it as
	// gw.request_id.
	head := h.Finish(scheme, r.Header.Get(reqid.Header))
	var body io.Reader = r.Body
	if r.Body == http.NoBody || (r.ContentLength == 0 && len(r.TransferEncoding) == 0) {
		body = nil
	}
	_, err := slot.Exchange(rw, r, head, body)
	*bp = head[:0]
	headPool.Put(bp)
	if errors.Is(err, bridge.ErrNotDelivered) {
		return fmt.Errorf("%w: %w: %v", pool.ErrWorkerGone, pool.ErrNotDelivered, err)
	}
	if errors.Is(err, bridge.ErrRunnerGone) {
		return fmt.Errorf("%w: %v", pool.ErrWorkerGone, err)
	}
	var ae *bridge.AppError
	var be *bridge.BodyError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return &pool.AppError{Msg: ae.Msg}
	case errors.As(err, &be):
		return &pool.BodyError{Err: be.Err}
	}
	// A protocol violation: the slot's stream can't be trusted.
	return fmt.Errorf("%w: %v", pool.ErrWorkerGone, err)
}
