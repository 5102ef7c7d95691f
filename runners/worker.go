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
	"strconv"
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
	"github.com/gwhq/gw/internal/reqinfo"
	"github.com/gwhq/gw/proto/bridgepb"
	"github.com/gwhq/gw/runners/cache"
	"github.com/gwhq/gw/runners/lifecycle"
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
	numbered     bool // pass the runner's number: --worker-id N (uwsgi.worker_id())
	// lock is the app's uwsgi.lock() file, a memfd every runner gets
	// (--lock-fd): fcntl record locks on it exclude across the runners.
	lock *os.File
	// reload is what a runner's RELOAD_APP asks for (uwsgi.reload()); nil:
	// the frame is ignored.
	reload      func()
	cache       *cache.Cache // the app's uwsgi.cache_* (uwsgicache.go); nil: no cache channel
	pingEvery   time.Duration
	pingTimeout time.Duration
	log         *slog.Logger
}

var (
	_ pool.Launcher       = (*bridgeLauncher)(nil)
	_ pool.Worker         = (*bridgeWorker)(nil)
	_ pool.StackDumper    = (*bridgeWorker)(nil)
	_ lifecycle.Transport = (*bridgeTransport)(nil)
)

// socketpair returns our end as a net.Conn and the runner's end as a file.
func socketpair() (net.Conn, *os.File, error) {
	return proc.Socketpair(syscall.SOCK_STREAM, "gw-bridge")
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
	t := &bridgeTransport{pongs: make(chan uint64, 1)}
	var files []*os.File // the runner's ends: lifecycle.Start closes them
	fail := func(err error) error {
		for _, f := range files {
			f.Close()
		}
		t.Close()
		return &proc.SpawnError{App: l.app, Worker: id, Stage: proc.StageExec, Err: err}
	}
	control, cf, err := socketpair()
	if err != nil {
		return nil, fail(err)
	}
	t.control, t.ctrl, files = control, bridge.NewReader(bufio.NewReader(control)), append(files, cf)
	fds := make([]string, l.threads)
	for i := range fds {
		sp, err := newSlotPipes()
		if err != nil {
			return nil, fail(err)
		}
		t.all, files = append(t.all, bridge.NewSlot(sp.resp, sp.req)), append(files, sp.child[0], sp.child[1])
		fds[i] = fmt.Sprintf("%d:%d", 4+2*i, 5+2*i)
	}
	t.slots = t.all
	spec := l.spec
	spec.Args = append(append([]string(nil), spec.Args...), "--control-fd", "3", "--slot-fds", strings.Join(fds, ","))
	if n := pool.Number(ctx); l.numbered && n > 0 {
		spec.Args = append(spec.Args, "--worker-id", strconv.Itoa(n))
	}
	if t.sessionConn, err = l.sessionChannel(&spec, &files); err != nil {
		return nil, fail(err)
	}
	if l.lock != nil {
		// A dup per runner: lifecycle.Start closes what it hands over.
		fd, err := unix.FcntlInt(l.lock.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fail(fmt.Errorf("lock file: %w", err))
		}
		spec.Args = append(spec.Args, "--lock-fd", strconv.Itoa(3+len(files)))
		files = append(files, os.NewFile(uintptr(fd), "gw-uwsgi-lock"))
	}
	t.reload = l.reload
	if t.cacheConn, err = l.cacheChannel(&spec, &files); err != nil {
		return nil, fail(err)
	}
	log := l.log.With("app", l.app, "worker", id)
	run, err := lifecycle.Start(ctx, lifecycle.Options{
		App: l.app, Worker: id, Kind: "runner", Awaits: "ready message",
		ReadyTimeout: l.readyTimeout, PingEvery: l.pingEvery, PingTimeout: l.pingTimeout, Log: log,
	}, spec, proc.Files{Extra: files}, t)
	if err != nil {
		return nil, err
	}
	t.startSessions()
	t.reading.Do(t.startReading) // RELOAD_APP may come before the first PING
	if t.cacheConn != nil {
		// Ends when the channel closes: the runner exited, or Close.
		go serveCache(t.cacheConn, l.cache)
	}
	log.Info("runner ready", "pid", run.PID(), "runtime", t.runtime, "slots", t.runnerSlots)
	return &bridgeWorker{Runner: run, t: t, mount: l.mount}, nil
}

// bridgeTransport is a bridge runner's descriptors: the control socket
// (READY or LOAD_ERROR, then PING/PONG) and the slots.
type bridgeTransport struct {
	control net.Conn
	ctrl    *bridge.Reader
	all     []*bridge.Slot // every slot the runner was given
	slots   []*bridge.Slot // the ones it serves (READY's count); Ready's until it returns
	busy    atomic.Int32   // slots serving a request now

	runtime     string // from READY
	runnerSlots uint32

	pongs  chan uint64 // PONG seqs, read from control by readControl
	reload func()      // bridgeLauncher.reload
	// cacheConn is gw's end of the cache channel (uwsgicache.go); nil: none.
	cacheConn net.Conn
	reading   sync.Once // starts readControl (or, in Close, rules it out)
	reader    sync.WaitGroup
	seq       uint64 // the last PING's; Ping's only
	closed    sync.Once
	webSockets
}

