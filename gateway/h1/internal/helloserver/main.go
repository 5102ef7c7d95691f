// Command helloserver serves a hello handler on loopback with gw's h1 or
// with net/http, for a one-shot CPU comparison under wrk (see
// docs/design/h1.md). It prints its address and PID, then serves until
// killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gwhq/gw/gateway/h1"
)

func main() {
	impl := flag.String("impl", "h1", "h1 or net/http")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	body, ctype := []byte("hello world\n"), []string{"text/plain"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = ctype
		w.Write(body)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %d\n", ln.Addr(), os.Getpid())
	switch *impl {
	case "h1":
		s := &h1.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 75 * time.Second}
		log.Fatal(s.Serve(ln))
	case "net/http":
		s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 75 * time.Second}
		log.Fatal(s.Serve(ln))
	default:
		log.Fatalf("unknown -impl %q", *impl)
	}
}
