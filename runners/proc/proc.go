// Package proc starts and stops one runner OS process: inherited sockets,
// its own process group, log lines from its stdout and stderr, and a kill
// that escalates from SIGTERM to SIGKILL.
package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec says what to run. Language packages build it; they start nothing.
type Spec struct {
	Path string   // executable
	Args []string // argv[1:]
	Env  []string // full environment
	Dir  string   // working directory ("" = gw's)
	// Cred is the user, group and supplementary groups to run as (see
	// LookupCredential); nil runs the process as gw runs.
	Cred *syscall.Credential
	// Limits, when set, are applied before the process runs its own code
	// (limits.go); nil costs nothing.
	Limits *Limits
}

// Files are the descriptors a runner inherits besides stdout and stderr.
type Files struct {
	Stdin *os.File   // nil: /dev/null
	Extra []*os.File // fd 3, 4, ...
}

// Process is one started runner process.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit error, set before done closes
	tail *tail
	logs sync.WaitGroup
	// limits are the spec's; oomBase their cgroup's OOM kills before the
	// start, so LimitHit counts only kills since.
	limits  *Limits
	oomBase uint64
}

// Start starts spec with files inherited (Extra as fd 3, 4, ...). Its stdout
// and stderr become log lines on log. The process gets its own process group so a
// kill reaches whatever it forked, and a terminal's Ctrl-C reaches gw only.
func Start(spec Spec, files Files, log *slog.Logger) (*Process, error) {
	var oomBase uint64
	if lim := spec.Limits; lim != nil {
		if lim.OOMKills != nil {
			oomBase = lim.OOMKills()
		}
		var err error
		if spec, err = wrap(spec, lim); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = spec.Env
	cmd.Dir = spec.Dir
	cmd.ExtraFiles = files.Extra
	if files.Stdin != nil {
		cmd.Stdin = files.Stdin
	}
	// Pdeathsig is a backup for the owner channel (runners exit on EOF of
	// their control socket): it fires when the forking *thread* exits
	// (golang/go#27505), which Go does only for threads a goroutine locked
	// and never unlocked; gw locks none.
	// Go switches the credential before it sets Pdeathsig, which the kernel
	// would otherwise clear at the uid change.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: applied(spec.Cred)}
	if lim := spec.Limits; lim != nil && lim.CgroupDir != nil {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(lim.CgroupDir.Fd())
	}
	// Own pipes rather than cmd.StdoutPipe: Wait must not depend on every
	// grandchild closing them.
	stdout, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stderr, errW, err := os.Pipe()
	if err != nil {
		stdout.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		stdout.Close()
		stderr.Close()
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), tail: &tail{max: 40}, limits: spec.Limits, oomBase: oomBase}
	log = log.With("pid", cmd.Process.Pid)
	p.logs.Add(2)
	// Both readers end when the process (and anything holding its pipes)
	// exits; wait() waits for them before reporting the exit.
	go p.copyLines(stdout, log, "stdout")
	go p.copyLines(stderr, log, "stderr")
	// wait() owns cmd.Wait and closes done.
	go p.wait()
	return p, nil
}

// maxLine bounds one logged line of runner output. A longer line is cut
// there and the rest of it skipped, with its size noted, as nginx cuts error
// log entries at NGX_MAX_ERROR_STR: a runner that dumps a multi-megabyte line
// must neither flood the log nor silence the lines (a traceback) after it.
const maxLine = 64 << 10

func (p *Process) copyLines(r io.ReadCloser, log *slog.Logger, stream string) {
	defer p.logs.Done()
	defer r.Close()
	br := bufio.NewReaderSize(r, 4096)
	var buf []byte
	for {
		line, dropped, err := readLine(br, buf[:0], maxLine)
		if err == nil || len(line) > 0 || dropped > 0 {
			text := string(line)
			p.tail.add(text)
			if dropped > 0 {
				log.Info(text, "stream", stream, "truncated_bytes", dropped)
			} else {
				log.Info(text, "stream", stream)
			}
		}
		if err != nil {
			// EOF, or a read error: drain the rest so the runner
			// never blocks on a full pipe.
			io.Copy(io.Discard, r)
			return
		}
		buf = line[:0]
	}
}

// readLine reads one line from br into buf without its "\n" or "\r\n",
// keeping at most max bytes of it and reading past the rest; dropped counts
// the bytes left out. err is non-nil only at the end of input, after the
// last, unterminated line.
func readLine(br *bufio.Reader, buf []byte, max int) (line []byte, dropped int, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		if err == nil {
			frag = frag[:len(frag)-1]
			if n := len(frag); n > 0 && frag[n-1] == '\r' {
				frag = frag[:n-1]
			}
		}
		keep := min(len(frag), max-len(buf))
		buf = append(buf, frag[:keep]...)
		dropped += len(frag) - keep
		if err != bufio.ErrBufferFull {
			return buf, dropped, err
		}
	}
}
func (p *Process) wait() {
	p.err = p.cmd.Wait()
	// Give the log readers a moment to pick up the last lines (a
	// traceback written just before exit), without hanging on a
	// grandchild that still holds the pipes.
	logged := make(chan struct{})
	go func() { p.logs.Wait(); close(logged) }()
	select {
	case <-logged:
	case <-time.After(time.Second):
	}
	close(p.done)
}

// PID is the runner's process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// CPUSeconds is the user and system CPU time of the exited process and of
// the children it reaped, from its rusage at wait; 0 before it exited.
func (p *Process) CPUSeconds() float64 {
	if p.cmd.ProcessState == nil {
		return 0
	}
	return (p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()).Seconds()
}

// Done is closed once the process has exited and its output is drained.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process exited (nil for status 0); valid after Done.
func (p *Process) Err() error { return p.err }

// ExitCode is the exit status, or -1 when killed by a signal; valid after Done.
func (p *Process) ExitCode() int {
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Tail returns the last lines the process wrote.
func (p *Process) Tail() string { return p.tail.String() }

// Signal sends sig to the process group.
func (p *Process) Signal(sig syscall.Signal) error {
	err := syscall.Kill(-p.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Kill sends SIGKILL to the process group.
func (p *Process) Kill() { p.Signal(syscall.SIGKILL) }

// Stop asks the process to exit with SIGTERM and kills its group with SIGKILL
// when ctx ends first. It returns once the process is gone.
func (p *Process) Stop(ctx context.Context) {
	select {
	case <-p.done:
		return
	default:
	}
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-ctx.Done():
		p.Kill()
		<-p.done
	}
}

// KilledBy is the signal that ended the process, 0 if it exited by itself
// (or has not exited).
func (p *Process) KilledBy() syscall.Signal {
	if ps := p.cmd.ProcessState; ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ws.Signal()
		}
	}
	return 0
}

// ExitString describes how the process ended, for logs.
func (p *Process) ExitString() string {
	ps := p.cmd.ProcessState
	if ps == nil {
		return "not exited"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("killed by %v", ws.Signal())
	}
	return fmt.Sprintf("exit status %d", ps.ExitCode())
}

// tail keeps the last lines of output, for spawn error reports.
type tail struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == t.max {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:t.max-1]
	}
	t.lines = append(t.lines, line)
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
