// Package systemd speaks the two protocols a service uses to cooperate with
// systemd, without libsystemd: sd_notify(3) readiness messages and socket
// activation (sd_listen_fds(3)). Both work the same under any supervisor that
// implements them (s6, runit's sd-notify shims, Kubernetes' systemd-in-pod).
package systemd

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// Notifier sends state changes to the service manager. The zero or nil
// Notifier sends nothing, so callers need not check whether gw runs under
// systemd.
type Notifier struct {
	addr *net.UnixAddr
}

// NewNotifier reads NOTIFY_SOCKET and unsets it, so runners started later do
// not inherit a channel that speaks for gw (with NotifyAccess=all they could
// otherwise report gw ready or stopping). It returns nil when gw does not run
// under a service manager that wants notifications.
func NewNotifier() *Notifier {
	path := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	// An abstract socket is written "@name"; Go's syscall package turns a
	// leading '@' into the NUL byte the kernel expects, as sd_notify does.
	return &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// File is a socket connected to the service manager's notification
// socket, for a gw this one starts to take its place (an upgrade): that gw
// cannot read NOTIFY_SOCKET, gone from the environment so runners never
// see it, and learns it from this socket's peer (NotifierFromFile).
func (n *Notifier) File() (*os.File, error) {
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return nil, fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	return c.File()
}

// NotifierFromFile is the Notifier for the socket f (from File) is
// connected to. It takes f.
func NotifierFromFile(f *os.File) (*Notifier, error) {
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	addr, ok := c.RemoteAddr().(*net.UnixAddr)
	if !ok || addr.Name == "" {
		return nil, fmt.Errorf("sd_notify: %v is not a notification socket", c.RemoteAddr())
	}
	return &Notifier{addr: &net.UnixAddr{Name: addr.Name, Net: "unixgram"}}, nil
}

// Notify sends one message of newline-separated VAR=value assignments, as
// sd_notify(3) does: one datagram per call, so systemd sees them atomically.
func (n *Notifier) Notify(state ...string) error {
	if n == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(strings.Join(state, "\n") + "\n")); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// The messages gw sends (sd_notify(3) "Well-known assignments").
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// MainPID says that pid is the service's main process from now on: sent by
// the old gw at an upgrade, the one process NotifyAccess=main hears.
func MainPID(pid int) string { return fmt.Sprintf("MAINPID=%d", pid) }

// Reloading is the message for the start of a reload. Type=notify-reload
// (systemd 253+) requires MONOTONIC_USEC with it, so systemd can tell this
// reload's READY=1 from an earlier one.
func Reloading() []string {
	return []string{"RELOADING=1", fmt.Sprintf("MONOTONIC_USEC=%d", monotonicUsec())}
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd
// compares against. Go's time package hides its monotonic reading, and
// syscall has no ClockGettime wrapper on linux.
func monotonicUsec() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Sec*1e6 + ts.Nsec/1e3
}
