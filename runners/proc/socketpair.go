package proc

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// Socketpair makes a connected pair of unix sockets of type sotype
// (syscall.SOCK_STREAM, SOCK_SEQPACKET): gw's end on the network poller,
// and the other as a file to hand to a child (ExtraFiles, SCM_RIGHTS).
// Both are close-on-exec: only what a child is given explicitly reaches it.
func Socketpair(sotype int, name string) (net.Conn, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, sotype|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), name)
	defer ours.Close() // FileConn dups it
	c, err := net.FileConn(ours)
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return c, os.NewFile(uintptr(fds[1]), name+"-peer"), nil
}
