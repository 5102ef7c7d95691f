package proxyproto

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Listener accepts connections that start with a PROXY header, from the
// peers Trusted allows only: haproxy's spec has the receiver expect the
// header on every connection of such a port and never guess whether one
// is there, so a connection from any other peer is closed at once (it
// could otherwise claim any address), and one whose header is missing or
// malformed is closed at its first read.
type Listener struct {
	net.Listener
	// Trusted reports whether a peer may send the header.
	Trusted func(netip.Addr) bool
	// Timeout bounds the wait for the header (0 = none).
	Timeout time.Duration
	// Refused counts connections from untrusted peers, Malformed those
	// whose header was missing, malformed or late.
	Refused, Malformed atomic.Int64
	// OnError hears about each refused or malformed connection (nil =
	// nobody); gw logs it at debug level.
	OnError func(peer net.Addr, err error)
}

// ErrUntrusted is the reason a connection from an untrusted peer is refused.
var ErrUntrusted = errors.New("proxyproto: PROXY header from a peer not in proxy.trusted")

// Accept returns the next connection from a trusted peer; its header is
// read by the connection's first use (in the server's goroutine for that
// connection, so one slow peer does not stall the accept loop).
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok && l.Trusted(ta.AddrPort().Addr().Unmap()) {
			return &Conn{Conn: c, l: l}, nil
		}
		l.Refused.Add(1)
		if l.OnError != nil {
			l.OnError(c.RemoteAddr(), ErrUntrusted)
		}
		c.Close()
	}
}

// Conn is an accepted connection whose addresses are the ones its PROXY
// header gave.
type Conn struct {
	net.Conn
	l      *Listener
	once   sync.Once
	err    error  // the header could not be read: every Read fails
	rest   []byte // read past the header: the client's first bytes
	remote net.Addr
	local  net.Addr
}

// init reads the header once, before anything else uses the connection.
func (c *Conn) init() { c.once.Do(c.readHeader) }

func (c *Conn) readHeader() {
	c.remote, c.local = c.Conn.RemoteAddr(), c.Conn.LocalAddr()
	if t := c.l.Timeout; t > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(t))
		defer c.Conn.SetReadDeadline(time.Time{})
	}
	// Most headers and the request after them arrive in one segment:
	// 256 bytes take a whole v1 header, a v2 one with a few TLVs.
	buf := make([]byte, 0, 256)
	for {
		h, n, err := Parse(buf)
		if err == nil {
			if !h.Local {
				c.remote, c.local = net.TCPAddrFromAddrPort(h.Src), net.TCPAddrFromAddrPort(h.Dst)
			}
			c.rest = buf[n:]
			return
		}
		if !errors.Is(err, ErrShort) {
			c.fail(err)
			return
		}
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(cap(buf), MaxV2+1-len(buf)))...)[:len(buf)]
		}
		m, rerr := c.Conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if rerr != nil && m == 0 {
			if errors.Is(rerr, io.EOF) && len(buf) == 0 {
				// A port check (a bare connect and close): nothing to
				// count as malformed.
				c.err = rerr
				return
			}
			c.fail(fmt.Errorf("%w: %w", ErrInvalid, rerr))
			return
		}
	}
}

func (c *Conn) fail(err error) {
	c.err = err
	c.l.Malformed.Add(1)
	if c.l.OnError != nil {
		c.l.OnError(c.Conn.RemoteAddr(), err)
	}
	c.Conn.Close()
}

// Read returns the bytes read past the header first.
func (c *Conn) Read(b []byte) (int, error) {
	c.init()
	if c.err != nil {
		return 0, c.err
	}
	if len(c.rest) > 0 {
		n := copy(b, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// RemoteAddr is the client's address from the header. Servers ask for it
// first thing in a connection's goroutine, which is when the header is read.
func (c *Conn) RemoteAddr() net.Addr { c.init(); return c.remote }

// LocalAddr is the address the client connected to, from the header.
func (c *Conn) LocalAddr() net.Addr { c.init(); return c.local }

// SetDeadline and SetReadDeadline come after the header, so the header's
// own bound does not undo them.
func (c *Conn) SetDeadline(t time.Time) error { c.init(); return c.Conn.SetDeadline(t) }

func (c *Conn) SetReadDeadline(t time.Time) error { c.init(); return c.Conn.SetReadDeadline(t) }

// ReadFrom keeps sendfile(2) for answers written to the connection.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

// CloseWrite half-closes, as the protocol servers do before a lingering close.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type writerOnly struct{ io.Writer }
