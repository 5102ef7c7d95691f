package sdk

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gwhq/gw/proto/pluginpb"
	"github.com/gwhq/gw/runners/goplugin/internal/wire"
)

// Hijacking (plugin.proto, "Raw connections"): for an upgrade request gw
// sends the plugin its end of the client's connection ahead of the request
// on the socket named by wire.RawFDEnv. The ResponseWriter's Hijack takes
// it; gw then copies bytes between the client and that socket.

// errNoRaw: Hijack on a request whose connection gw did not offer (not an
// HTTP/1.1 upgrade request, HTTP/2, or a gw without raw connections).
var errNoRaw = errors.New("sdk: this request's connection cannot be hijacked: gw offers it only for HTTP/1.1 upgrade requests (Connection: upgrade, Upgrade: ...)")

// rawWait bounds the wait for a connection gw sent before the request: it
// is normally in the socket already when the handler asks.
const rawWait = 5 * time.Second

// rawConns holds the connections gw sent, by id, until their request ends
// (abandon), whether it took its connection or not. One goroutine reads
// the socket; requests wait on their entry.
type rawConns struct {
	mu sync.Mutex
	m  map[uint32]*rawEntry
}

type rawEntry struct {
	f         *os.File
	arrived   chan struct{} // closed once f is set
	abandoned bool          // the request ended first: close f on arrival
}

// startRaw reads the raw-connection socket if gw passed one; nil if not.
func startRaw(log hclog.Logger) *rawConns {
	fd, err := strconv.Atoi(os.Getenv(wire.RawFDEnv))
	if err != nil || fd < 3 {
		return nil
	}
	os.Unsetenv(wire.RawFDEnv) // the handler's children have no such fd
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "gw-raw")
	c, err := net.FileConn(f)
	f.Close()
	uc, ok := c.(*net.UnixConn)
	if err != nil || !ok {
		log.Error("raw-connection socket unusable: connections cannot be hijacked", "err", err)
		return nil
	}
	rc := &rawConns{m: make(map[uint32]*rawEntry)}
	// Ends when gw closes its end (the process exits then too).
	go rc.read(uc, log)
	return rc
}

func (rc *rawConns) read(c *net.UnixConn, log hclog.Logger) {
	defer c.Close()
	var b [4]byte
	oob := make([]byte, syscall.CmsgSpace(4))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(b[:], oob)
		if err != nil {
			return
		}
		f := parseRights(oob[:oobn])
		if n != 4 || f == nil {
			log.Error("raw-connection socket: malformed message", "bytes", n)
			if f != nil {
				f.Close()
			}
			continue
		}
		rc.arrive(binary.LittleEndian.Uint32(b[:]), f)
	}
}

// parseRights is the one descriptor an SCM_RIGHTS message carries.
func parseRights(oob []byte) *os.File {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) != 1 {
		return nil
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil
	}
	for _, extra := range fds[1:] {
		syscall.Close(extra)
	}
	syscall.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), "gw-raw-conn")
}

func (rc *rawConns) entry(id uint32) *rawEntry {
	e := rc.m[id]
	if e == nil {
		e = &rawEntry{arrived: make(chan struct{})}
		rc.m[id] = e
	}
	return e
}

func (rc *rawConns) arrive(id uint32, f *os.File) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	e := rc.entry(id)
	if e.abandoned {
		delete(rc.m, id)
		f.Close()
		return
	}
	e.f = f
	close(e.arrived)
}

// take waits for connection id and hands it over.
func (rc *rawConns) take(ctx context.Context, id uint32) (*os.File, error) {
	rc.mu.Lock()
	e := rc.entry(id)
	rc.mu.Unlock()
	t := time.NewTimer(rawWait)
	defer t.Stop()
	select {
	case <-e.arrived:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("sdk: connection %d did not arrive from gw within %v", id, rawWait)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	f := e.f // the entry stays until abandon: a second take finds it taken
	e.f = nil
	if f == nil {
		return nil, errors.New("sdk: connection already taken")
	}
	return f, nil
}

// abandon ends connection id's entry at the end of its request: a
// connection not taken is closed, now or when it arrives.
func (rc *rawConns) abandon(id uint32) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	e := rc.entry(id)
	select {
	case <-e.arrived:
		if e.f != nil {
			e.f.Close()
		}
		delete(rc.m, id)
	default:
		e.abandoned = true
	}
}

// Hijack hands the handler the client's connection, as net/http's does: a
// head set with WriteHeader (coder/websocket writes its 101 first) and any
// body bytes written so far go out on it first, as HTTP/1.1. It works only
// for upgrade requests (errNoRaw otherwise) and before the head left.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	switch {
	case w.hijacked:
		return nil, nil, http.ErrHijacked
	case w.raws == nil:
		return nil, nil, errNoRaw
	case w.headSent:
		return nil, nil, errors.New("sdk: Hijack after the response head was sent to gw")
	}
	f, err := w.raws.take(w.ctx, w.rawID)
	if err != nil {
		return nil, nil, err
	}
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("sdk: hijack: %w", err)
	}
	if w.status != 0 {
		bw := bufio.NewWriter(c)
		fmt.Fprintf(bw, "HTTP/1.1 %03d %s\r\n", w.status, http.StatusText(w.status))
		w.header.Write(bw)
		bw.WriteString("\r\n")
		bw.Write(w.buf)
		if err := bw.Flush(); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("sdk: hijack: %w", err)
		}
	}
	if err := w.send(&pluginpb.Response{Hijacked: true}); err != nil {
		c.Close()
		return nil, nil, err
	}
	w.hijacked, w.head, w.buf = true, nil, nil
	return c, bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)), nil
}
