package h1

import (
	"bytes"
	"net"
	"net/http"
	"testing"
	"time"
)

var (
	helloBody  = []byte("hello world\n")
	helloCType = []string{"text/plain"}
)

// hello is the yardstick handler: no allocation of its own, so the
// benchmark counts the server's.
var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = helloCType
	w.Write(helloBody)
})

// BenchmarkHello: keep-alive GET round trips over one real loopback TCP
// connection, h1 against net/http with the same handler. The client is
// allocation-free, so allocs/op is the server's.
func BenchmarkHello(b *testing.B) {
	b.Run("h1", func(b *testing.B) {
		benchHello(b, serve(b, &Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 75 * time.Second}, hello))
	})
	b.Run("net-http", func(b *testing.B) {
		benchHello(b, serveStd(b, &http.Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 75 * time.Second}, hello))
	})
}

func benchHello(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /hello HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	end := append([]byte("\r\n\r\n"), helloBody...)
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := 0
		for !bytes.HasSuffix(buf[:n], end) {
			k, err := c.Read(buf[n:])
			if err != nil {
				b.Fatal(err)
			}
			n += k
		}
	}
}

// BenchmarkWatch is what the disconnect watch costs a request that ends
// before watchAfter: arming and stopping the connection's timer.
func BenchmarkWatch(b *testing.B) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	c := newConn(&Server{}, server, nil)
	b.ReportAllocs()
	for b.Loop() {
		c.watch.arm()
		c.watch.stop()
	}
}
