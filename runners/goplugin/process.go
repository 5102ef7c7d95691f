package goplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin/runner"

	"github.com/gwhq/gw/runners/goplugin/internal/wire"
	"github.com/gwhq/gw/runners/lifecycle"
)

// process is the plugin's OS process. go-plugin starts it through
// ClientConfig.RunnerFunc, so gw keeps what go-plugin's own runner lacks: a
// channel closed at exit (go-plugin only offers Client.Exited to poll, and
// notices the exit only once the output pipes are drained), its own process
// group so a kill reaches what the plugin forked, and the first stdout bytes
// for a clear error when the handshake fails.
type process struct {
	path    string
	environ []string // the plugin's environment before go-plugin's variables
	dir     string
	cred    *syscall.Credential

	mu       sync.Mutex
	cmd      *exec.Cmd
	env      []string
	sockDir  string // go-plugin's per-plugin socket directory
	stopped  bool   // a kill came before the start
	startErr error

	stdout *recorder // what go-plugin reads the handshake from
	stderr *os.File
	owner  *os.File    // the write end of the owner pipe: never written, closed at release
	raw    *rawChannel // gw's end of the raw-connection socket (raw.go)
	tail   *tail       // the last lines of stderr, fed by go-plugin's copy of it
	done   chan struct{}
	err    error // cmd.Wait's result, set before done closes
}

var (
	_ runner.Runner     = (*process)(nil)
	_ lifecycle.Process = (*process)(nil)
)

// newProcess prepares to run path with environ (go-plugin adds its own
// variables, and Start the owner pipe's).
func newProcess(path string, environ []string) *process {
	return &process{path: path, environ: environ, tail: &tail{max: 40}, done: make(chan struct{})}
}

// prepare takes the variables go-plugin adds (magic cookie, protocol
// versions, socket directory); it runs inside Client.Start.
func (p *process) prepare(pluginEnv []string, sockDir string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.env = append(append([]string(nil), p.environ...), pluginEnv...)
	p.sockDir = sockDir
	if c := p.credential(); c != nil && sockDir != "" {
		// The plugin creates its socket there; gw, root to switch
		// users, can connect to it whoever owns it.
		if err := os.Chown(sockDir, int(c.Uid), int(c.Gid)); err != nil {
			p.startErr = fmt.Errorf("socket dir for the plugin's user: %w", err)
			return p.startErr
		}
	}
	return nil
}

// credential is cred unless it changes nothing, which a gw that is not root
// could not even ask for (as proc.Start decides).
func (p *process) credential() *syscall.Credential {
	c := p.cred
	if c == nil || (os.Geteuid() != 0 && c.Uid == uint32(os.Geteuid()) && c.Gid == uint32(os.Getegid())) {
		return nil
	}
	return c
}

func (p *process) Start(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		p.startErr = errors.New("launch canceled")
	} else {
		p.startErr = p.start()
	}
	return p.startErr
}

// start runs the binary with three pipes: stdout and stderr, read by
// go-plugin, and the owner pipe (fd 3), whose EOF tells the plugin that gw
// is gone, however it went; and the raw-connection socket (fd 4), which
// only a plugin speaking wire.RawVersion reads. Callers hold p.mu.
func (p *process) start() error {
	var ends []*os.File
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		ends = append(ends, r, w)
		return r, w, err
	}
	ownR, ownW, err1 := pipe()
	outR, outW, err2 := pipe()
	errR, errW, err3 := pipe()
	raw, rawChild, err4 := newRawChannel()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		for _, f := range ends {
			f.Close() // nil-safe
		}
		if err4 == nil {
			raw.close()
			rawChild.Close()
		}
		return err
	}
	cmd := exec.Command(p.path)
	cmd.Dir = p.dir
	cmd.Env = append(p.env, wire.OwnerFDEnv+"=3", wire.RawFDEnv+"=4")
	cmd.ExtraFiles = []*os.File{ownR, rawChild}
	// Own pipes rather than cmd.StdoutPipe: cmd.Wait must not wait for
	// go-plugin's readers, nor for a grandchild that holds the pipes.
	cmd.Stdout, cmd.Stderr = outW, errW
	// Pdeathsig backs up the owner pipe; see proc.Start for why it is only
	// a backup (golang/go#27505). Go switches the credential before it
	// sets Pdeathsig, which the kernel would otherwise clear.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: p.credential()}
	err := cmd.Start()
	// The child has its copies of these.
	ownR.Close()
	outW.Close()
	errW.Close()
	rawChild.Close()
	if err != nil {
		ownW.Close()
		outR.Close()
		errR.Close()
		raw.close()
		return err
	}
	p.cmd, p.owner, p.raw = cmd, ownW, raw
	p.stdout = &recorder{f: outR}
	p.stderr = errR
	// Owned by the process: ends when it exits.
	go p.wait()
	return nil
}

func (p *process) wait() {
	p.err = p.cmd.Wait()
	close(p.done)
}

