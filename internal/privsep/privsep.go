// Package privsep is the part of gw that keeps root after gw itself drops to
// the runners' user (--uid): a helper process, started before the drop,
// that does the only two things gw still needs root for.
//
//   - It reads the HTTPS certificate and key on request, so SIGHUP can load
//     a renewed pair whose key only root may read. The app shares gw's uid
//     after the drop, so the key must not be made readable to that uid.
//   - It removes gw's runtime directory when gw goes away. The directory and
//     the shims in it stay root's, so the app's user cannot rewrite code
//     that later runners execute, and only root can remove them.
//
// This is nginx's split (its master keeps root and re-reads certificates
// at SIGHUP, the workers that handle traffic never can) and OpenSSH's
// privilege-separation monitor, cut down to fixed paths: what the helper
// reads and removes is set when it starts, so a gw taken over by the app
// cannot make it read anything else. Requests and answers are JSON lines
// over a socketpair; EOF on it (gw exited, even by SIGKILL) ends the helper.
package privsep

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Paths are what the helper may touch, fixed when it starts.
type Paths struct {
	Cert, Key  string // the HTTPS key pair, read on request ("" = none)
	RuntimeDir string // removed once gw has gone ("" = none)
}

// Args is the helper's command line after the program name and command.
func (p Paths) Args() []string {
	return []string{"--cert", p.Cert, "--key", p.Key, "--runtime-dir", p.RuntimeDir}
}

// request and answer are the wire messages; one JSON line each.
type (
	request struct {
		Op string `json:"op"` // "keypair"
	}
	answer struct {
		Cert []byte `json:"cert,omitempty"`
		Key  []byte `json:"key,omitempty"`
		Err  string `json:"err,omitempty"`
	}
)

// maxPEM bounds what the helper reads of each file: a certificate chain
// is a few KiB; a wrong path must not make it read a disk image.
const maxPEM = 1 << 20

// Helper is gw's end of a running helper.
type Helper struct {
	mu   sync.Mutex // one request at a time
	conn net.Conn
	r    *bufio.Reader
	cmd  *exec.Cmd
}

// Start runs the helper as `exe command p.Args()...`, with the same
// credentials as the caller: call it while still root. exe is gw's own
// binary; its command must call Serve.
func Start(exe, command string, p Paths) (*Helper, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("privsep: socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "privsep"), os.NewFile(uintptr(fds[1]), "privsep")
	defer theirs.Close()
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, fmt.Errorf("privsep: %w", err)
	}
	cmd := exec.Command(exe, append([]string{command}, p.Args()...)...)
	cmd.Args[0] = "gw"                  // for ps, rather than /proc/self/exe
	cmd.ExtraFiles = []*os.File{theirs} // fd 3
	cmd.Env = []string{}                // nothing of gw's environment steers it
	cmd.Dir = "/"
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("privsep: start helper: %w", err)
	}
	return &Helper{conn: conn, r: bufio.NewReader(conn), cmd: cmd}, nil
}

// PID is the helper's process id (0 for a nil Helper).
func (h *Helper) PID() int {
	if h == nil {
		return 0
	}
	return h.cmd.Process.Pid
}

// KeyPair asks the helper for the PEM contents of the certificate and key.
func (h *Helper) KeyPair() (certPEM, keyPEM []byte, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Bounded: a helper stuck on a hung file system must not hang a reload.
	h.conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer h.conn.SetDeadline(time.Time{})
	if err := json.NewEncoder(h.conn).Encode(request{Op: "keypair"}); err != nil {
		return nil, nil, fmt.Errorf("privsep: ask helper: %w", err)
	}
	line, err := h.r.ReadBytes('\n')
	if err != nil {
		return nil, nil, fmt.Errorf("privsep: helper answer: %w", err)
	}
	var a answer
	if err := json.Unmarshal(line, &a); err != nil {
		return nil, nil, fmt.Errorf("privsep: helper answer: %w", err)
	}
	if a.Err != "" {
		return nil, nil, errors.New(a.Err)
	}
	return a.Cert, a.Key, nil
}

// Close ends the helper: it removes the runtime directory and exits. Close
// waits for that, up to 10 s. A nil Helper is fine.
func (h *Helper) Close() error {
	if h == nil {
		return nil
	}
	h.conn.Close()
	done := make(chan error, 1)
	// Ends when the helper exits; its EOF came just above.
	go func() { done <- h.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		// Root's process: gw, no longer root, cannot kill it; it will
		// exit by itself once its removal is done.
		return errors.New("privsep: helper still removing the runtime directory after 10s")
	}
}

// Serve is the helper's main loop: it answers requests on conn until EOF,
// then removes p.RuntimeDir. Terminal and service-manager signals are
// ignored, so a Ctrl-C or systemd's SIGTERM to the whole group cannot end
// it before gw is gone and the directory removed.
func Serve(conn io.ReadWriter, p Paths) error {
	if err := checkRuntimeDir(p.RuntimeDir); err != nil {
		return err
	}
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	err := answerAll(conn, p)
	if p.RuntimeDir != "" {
		if rerr := os.RemoveAll(p.RuntimeDir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove runtime dir: %w", rerr))
		}
	}
	return err
}

// checkRuntimeDir refuses a runtime directory that runners.NewRuntime did
// not make: the helper removes it as root, so a slip (a hand-run helper, a
// wrong argument) must not remove anything else.
func checkRuntimeDir(dir string) error {
	if dir == "" {
		return nil
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("privsep: runtime dir: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !filepath.IsAbs(dir) || !strings.HasPrefix(filepath.Base(dir), "gw-") || !fi.IsDir() ||
		!ok || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("privsep: %s is not a gw runtime dir (an absolute gw-* directory of uid %d)", dir, os.Geteuid())
	}
	return nil
}

func answerAll(conn io.ReadWriter, p Paths) error {
	r := bufio.NewReader(conn)
	enc := json.NewEncoder(conn)
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var req request
		var a answer
		switch err := json.Unmarshal(line, &req); {
		case err != nil:
			a.Err = fmt.Sprintf("privsep: bad request: %v", err)
		case req.Op == "keypair":
			a = keyPair(p)
		default:
			a.Err = fmt.Sprintf("privsep: unknown request %q", req.Op)
		}
		if err := enc.Encode(a); err != nil {
			return err
		}
	}
}

func keyPair(p Paths) answer {
	if p.Cert == "" || p.Key == "" {
		return answer{Err: "privsep: no certificate and key configured"}
	}
	var a answer
	var err error
	if a.Cert, err = readPEM(p.Cert); err == nil {
		a.Key, err = readPEM(p.Key)
	}
	if err != nil {
		return answer{Err: err.Error()}
	}
	return a
}

func readPEM(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEM+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxPEM {
		return nil, fmt.Errorf("%s: larger than %d bytes; not a PEM file", path, maxPEM)
	}
	return b, nil
}
