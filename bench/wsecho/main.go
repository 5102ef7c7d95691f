// Command wsecho measures WebSocket echo round trips per second: each of
// -c connections writes a message and waits for it to come back, for -d
// (after -warm), so it works against any echo server (gw, uWSGI, uvicorn).
// With -idle N it opens N connections instead, checks one echo on each,
// prints "open N" and holds them for -hold, so a script can read RSS.
//
//	go run ./bench/wsecho -url ws://127.0.0.1:8000/echo -c 32 -d 5s
//
// Every loop is bounded by time and by -max round trips per connection.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
)

func main() {
	url := flag.String("url", "", "ws:// URL of an echo endpoint")
	conns := flag.Int("c", 1, "connections")
	dur := flag.Duration("d", 5*time.Second, "measured time")
	warm := flag.Duration("warm", time.Second, "unmeasured time first")
	size := flag.Int("size", 32, "message bytes")
	binary := flag.Bool("binary", false, "binary messages (default text)")
	maxRT := flag.Int("max", 2_000_000, "round trips per connection at most")
	idle := flag.Int("idle", 0, "open this many connections and hold them instead")
	deflate := flag.Bool("deflate", false, "offer permessage-deflate (gw with --websocket-compression on then relays: its own path)")
	hold := flag.Duration("hold", 30*time.Second, "how long -idle holds them")
	flag.Parse()
	if *deflate {
		dialOpts = &websocket.DialOptions{CompressionMode: websocket.CompressionNoContextTakeover}
	}
	if *url == "" {
		log.Fatal("wsecho: -url is required")
	}
	typ := websocket.MessageText
	if *binary {
		typ = websocket.MessageBinary
	}
	msg := bytes.Repeat([]byte("x"), *size)
	if *idle > 0 {
		holdIdle(*url, *idle, *hold, typ, msg)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), *warm+*dur+30*time.Second)
	defer cancel()
	cs := make([]*websocket.Conn, *conns)
	for i := range cs {
		cs[i] = dial(ctx, *url)
	}
	start := time.Now()
	measureFrom, stop := start.Add(*warm), start.Add(*warm+*dur)
	var (
		mu    sync.Mutex
		lat   []time.Duration
		count int
		wg    sync.WaitGroup
	)
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for range *maxRT {
				t0 := time.Now()
				if t0.After(stop) {
					break
				}
				if err := c.Write(ctx, typ, msg); err != nil {
					log.Fatalf("wsecho: write: %v", err)
				}
				_, got, err := c.Read(ctx)
				if err != nil || len(got) != len(msg) {
					log.Fatalf("wsecho: read: %v (%d bytes)", err, len(got))
				}
				if t0.After(measureFrom) {
					mine = append(mine, time.Since(t0))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			count += len(mine)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, c := range cs {
		c.Close(websocket.StatusNormalClosure, "")
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(float64(len(lat)-1)*p)]
	}
	fmt.Printf("rt/s %.0f p50 %v p99 %v n %d\n", float64(count)/dur.Seconds(), pct(0.5), pct(0.99), count)
}

// dialOpts are every connection's: -deflate's offer.
var dialOpts *websocket.DialOptions

func dial(ctx context.Context, url string) *websocket.Conn {
	c, _, err := websocket.Dial(ctx, url, dialOpts)
	if err != nil {
		log.Fatalf("wsecho: dial %s: %v", url, err)
	}
	return c
}

func holdIdle(url string, n int, hold time.Duration, typ websocket.MessageType, msg []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), hold+2*time.Minute)
	defer cancel()
	cs := make([]*websocket.Conn, 0, n)
	for range n {
		c := dial(ctx, url)
		if err := c.Write(ctx, typ, msg); err != nil {
			log.Fatalf("wsecho: write: %v", err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			log.Fatalf("wsecho: read: %v", err)
		}
		cs = append(cs, c)
	}
	fmt.Printf("open %d\n", len(cs))
	os.Stdout.Sync()
	time.Sleep(hold)
	for _, c := range cs {
		c.CloseNow()
	}
}