// Wait is go-plugin's view of the exit.
func (p *process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill is go-plugin's kill, used when the start fails. A process that
// closed its stdout without a handshake is most likely exiting (GNU tools
// close stdout in an atexit handler): it gets a moment to finish, so that
// its exit status, not gw's SIGKILL, says what happened.
func (p *process) Kill(context.Context) error {
	p.mu.Lock()
	out := p.stdout
	p.mu.Unlock()
	if out != nil && out.atEOF() {
		t := time.NewTimer(500 * time.Millisecond)
		defer t.Stop()
		select {
		case <-p.done:
			return nil
		case <-t.C:
		}
	}
	p.kill()
	return nil
}

func (p *process) kill() { p.Signal(syscall.SIGKILL) }

// Signal sends sig to the process group; before the start it keeps the
// process from starting, and it is done.
func (p *process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		p.cancelStart()
		return nil
	}
	select {
	case <-p.done:
		return nil // the pid may belong to someone else by now
	default:
	}
	err := syscall.Kill(-p.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// cancelStart keeps a process that has not started from starting, and
// makes it done: the lifecycle waits for the end of whatever it killed.
// Callers hold p.mu.
func (p *process) cancelStart() {
	if !p.stopped {
		p.stopped = true
		close(p.done)
	}
}

// Done is closed once the process has exited, or was killed before it
// started.
func (p *process) Done() <-chan struct{} { return p.done }

// Tail is the last lines the plugin wrote to stderr.
func (p *process) Tail() string { return p.tail.String() }

func (p *process) Stdout() io.ReadCloser { return p.stdout }
func (p *process) Stderr() io.ReadCloser { return p.stderr }
func (p *process) Name() string          { return p.path }

// ID is the pid, or "" before the start (go-plugin then has nothing to
// kill).
func (p *process) ID() string {
	if pid := p.PID(); pid > 0 {
		return strconv.Itoa(pid)
	}
	return ""
}

// PID is the plugin's process id (0 before the start).
func (p *process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Diagnose returns nothing: Launch puts its own notes on the binary in
// SpawnError.Detail.
func (p *process) Diagnose(context.Context) string { return "" }

// The plugin runs on this machine: addresses need no translation.
func (p *process) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (p *process) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// exited reports whether the process has exited, and whether on its own
// rather than by SIGKILL (which only gw sends).
func (p *process) exited() (exited, byItself bool) {
	select {
	case <-p.done:
	default:
		return false, false
	}
	if p.cmd == nil {
		return true, false // killed before it started
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return true, !(ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL)
}

// ExitString describes how the process ended, for logs.
func (p *process) ExitString() string {
	if ok, _ := p.exited(); !ok {
		return "not exited"
	}
	if p.cmd == nil {
		return "never started"
	}
	ps := p.cmd.ProcessState
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("killed by %v", ws.Signal())
	}
	return fmt.Sprintf("exit status %d", ps.ExitCode())
}

// killGroup kills what is left of the process group, even after its
// leader has exited: whatever the plugin forked goes with it.
func (p *process) killGroup() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		p.cancelStart()
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// closePipes closes gw's ends of the output pipes, which ends go-plugin's
// readers even when another process still holds the write ends.
func (p *process) closePipes() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stdout != nil {
		p.stdout.f.Close()
		p.stderr.Close()
	}
}

// release closes the pipes and removes go-plugin's socket directory, which
// Client.Kill leaves behind when the process never started. Call it after
// Client.Kill, whose readers are done with the pipes by then.
func (p *process) release() {
	p.closePipes()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owner != nil {
		p.owner.Close()
	}
	if p.raw != nil {
		p.raw.close()
	}
	if p.sockDir != "" {
		os.RemoveAll(p.sockDir)
	}
}

// recorder passes stdout through to go-plugin and keeps its first bytes:
// when they are not a handshake, they are what the error should show.
type recorder struct {
	f    *os.File
	mu   sync.Mutex
	head []byte
	eof  bool
}

const recordMax = 200

func (r *recorder) Read(b []byte) (int, error) {
	n, err := r.f.Read(b)
	if n > 0 {
		r.mu.Lock()
		if room := recordMax - len(r.head); room > 0 {
			r.head = append(r.head, b[:min(n, room)]...)
		}
		r.mu.Unlock()
	}
	if errors.Is(err, io.EOF) {
		r.mu.Lock()
		r.eof = true
		r.mu.Unlock()
	}
	return n, err
}

func (r *recorder) atEOF() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.eof
}

// Close is left to release: go-plugin never closes what it reads.
func (r *recorder) Close() error { return nil }

// firstLine is the first line the plugin printed ("" if none).
func (r *recorder) firstLine() (string, bool) {
	if r == nil {
		return "", false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	line, _, _ := strings.Cut(string(r.head), "\n")
	return strings.TrimRight(line, "\r"), len(r.head) > 0
}
