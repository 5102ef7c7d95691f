package systemd

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// firstFD is SD_LISTEN_FDS_START: passed sockets begin after stdio.
const firstFD = 3

// Listener is one socket the service manager passed: its name from
// LISTEN_FDNAMES (FileDescriptorName= in the .socket unit), or "" when the
// manager gave none.
type Listener struct {
	net.Listener
	Name string
}

// Listeners returns the sockets passed by socket activation, in fd order:
// LISTEN_FDS of them from fd 3 on, when LISTEN_PID is this process (a
// variable inherited from a parent that was activated is not for us). It
// unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES either way, so runners do
// not mistake themselves for the activated service, and closes the passed
// descriptors once duplicated (close-on-exec) so no runner inherits them.
func Listeners() ([]Listener, error) {
	pid, fds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	if pid == "" || fds == "" || pid != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a count", fds)
	}
	var nameOf []string
	if names != "" {
		nameOf = strings.Split(names, ":")
	}
	out := make([]Listener, 0, n)
	for i := range n {
		fd := firstFD + i
		f := os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd))
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, l := range out {
				l.Close()
			}
			return nil, fmt.Errorf("socket activation: fd %d: %w", fd, err)
		}
		l := Listener{Listener: ln}
		if i < len(nameOf) {
			l.Name = nameOf[i]
		}
		out = append(out, l)
	}
	return out, nil
}

// Names are the listener names gw knows in LISTEN_FDNAMES
// (FileDescriptorName= in gw.socket), each also with a ".N" suffix for the
// Nth more listener of its kind (uwsgi.1). Any other name, such as the
// unit name systemd uses by default, says nothing and is matched by
// position.
var Names = []string{"http", "https", "uwsgi", "fastcgi", "stats"}

// known reports whether name is one of Names, or one with a ".N" suffix.
func known(name string) bool {
	base, n, more := strings.Cut(name, ".")
	if more {
		if i, err := strconv.Atoi(n); err != nil || i < 1 || strconv.Itoa(i) != n {
			return false
		}
	}
	return slices.Contains(Names, base)
}

// Match assigns passed sockets to the configured listeners (names from
// Names, in the order gw lists them): a socket with a known name goes to
// that listener, the others go in order to the configured listeners left.
// A socket no configured listener wants is an error: gw would otherwise
// hold a port open that answers nothing.
func Match(ls []Listener, configured []string) (map[string]net.Listener, error) {
	out := make(map[string]net.Listener, len(ls))
	var unnamed []Listener
	for i, l := range ls {
		if !known(l.Name) {
			unnamed = append(unnamed, l)
			continue
		}
		if !slices.Contains(configured, l.Name) {
			return nil, fmt.Errorf("socket activation: socket %d is named %q, but that listener is not configured (configured: %s)",
				i, l.Name, strings.Join(configured, ", "))
		}
		if out[l.Name] != nil {
			return nil, fmt.Errorf("socket activation: two sockets are named %q", l.Name)
		}
		out[l.Name] = l.Listener
	}
	next := 0
	for _, l := range unnamed {
		for next < len(configured) && out[configured[next]] != nil {
			next++
		}
		if next == len(configured) {
			return nil, fmt.Errorf("socket activation: %d sockets passed, more than the listeners configured (%s)",
				len(ls), strings.Join(configured, ", "))
		}
		out[configured[next]] = l.Listener
	}
	return out, nil
}
