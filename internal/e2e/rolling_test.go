package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// TestRollingRestartBehindNginx: three gw replicas behind a real nginx
// upstream; each in turn gets SIGTERM and is started again while a bounded
// load runs through nginx. No request may fail.
func TestRollingRestartBehindNginx(t *testing.T) {
	py := gwtest.RequirePython(t)
	var ports []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, ln.Addr().String())
		ln.Close()
	}
	start := func(addr string) *gwtest.Server {
		return gwtest.Start(t, "--interpreter", py, "--workers", "2", "--http", addr,
			"--shutdown-delay", "500ms", app("suite.py"))
	}
	replicas := make([]*gwtest.Server, 3)
	for i, p := range ports {
		replicas[i] = start(p)
	}
	var servers strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&servers, "server %s max_fails=0;", p)
	}
	base := gwtest.StartNginx(t, "upstream gw { "+servers.String()+" }",
		"location / { proxy_pass http://gw; proxy_next_upstream error timeout http_502 http_503; }")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *gwtest.LoadResult)
	go func() { done <- gwtest.Load(ctx, base+"/pid", 8) }()
	time.Sleep(500 * time.Millisecond)
	for i, p := range ports {
		syscall.Kill(replicas[i].PID(), syscall.SIGTERM)
		<-replicas[i].Done()
		if code := replicas[i].ExitCode(); code != 0 {
			t.Errorf("replica %d exited %d", i, code)
		}
		replicas[i] = start(p)
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	res := <-done
	t.Logf("rolling restart of 3 replicas: %v", res)
	if res.Failed > 0 || res.OK < 500 {
		t.Errorf("rolling restart: %v; want no failed request", res)
	}
}
