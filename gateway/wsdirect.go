package gateway

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A message from the app is written to the client by the session
// channel's reader itself when that write cannot block (docs/design/
// websocket.md, "One hand-off per message"): the kernel has room for it
// in the client socket's send buffer. Otherwise it is queued for the
// session's relay goroutine, as before, so a slow client still stalls
// only its own session.

// hijackRecorder hands websocket.Accept the client's connection and
// keeps it, so the relay can ask the kernel about its send buffer.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijackRecorder) Unwrap() http.ResponseWriter { return h.ResponseWriter }

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = c
	return c, brw, err
}

// SO_MEMINFO's fields (linux/sock_diag.h).
const (
	skMeminfoSndbuf     = 3
	skMeminfoWmemQueued = 5
	skMeminfoVars       = 9
)

// sendRoom asks the kernel how much a TCP socket's send buffer takes.
type sendRoom struct{ rc syscall.RawConn }

// newSendRoom is nil for a connection without a socket of its own.
func newSendRoom(c net.Conn) *sendRoom {
	for {
		switch t := c.(type) {
		case *tls.Conn:
			c = t.NetConn()
			continue
		case interface{ NetConn() net.Conn }: // proxyproto.Conn and the like
			c = t.NetConn()
			continue
		case syscall.Conn:
			rc, err := t.SyscallConn()
			if err != nil {
				return nil
			}
			return &sendRoom{rc}
		}
		return nil
	}
}

// fits reports whether a write of n bytes (a frame, TLS record overhead
// included by the margin) goes into the send buffer at once:
// SO_MEMINFO's queued bytes count the kernel's buffer overhead too, which
// is what tcp_sendmsg compares with the buffer's size before it waits.
func (r *sendRoom) fits(n int) bool {
	var info [skMeminfoVars]uint32
	size := uint32(unsafe.Sizeof(info))
	var errno syscall.Errno
	err := r.rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
	})
	if err != nil || errno != 0 {
		return false
	}
	free := int64(info[skMeminfoSndbuf]) - int64(info[skMeminfoWmemQueued])
	return free >= 2*int64(n)+4096
}
