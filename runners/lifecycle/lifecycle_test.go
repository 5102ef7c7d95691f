package lifecycle

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/runners/proc"
)

// The runners here are /bin/sh one-liners: real processes and real signals
// under a fake transport. A script says it is ready by writing a line to
// fd 3, which the fake's Ready reads (readyPipe).

// fake is a Transport whose behaviour each test picks.
type fake struct {
	ready   func(ctx context.Context) error
	ping    func(ctx context.Context) error
	onClose func()
	closes  atomic.Int32
}

func (f *fake) Ready(ctx context.Context) error {
	if f.ready == nil {
		return nil
	}
	return f.ready(ctx)
}

func (f *fake) Ping(ctx context.Context) error {
	if f.ping == nil {
		return nil
	}
	return f.ping(ctx)
}

func (f *fake) Close() {
	f.closes.Add(1)
	if f.onClose != nil {
		f.onClose()
	}
}

// quitter is a fake with its own part in Stop.
type quitter struct {
	*fake
	term  bool
	quits atomic.Int32
}

func (q *quitter) Quit() bool { q.quits.Add(1); return q.term }

// noter adds notes to a failed start's detail.
type noter struct{ *fake }

func (noter) Notes(stage proc.Stage) string { return "note: stage " + string(stage) }

// logBuffer is a slog handler's output, safe for the health loop to write.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func options(log *logBuffer, ready time.Duration) Options {
	h := slog.Handler(slog.DiscardHandler)
	if log != nil {
		h = slog.NewTextHandler(log, nil)
	}
	return Options{App: "t", Worker: 3, Kind: "runner", Awaits: "READY", ReadyTimeout: ready,
		PingEvery: 50 * time.Millisecond, PingTimeout: 200 * time.Millisecond, Log: slog.New(h)}
}

func sh(script string) proc.Spec {
	return proc.Spec{Path: "/bin/sh", Args: []string{"-c", script, "sh"}, Env: os.Environ()}
}

