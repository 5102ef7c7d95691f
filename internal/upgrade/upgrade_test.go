package upgrade

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// childMode tells the test binary, started again by Upgrade, what to be:
// "fail" exits 1 before Ready; "serve" takes the listener, reports ready
// and answers one connection with its pid.
const childMode = "GW_UPGRADE_TEST_CHILD"

func TestMain(m *testing.M) {
	if Started() {
		os.Exit(child(os.Getenv(childMode)))
	}
	os.Exit(m.Run())
}

func child(mode string) int {
	if mode == "fail" {
		return 1
	}
	u, err := New(10 * time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ln, err := u.Listener("http", "127.0.0.1:0")
	if err != nil || ln == nil {
		fmt.Fprintln(os.Stderr, "no inherited listener:", err)
		return 3
	}
	if os.Getenv(sentinel) != "" {
		fmt.Fprintln(os.Stderr, "tableflip's variable left for runners")
		return 4
	}
	if err := u.Ready(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 5
	}
	c, err := ln.Accept()
	if err != nil {
		return 6
	}
	fmt.Fprintf(c, "%d\n", os.Getpid())
	c.Close()
	return 0
}

// TestUpgrade runs real upgrades of the test binary: a new process that
// exits before it is ready leaves the old one in charge; then one that
// becomes ready gets the listener, by name and address, and reports its
// pid.
func TestUpgrade(t *testing.T) {
	u, err := New(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := u.Pass("http", "127.0.0.1:0", ln); err != nil {
		t.Fatal(err)
	}
	if err := u.Ready(); err != nil {
		t.Fatal(err)
	}

	t.Setenv(childMode, "fail")
	if pid, err := u.Upgrade(); err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("upgrade to a failing process: pid %d, err %v; want its exit status", pid, err)
	}

	t.Setenv(childMode, "serve")
	pid, err := u.Upgrade()
	if err != nil {
		t.Fatal(err)
	}
	if pid <= 0 || pid == os.Getpid() {
		t.Fatalf("new pid %d", pid)
	}
	// The old process stops accepting; the new one answers on the socket.
	addr := ln.Addr().String()
	ln.Close()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := strconv.Atoi(strings.TrimSpace(line)); got != pid {
		t.Errorf("answered by pid %q, upgrade reported %d", line, pid)
	}
	if _, err := u.Upgrade(); err == nil {
		t.Error("a second upgrade of an upgraded process succeeded")
	}
}
