package php

import (
	"bufio"
	"context"
	"errors"
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

var _ pool.Launcher = (*Launcher)(nil)
var _ pool.Worker = (*worker)(nil)

// Launch starts one php-cgi and waits until it answers a FastCGI
// GET_VALUES query.
func (l *Launcher) Launch(ctx context.Context, id int) (pool.Worker, error) {
	fail := func(stage proc.Stage, err error, detail string) error {
		return &proc.SpawnError{App: l.App, Worker: id, Stage: stage, Err: err, Detail: detail}
	}
	path := filepath.Join(l.SockDir, fmt.Sprintf("php-%s-%d-%d.sock", l.App, id, l.seq.Add(1)))
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fail(proc.StageExec, err, "")
	}
	// php-cgi owns the socket from here; closing our copy must not unlink
	// it, and once php-cgi is gone a dial fails fast (nobody listening)
	// instead of waiting in a backlog nobody accepts from.
	ln.SetUnlinkOnClose(false)
	f, err := ln.File()
	ln.Close()
	if err != nil {
		os.Remove(path)
		return nil, fail(proc.StageExec, err, "")
	}
	log := l.Log.With("app", l.App, "worker", id)
	p, err := proc.Start(l.Spec, proc.Files{Stdin: f}, log)
	f.Close()
	if err != nil {
		os.Remove(path)
		return nil, fail(proc.StageExec, fmt.Errorf("start %s: %w", l.Spec.Path, err), "")
	}
	w := &worker{l: l, proc: p, path: path, log: log}
	if err := w.ready(ctx); err != nil {
		p.Kill()
		<-p.Done()
		os.Remove(path)
		stage := proc.StageReadyTimeout
		select {
		case <-p.Done():
			if !errors.Is(err, errNotReady) {
				stage = proc.StageLoad
			}
		default:
		}
		return nil, fail(stage, err, p.Tail())
	}
	log.Info("runner ready", "pid", p.PID(), "runtime", "php-cgi")
	// health ends when the process exits.
	go w.health()
	return w, nil
}

var errNotReady = errors.New("php-cgi did not answer in time")

// worker is one php-cgi process with one kept-alive FastCGI connection.
type worker struct {
	l    *Launcher
	proc *proc.Process
	path string
	log  *slog.Logger

	mu   sync.Mutex // the connection: one request or one ping at a time
	conn net.Conn
	br   *bufio.Reader
	sw   *sendwait.Sender // conn's: writes a request from inside the wait for its answer
	rd   *fcgi.Reader
	busy atomic.Bool
	// Kept between requests (under mu): the encoded request head, the
	// scratch for HTTP_* names, and the response head's buffer.
	headBuf, nameBuf []byte
	respHead         []byte // the CGI response head being collected
	// The connection of the request being served, for Abort, which
	// cannot take mu (Serve holds it).
	curMu sync.Mutex
	cur   net.Conn
}

func (w *worker) PID() int              { return w.proc.PID() }
func (w *worker) Slots() int            { return 1 }
func (w *worker) Kill()                 { w.proc.Kill() }
func (w *worker) Done() <-chan struct{} { return w.proc.Done() }
func (w *worker) Exit() string          { return w.proc.ExitString() }

// Stop closes the kept-alive connection first: php-cgi blocked reading the
// next request on it restarts that read after SIGTERM and would only exit
// at the KILL.
func (w *worker) Stop(ctx context.Context) {
	if w.mu.TryLock() {
		w.drop()
		w.mu.Unlock()
	}
	w.proc.Stop(ctx)
}

// ready pings until php-cgi answers, it exits, or the timeout passes.
func (w *worker) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.l.ReadyTimeout)
	defer cancel()
	for {
		w.mu.Lock()
		err := w.ping(ctx)
		w.mu.Unlock()
		if err == nil {
			return nil
		}
		select {
		case <-w.proc.Done():
			return fmt.Errorf("php-cgi exited before ready (%s)", w.proc.ExitString())
		case <-ctx.Done():
			return errNotReady
		case <-time.After(20 * time.Millisecond):
		}
	}
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

// health pings an idle php-cgi and kills one that stops answering. A busy
// one is the request deadline's to end.
func (w *worker) health() {
	defer os.Remove(w.path)
	tick := time.NewTicker(w.l.PingEvery)
	defer tick.Stop()
	for {
		select {
		case <-w.proc.Done():
			w.mu.Lock()
			w.drop()
			w.mu.Unlock()
			return
		case <-tick.C:
		}
		if !w.mu.TryLock() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), w.l.PingTimeout)
		err := w.ping(ctx)
		cancel()
		w.mu.Unlock()
		if err != nil {
			select {
			case <-w.proc.Done():
			default:
				w.log.Error("php-cgi failed its health check, killing it", "pid", w.proc.PID(), "err", err)
				w.proc.Kill()
			}
		}
	}
}