// readyPipe is fd 3 for a script, and a Ready that returns once the script
// wrote a line there (or with ctx's error). A number on that line goes to
// pids, if given.
func readyPipe(t *testing.T, pids ...chan int) (proc.Files, func(ctx context.Context) error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	lines := make(chan error, 1)
	// Ends at the first line or EOF: the script's exit at the latest.
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		if pid, perr := strconv.Atoi(strings.TrimSpace(line)); perr == nil && len(pids) > 0 {
			pids[0] <- pid
		}
		lines <- err
	}()
	return proc.Files{Extra: []*os.File{w}}, func(ctx context.Context) error {
		select {
		case err := <-lines:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func TestStartFailureStages(t *testing.T) {
	loadError := &proc.SpawnError{Stage: proc.StageLoad, Err: errors.New("cannot import app"), Detail: "Traceback: app.py line 1"}
	blockUntil := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	tests := []struct {
		name    string
		spec    proc.Spec
		ready   func(ctx context.Context) error
		cancel  bool // the caller's ctx ends during the wait
		notes   bool
		stage   proc.Stage
		want    string // in the error
		detail  string // Detail, exactly
		took    time.Duration
		killed  bool // the pid the script writes to fd 3 first must be gone
		eof     bool // Ready reads fd 3 and reports its EOF, fast
		isCause error
	}{
		{name: "exec", spec: proc.Spec{Path: "/nonexistent/interpreter"}, stage: proc.StageExec,
			want: "start /nonexistent/interpreter", isCause: os.ErrNotExist},
		{name: "ready timeout", spec: sh("echo $$ >&3; echo 'still importing' >&2; exec sleep 30"), ready: blockUntil,
			stage: proc.StageReadyTimeout, want: "no READY within 300ms", detail: "still importing", took: 300 * time.Millisecond, killed: true},
		{name: "exit before ready", spec: sh("echo 'boom: cannot import' >&2; exit 4"), ready: blockUntil,
			stage: proc.StageLoad, want: "runner exited during its start (exit status 4)", detail: "boom: cannot import"},
		{name: "killed before ready", spec: sh("kill -9 $$"), ready: blockUntil,
			stage: proc.StageLoad, want: "runner exited during its start (killed by killed)"},
		{name: "transport's verdict", spec: sh("echo $$ >&3; echo 'said hello' >&2; exec sleep 30"),
			ready: func(context.Context) error {
				return &proc.SpawnError{Stage: proc.StageHandshake, Err: errors.New("not the protocol")}
			},
			stage: proc.StageHandshake, want: "not the protocol", killed: true},
		{name: "last word after exit", spec: sh("exit 4"),
			ready: func(ctx context.Context) error {
				// The exit cancels ctx; what the transport had
				// read by then (a LOAD_ERROR) is the answer.
				<-ctx.Done()
				if errors.Is(ctx.Err(), context.Canceled) {
					return loadError
				}
				return ctx.Err()
			},
			stage: proc.StageLoad, want: "cannot import app", detail: loadError.Detail},
		{name: "transport lost the runner", spec: sh("echo 'bye' >&2; exit 3"),
			ready: func(context.Context) error { return io.EOF },
			stage: proc.StageLoad, want: "exit status 3", detail: "bye"},
		{name: "EOF at the exit", spec: sh("echo 'boom' >&2; exit 4"), eof: true,
			stage: proc.StageLoad, want: "runner exited during its start (exit status 4)", detail: "boom"},
		{name: "canceled", spec: sh("echo $$ >&3; exec sleep 30"), ready: blockUntil, cancel: true,
			stage: proc.StageHandshake, want: "launch canceled", killed: true, isCause: context.Canceled},
		{name: "notes", spec: sh("echo 'half a line' >&2; exec sleep 30"), ready: blockUntil, notes: true,
			stage: proc.StageReadyTimeout, want: "no READY", detail: "half a line\nnote: stage ready timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				ready := tc.ready
				tc.ready = func(rctx context.Context) error {
					cancel()
					return ready(rctx)
				}
			}
			files, pids := proc.Files{}, make(chan int, 1)
			if tc.killed {
				// Ready first reads the script's pid: it has run.
				var started func(context.Context) error
				files, started = readyPipe(t, pids)
				then := tc.ready
				tc.ready = func(ctx context.Context) error {
					if err := started(ctx); err != nil {
						return err
					}
					return then(ctx)
				}
			}
			var onClose func()
			if tc.eof {
				// Only if Start closed gw's copy of the script's
				// end does EOF come at the exit.
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				files, onClose = proc.Files{Extra: []*os.File{w}}, func() { r.Close() }
				// As bridge's: ignores ctx, ends at EOF or Close.
				tc.ready = func(context.Context) error {
					_, err := r.Read(make([]byte, 1))
					return err
				}
			}
			f := &fake{ready: tc.ready, onClose: onClose}
			var tr Transport = f
			if tc.notes {
				tr = noter{f}
			}
			begin := time.Now()
			r, err := Start(ctx, options(nil, 300*time.Millisecond), tc.spec, files, tr)
			took := time.Since(begin)
			if r != nil {
				r.Kill()
				t.Fatal("started")
			}
			var se *proc.SpawnError
			if !errors.As(err, &se) {
				t.Fatalf("%T %v is not a *proc.SpawnError", err, err)
			}
			if se.Stage != tc.stage || se.App != "t" || se.Worker != 3 {
				t.Errorf("stage %q app %q worker %d, want %q t 3 (%v)", se.Stage, se.App, se.Worker, tc.stage, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if tc.detail != "" && se.Detail != tc.detail {
				t.Errorf("detail %q, want %q", se.Detail, tc.detail)
			}
			if tc.isCause != nil && !errors.Is(err, tc.isCause) {
				t.Errorf("error %v does not wrap %v", err, tc.isCause)
			}
			if n := f.closes.Load(); n != 1 {
				t.Errorf("transport closed %d times, want once", n)
			}
			if took < tc.took || took > tc.took+3*time.Second {
				t.Errorf("took %v, want %v and a little", took, tc.took)
			}
			if tc.eof && took >= exitGrace {
				t.Errorf("took %v: the transport saw no EOF at the exit", took)
			}
			if tc.killed {
				select {
				case pid := <-pids:
					if alive(pid) {
						t.Errorf("pid %d still running", pid)
					}
				default:
					t.Error("the script wrote no pid")
				}
			}
		})
	}
}

func TestHealth(t *testing.T) {
	failing := errors.New("no pong")
	tests := []struct {
		name   string
		ping   error
		killed bool
	}{
		{"answers", nil, false},
		{"busy", ErrBusy, false},
		{"fails", failing, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, ready := readyPipe(t)
			pings := make(chan struct{}, 100)
			f := &fake{ready: ready, ping: func(context.Context) error {
				select {
				case pings <- struct{}{}:
				default:
				}
				return tc.ping
			}}
			var log logBuffer
			r, err := Start(context.Background(), options(&log, 5*time.Second), sh("echo ok >&3; exec sleep 30 3>&-"), files, f)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(r.Kill)
			if !tc.killed {
				for range 3 {
					<-pings
				}
				select {
				case <-r.Done():
					t.Fatalf("runner gone after 3 pings: %s", r.Exit())
				default:
				}
				if !alive(r.PID()) {
					t.Fatal("runner gone")
				}
				return
			}
			select {
			case <-r.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("a runner failing its health checks still runs after 5s")
			}
			if got := r.Exit(); got != "killed by killed" {
				t.Errorf("exit %q, want the health check's SIGKILL", got)
			}
			lines := strings.Count(log.String(), "runner failed its health check, killing it")
			if lines != 1 || !strings.Contains(log.String(), "err=\"no pong\"") || !strings.Contains(log.String(), "pid="+strconv.Itoa(r.PID())) {
				t.Errorf("want one log line with the pid and the error, got:\n%s", log.String())
			}
			if n := f.closes.Load(); n != 1 {
				t.Errorf("transport closed %d times, want once", n)
			}
		})
	}
}

func TestStop(t *testing.T) {
	const grace = 300 * time.Millisecond
	tests := []struct {
		name       string
		ignoreTerm bool
		quit       *bool // a Quitter answering this
		exit       string
		escalated  bool // killed at ctx's end, not before
	}{
		{name: "SIGTERM", exit: "killed by terminated"},
		{name: "SIGTERM ignored: SIGKILL at ctx end", ignoreTerm: true, exit: "killed by killed", escalated: true},
		{name: "Quit, then SIGTERM", quit: new(true), exit: "killed by terminated"},
		{name: "Quit instead of SIGTERM", quit: new(false), exit: "killed by killed", escalated: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, ready := readyPipe(t)
			f := &fake{ready: ready}
			var tr Transport = f
			var q *quitter
			if tc.quit != nil {
				q = &quitter{fake: f, term: *tc.quit}
				tr = q
			}
			script := "echo ok >&3; exec sleep 30 3>&-"
			if tc.ignoreTerm {
				script = "trap '' TERM; " + script
			}
			r, err := Start(context.Background(), options(nil, 5*time.Second), sh(script), files, tr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(r.Kill)
			ctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			begin := time.Now()
			r.Stop(ctx)
			took := time.Since(begin)
			select {
			case <-r.Done():
			default:
				t.Fatal("Stop returned before Done")
			}
			if got := r.Exit(); got != tc.exit {
				t.Errorf("exit %q, want %q", got, tc.exit)
			}
			if tc.escalated && took < grace {
				t.Errorf("killed after %v, before ctx's end (%v)", took, grace)
			}
			if took > grace+3*time.Second {
				t.Errorf("stop took %v", took)
			}
			if q != nil && q.quits.Load() != 1 {
				t.Errorf("Quit called %d times, want once", q.quits.Load())
			}
			if n := f.closes.Load(); n != 1 {
				t.Errorf("transport closed %d times, want once", n)
			}
			r.Stop(ctx) // a second Stop returns at once
		})
	}
}

// TestExitClosesTransport: a runner that exits by itself is Done once its
// transport is closed, and Exit says how it went.
func TestExitClosesTransport(t *testing.T) {
	files, ready := readyPipe(t)
	f := &fake{ready: ready}
	// The pause keeps the exit after the ready: an exit seen first is a
	// failed start, which is another test (it raced 1 in 6 under -race).
	r, err := Start(context.Background(), options(nil, 5*time.Second), sh("echo ok >&3; sleep 0.3; exit 7"), files, f)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not done 5s after the exit")
	}
	if got := r.Exit(); got != "exit status 7" {
		t.Errorf("exit %q", got)
	}
	if n := f.closes.Load(); n != 1 {
		t.Errorf("transport closed %d times, want once", n)
	}
}

// TestDumpStacks: SIGUSR1 goes to the runner's process, which keeps running.
func TestDumpStacks(t *testing.T) {
	files, ready := readyPipe(t)
	dumps, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer dumps.Close()
	files.Extra = append(files.Extra, w)
	// A shell runs a trap between commands, so the loop sleeps in short
	// steps.
	script := "trap 'echo dumped >&4' USR1; echo ok >&3; exec 3>&-; while :; do sleep 0.05; done"
	r, err := Start(context.Background(), options(nil, 5*time.Second), sh(script), files, &fake{ready: ready})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		r.Kill()
		<-r.Done()
	}()
	r.DumpStacks()
	line, err := bufio.NewReader(dumps).ReadString('\n')
	if err != nil || line != "dumped\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	if err := syscall.Kill(r.PID(), 0); err != nil {
		t.Errorf("runner gone after SIGUSR1: %v", err)
	}
}
