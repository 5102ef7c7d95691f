package proxyproto

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// serve accepts one connection on a Listener around a loopback socket and
// hands it to check; dial is what the client sends.
func serve(t *testing.T, timeout time.Duration, send string) (net.Conn, *Listener) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Listener: raw, Timeout: timeout, Trusted: func(netip.Addr) bool { return true }}
	t.Cleanup(func() { l.Close() })
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, send); err != nil {
		t.Fatal(err)
	}
	sc, err := l.Accept()
	if err != nil {
		return nil, l
	}
	t.Cleanup(func() { sc.Close() })
	return sc, l
}

func TestListenerV1(t *testing.T) {
	sc, _ := serve(t, time.Second, "PROXY TCP4 203.0.113.7 198.51.100.2 4711 443\r\nGET / HTTP/1.1\r\n")
	if got := sc.RemoteAddr().String(); got != "203.0.113.7:4711" {
		t.Errorf("RemoteAddr = %s", got)
	}
	if got := sc.LocalAddr().String(); got != "198.51.100.2:443" {
		t.Errorf("LocalAddr = %s", got)
	}
	buf := make([]byte, 16)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "GET / HTTP/1.1\r\n" {
		t.Errorf("after the header: %q, %v", buf, err)
	}
}

func TestListenerMalformed(t *testing.T) {
	sc, l := serve(t, time.Second, "GET / HTTP/1.1\r\n\r\n")
	if _, err := sc.Read(make([]byte, 10)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Read = %v, want ErrInvalid", err)
	}
	if l.Malformed.Load() != 1 {
		t.Errorf("Malformed = %d", l.Malformed.Load())
	}
}

func TestListenerTimeout(t *testing.T) {
	sc, l := serve(t, 50*time.Millisecond, "PROXY TCP4 203.0.113.7")
	if _, err := sc.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read = %v, want the header's deadline", err)
	}
	if l.Malformed.Load() != 1 {
		t.Errorf("Malformed = %d", l.Malformed.Load())
	}
}

func TestListenerUntrusted(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan error, 1)
	l := &Listener{Listener: raw, Trusted: func(a netip.Addr) bool { return a != netip.MustParseAddr("127.0.0.1") },
		OnError: func(_ net.Addr, err error) { refused <- err }}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept() // returns at Close below, never with the connection
		accepted <- c
	}()
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "PROXY TCP4 203.0.113.7 198.51.100.2 4711 443\r\n")
	if err := <-refused; !errors.Is(err, ErrUntrusted) {
		t.Errorf("OnError got %v", err)
	}
	// gw closed it: the client reads EOF (or a reset), not an answer.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("client read %d, %v; want the connection closed", n, err)
	}
	l.Close()
	if sc := <-accepted; sc != nil {
		t.Errorf("accepted %v from an untrusted peer", sc.RemoteAddr())
	}
	if l.Refused.Load() != 1 {
		t.Errorf("Refused = %d", l.Refused.Load())
	}
}