// Ready reads the runner's first control frame: READY, or LOAD_ERROR with
// the app's traceback. It ignores ctx: Close ends the read.
func (t *bridgeTransport) Ready(context.Context) error {
	typ, n, err := t.ctrl.Header()
	var b []byte
	if err == nil {
		b, err = t.ctrl.Payload(n)
	}
	if err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return &proc.SpawnError{Stage: proc.StageHandshake, Err: fmt.Errorf("not the bridge protocol: %w", err)}
		}
		return fmt.Errorf("control socket: %w", err) // the runner is exiting
	}
	switch typ {
	case bridge.Ready:
		var r bridgepb.Ready
		if err := proto.Unmarshal(b, &r); err != nil {
			return &proc.SpawnError{Stage: proc.StageHandshake, Err: fmt.Errorf("READY: %w", err)}
		}
		if r.Protocol != bridge.Protocol {
			return &proc.SpawnError{Stage: proc.StageHandshake, Err: fmt.Errorf("runner speaks bridge protocol %d, gw speaks %d", r.Protocol, bridge.Protocol)}
		}
		t.runtime, t.runnerSlots, t.wsReady, t.rawReady, t.rawSocket = r.Runtime, r.Slots, r.Websocket, r.Raw, r.RawSocket
		t.wsSocket = r.WsSocket
		for _, s := range t.slots {
			s.NotifyGone = r.ClientGone // before any exchange: Ready returns first
		}
		if n := int(r.Slots); n > 0 && n < len(t.slots) {
			// The runner serves fewer slots than it was given: it
			// closed the rest, so do we.
			for _, s := range t.slots[n:] {
				s.Close()
			}
			t.slots = t.slots[:n]
		}
		return nil
	case bridge.LoadError:
		var le bridgepb.LoadError
		if err := proto.Unmarshal(b, &le); err != nil {
			return &proc.SpawnError{Stage: proc.StageHandshake, Err: fmt.Errorf("LOAD_ERROR: %w", err)}
		}
		return &proc.SpawnError{Stage: proc.StageLoad, Err: errors.New(le.Message), Detail: strings.TrimRight(le.Detail, "\n")}
	}
	return &proc.SpawnError{Stage: proc.StageHandshake, Err: fmt.Errorf("not the bridge protocol: first frame type %d", typ)}
}

// Ping sends PING and waits for its PONG. A runner whose every slot is
// busy is not asked: a single-threaded one (Perl) cannot answer then.
func (t *bridgeTransport) Ping(ctx context.Context) error {
	if int(t.busy.Load()) == len(t.slots) {
		return lifecycle.ErrBusy
	}
	t.reading.Do(t.startReading)
	t.seq++
	if err := bridge.WriteMessage(t.control, bridge.Ping, &bridgepb.Ping{Seq: t.seq}); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	for {
		select {
		case seq, ok := <-t.pongs:
			if !ok {
				return errors.New("control socket closed")
			}
			if seq == t.seq {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("no pong: %w", ctx.Err())
		}
	}
}

func (t *bridgeTransport) startReading() {
	t.reader.Add(1)
	// Ends when the control socket closes (Close, or the runner's exit).
	go t.readControl()
}

// readControl reads what the runner sends on the control socket once it
// is ready: PONGs, and RELOAD_APP from the app (uwsgi.reload()). Another
// frame is a desynced stream: the reader stops, and the next PING times out.
func (t *bridgeTransport) readControl() {
	defer t.reader.Done()
	defer close(t.pongs)
	for {
		typ, n, err := t.ctrl.Header()
		if err != nil {
			return
		}
		b, err := t.ctrl.Payload(n)
		if err != nil {
			return
		}
		switch typ {
		case bridge.Pong:
			var pong bridgepb.Pong
			if err := proto.Unmarshal(b, &pong); err != nil {
				return
			}
			select {
			case t.pongs <- pong.Seq:
			default:
			}
		case bridge.ReloadApp:
			if t.reload != nil {
				// The reload boots new runners and drains this one:
				// never on this reader, which the drain waits for.
				go t.reload()
			}
		default:
			return
		}
	}
}

// Close closes the control socket and the slots, and waits for readPongs.
func (t *bridgeTransport) Close() {
	t.closed.Do(func() {
		if t.control != nil {
			t.control.Close()
		}
		t.closeSessions()
		if t.cacheConn != nil {
			t.cacheConn.Close()
		}
		for _, s := range t.all {
			s.Close()
		}
	})
	t.reading.Do(func() {}) // no reader from now on
	t.reader.Wait()
}

// bridgeWorker is one running bridge runner.
type bridgeWorker struct {
	*lifecycle.Runner
	t     *bridgeTransport
	mount cgi.Mount
}

func (w *bridgeWorker) Slots() int { return len(w.t.slots) }

var headPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Abort closes slot i, which ends its exchange at once; the pool then
// retires this runner.
func (w *bridgeWorker) Abort(i int) { w.t.slots[i].Close() }

// Serve streams r through slot i.
func (w *bridgeWorker) Serve(i int, rw http.ResponseWriter, r *http.Request) error {
	if u, ok := rw.(bridge.Upgrader); ok && w.t.mux != nil {
		return w.upgrade(i, u, r) // websocket.go
	}
	if w.t.raw != nil {
		if rh, ok := rw.(bridge.RawHijacker); ok {
			return w.serveRaw(i, rh, r) // rawconn.go
		}
	}
	slot := w.t.slots[i]
	w.t.busy.Add(1)
	defer w.t.busy.Add(-1)
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
	res, err := slot.Exchange(rw, r, head, body)
	if res.LogVars != nil {
		if timing := reqinfo.TimingFrom(r.Context()); timing != nil {
			timing.Vars = res.LogVars
		}
	}
	*bp = head[:0]
	headPool.Put(bp)
	return poolError(err)
}
