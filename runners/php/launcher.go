package php

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gwhq/gw/internal/fcgi"
	"github.com/gwhq/gw/internal/sendwait"
	"github.com/gwhq/gw/runners/lifecycle"
	"github.com/gwhq/gw/runners/pool"
	"github.com/gwhq/gw/runners/proc"
)

// Launcher starts php-cgi workers for one app.
type Launcher struct {
	App          string
	Spec         proc.Spec
	SockDir      string // private (0700) directory for the listening sockets
	Root         *Root
	Mount        string // SCRIPT_NAME prefix ("" for "/")
	ReadyTimeout time.Duration
	PingEvery    time.Duration
	PingTimeout  time.Duration
	Log          *slog.Logger

	seq atomic.Int64
}

var (
	_ pool.Launcher       = (*Launcher)(nil)
	_ pool.Worker         = (*worker)(nil)
	_ lifecycle.Transport = (*worker)(nil)
	_ lifecycle.Quitter   = (*worker)(nil)
)

// Launch starts one php-cgi and waits until it answers a FastCGI
// GET_VALUES query.
func (l *Launcher) Launch(ctx context.Context, id int) (pool.Worker, error) {
	fail := func(err error) error {
		return &proc.SpawnError{App: l.App, Worker: id, Stage: proc.StageExec, Err: err}
	}
	path := filepath.Join(l.SockDir, fmt.Sprintf("php-%s-%d-%d.sock", l.App, id, l.seq.Add(1)))
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fail(err)
	}
	// php-cgi owns the socket from here; closing our copy must not unlink
	// it, and once php-cgi is gone a dial fails fast (nobody listening)
	// instead of waiting in a backlog nobody accepts from.
	ln.SetUnlinkOnClose(false)
	f, err := ln.File()
	ln.Close()
	if err != nil {
		os.Remove(path)
		return nil, fail(err)
	}
	log := l.Log.With("app", l.App, "worker", id)
	w := &worker{l: l, path: path, log: log}
	run, err := lifecycle.Start(ctx, lifecycle.Options{
		App: l.App, Worker: id, Kind: "php-cgi", Awaits: "FastCGI answer",
		ReadyTimeout: l.ReadyTimeout, PingEvery: l.PingEvery, PingTimeout: l.PingTimeout, Log: log,
	}, l.Spec, proc.Files{Stdin: f}, w)
	if err != nil {
		return nil, err
	}
	w.run = run
	log.Info("runner ready", "pid", run.PID(), "runtime", "php-cgi")
	return w, nil
}

// worker is one php-cgi process with one kept-alive FastCGI connection,
// which is also its lifecycle's transport.
type worker struct {
	l    *Launcher
	run  *lifecycle.Runner
	path string
	log  *slog.Logger

	mu   sync.Mutex // the connection: one request or one ping at a time
	conn net.Conn
	br   *bufio.Reader
	sw   *sendwait.Sender // conn's: writes a request from inside the wait for its answer
	rd   *fcgi.Reader
	// Kept between requests (under mu): the encoded request head, the
	// scratch for HTTP_* names, and the response head's buffer.
	headBuf, nameBuf []byte
	respHead         []byte // the CGI response head being collected
	// The connection of the request being served, for Abort, which
	// cannot take mu (Serve holds it).
	curMu sync.Mutex
	cur   net.Conn
}

// The lifecycle's, all but DumpStacks: php-cgi has no stack dump, and
// SIGUSR1 would end it.
func (w *worker) PID() int                 { return w.run.PID() }
func (w *worker) Slots() int               { return 1 }
func (w *worker) Kill()                    { w.run.Kill() }
func (w *worker) Stop(ctx context.Context) { w.run.Stop(ctx) }
func (w *worker) Done() <-chan struct{}    { return w.run.Done() }
func (w *worker) Exit() string             { return w.run.Exit() }
func (w *worker) LimitHit() string         { return w.run.LimitHit() }
func (w *worker) CPUSeconds() float64      { return w.run.CPUSeconds() }

// Quit closes the kept-alive connection before Stop's SIGTERM: php-cgi
// blocked reading the next request on it restarts that read after SIGTERM
// and would only exit at the KILL.
func (w *worker) Quit() bool {
	if w.mu.TryLock() {
		w.drop()
		w.mu.Unlock()
	}
	return true
}

// Ready pings until php-cgi answers or ctx ends.
func (w *worker) Ready(ctx context.Context) error {
	for {
		w.mu.Lock()
		err := w.ping(ctx)
		w.mu.Unlock()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Ping pings an idle php-cgi. A busy one (serving its one request) is not
// asked.
func (w *worker) Ping(ctx context.Context) error {
	if !w.mu.TryLock() {
		return lifecycle.ErrBusy
	}
	defer w.mu.Unlock()
	return w.ping(ctx)
}

// Close drops the connection and removes the socket, once php-cgi is gone.
func (w *worker) Close() {
	w.mu.Lock()
	w.drop()
	w.mu.Unlock()
	os.Remove(w.path)
}

// ping sends GET_VALUES and waits for the result. Callers hold w.mu.
func (w *worker) ping(ctx context.Context) error {
	if err := w.dial(); err != nil {
		return err
	}
	b, _ := fcgi.AppendGetValues(nil, fcgi.MpxsConns)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(w.l.PingTimeout)
	}
	w.conn.SetDeadline(deadline)
	defer w.conn.SetDeadline(time.Time{})
	if _, err := w.conn.Write(b); err != nil {
		w.drop()
		return err
	}
	for {
		h, _, err := w.rd.Next()
		if err != nil {
			w.drop()
			return err
		}
		if h.Type == fcgi.TypeGetValuesResult {
			return nil
		}
	}
}

func (w *worker) dial() error {
	if w.conn != nil {
		return nil
	}
	c, err := net.Dial("unix", w.path)
	if err != nil {
		return err
	}
	w.conn, w.br = c, bufio.NewReaderSize(c, 64<<10)
	w.rd = fcgi.NewReader(w.br)
	w.sw = sendwait.New(c, c)
	return nil
}

// drop closes the connection; the next request dials a new one.
func (w *worker) drop() {
	if w.conn != nil {
		w.conn.Close()
		w.conn, w.br, w.rd, w.sw = nil, nil, nil, nil
	}
}
