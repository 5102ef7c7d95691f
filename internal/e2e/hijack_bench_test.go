package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestFayeEchoRate measures WebSocket echo round trips per second of the
// faye-websocket app (testdata/ruby/hijack, /faye) at 1 and 32
// connections, under gw and under Puma (when installed), in one run. Only
// with GW_BENCH_WS=1: it is a measurement, not a check.
func TestFayeEchoRate(t *testing.T) {
	if os.Getenv("GW_BENCH_WS") != "1" {
		t.Skip("a measurement: set GW_BENCH_WS=1")
	}
	ruby := requireRuby(t, "faye/websocket")
	s, _, _ := startHijack(t, ruby, "ruby/hijack/config.ru", "    threads: 4\n", "", false)
	targets := [][2]string{{"gw", "ws://" + s.Addr("http") + "/faye"}}
	if puma, err := exec.LookPath("puma"); err == nil {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		cmd := exec.Command(puma, "-t", "4:4", "-b", "tcp://"+addr, suitePath("ruby/hijack/config.ru"))
		cmd.Env = append(os.Environ(), "RACK_ENV=deployment")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
		}
		targets = append(targets, [2]string{"puma", "ws://" + addr + "/faye"})
	}
	for _, conns := range []int{1, 32} {
		for _, tg := range targets {
			rate := echoRate(t, tg[1], conns, 5*time.Second)
			t.Logf("%-4s %2d connections: %7.0f round trips/s", tg[0], conns, rate)
			fmt.Printf("faye echo %s %d conns: %.0f rt/s\n", tg[0], conns, rate)
		}
	}
}

// echoRate runs conns clients, each sending a 32-byte text message and
// waiting for it back, for d; it returns round trips per second.
func echoRate(t *testing.T, url string, conns int, d time.Duration) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	msg := []byte(strings.Repeat("x", 32))
	start := time.Now()
	end := start.Add(d)
	for range conns {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.CloseNow()
			for time.Now().Before(end) {
				if c.Write(ctx, websocket.MessageText, msg) != nil {
					return
				}
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}
