package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gwhq/gw/internal/gwtest"
)

// Upgrade placement (docs/design/websocket.md, "Placement"): a WebSocket
// session or a taken connection holds no slot once accepted, so the pool
// places upgrades by the connections each runner holds open. Connections
// are opened one after another, each accepted before the next: with the
// busy-slot choice alone every one of them landed on the same runner.

// TestUpgradePlacementASGI: 8 ASGI WebSockets on 2 runners land 4 and 4,
// by the pids the app reports and by /stats' open_conns; once 4 of one
// runner's close, the next 4 all go to it.
func TestUpgradePlacementASGI(t *testing.T) {
	s, url, _ := startWS(t, 2, "", "")
	checkPlacement(t, s, url+"/pid")
}

// TestUpgradePlacementWSGI: the same with sessions of a WSGI app on
// uWSGI's WebSocket API (a thread per session in the runner).
func TestUpgradePlacementWSGI(t *testing.T) {
	py := requireModules(t, "flask")
	cfg := fmt.Sprintf("listen:\n  http: \"127.0.0.1:0\"\n  stats: \"127.0.0.1:0\"\napps:\n  - name: uws\n    path: uwsgi_ws_app:app\n    dir: %s\n    interpreter: %s\n    workers: 2\n    threads: 2\n",
		testdataDir(t), py)
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	checkPlacement(t, s, "ws://"+s.Addr("http")+"/pid")
}

// TestUpgradePlacementFaye: the same with faye-websocket connections
// (rack.hijack, the client's socket handed over to the runner).
func TestUpgradePlacementFaye(t *testing.T) {
	ruby := requireRuby(t, "faye/websocket")
	cfg := fmt.Sprintf("listen:\n  http: \"127.0.0.1:0\"\n  stats: \"127.0.0.1:0\"\napps:\n  - name: raw\n    path: %s\n    interpreter: %s\n    workers: 2\n    threads: 2\n    env: { LOG: %s }\n",
		suitePath("ruby/hijack/config.ru"), ruby, writeFile(t, "events.log", ""))
	s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
	checkPlacement(t, s, "ws://"+s.Addr("http")+"/fayepid")
}

// checkPlacement opens 8 connections to url (whose app sends its pid
// first), one at a time, and checks they spread 4/4 over the 2 runners.
func checkPlacement(t *testing.T, s *gwtest.Server, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type conn struct {
		c   *websocket.Conn
		pid int
	}
	open := func() conn {
		t.Helper()
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatalf("dial %s: %v\n%s", url, err, s.Log())
		}
		_, msg, err := c.Read(ctx)
		pid, perr := strconv.Atoi(string(msg))
		if err != nil || perr != nil {
			t.Fatalf("first message: %q %v %v", msg, err, perr)
		}
		return conn{c, pid}
	}
	var conns []conn
	defer func() {
		for _, c := range conns {
			c.c.CloseNow()
		}
	}()
	byPid := map[int][]int{} // pid -> indexes in conns
	for i := range 8 {
		c := open()
		conns = append(conns, c)
		byPid[c.pid] = append(byPid[c.pid], i)
	}
	if len(byPid) != 2 {
		t.Fatalf("8 connections on %d runners (pid: connections %v), want 4 on each of 2", len(byPid), byPid)
	}
	pids := make([]int, 0, 2)
	for pid, ix := range byPid {
		if len(ix) != 4 {
			t.Fatalf("pid: connections %v, want 4 on each runner", byPid)
		}
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	if got := openConns(t, s); got[pids[0]] != 4 || got[pids[1]] != 4 {
		t.Fatalf("/stats open_conns by pid %v, want 4 for each of %v", got, pids)
	}
	// Close one runner's 4: once gw has seen them end, the next 4 all go
	// to that runner.
	emptied := pids[0]
	for _, i := range byPid[emptied] {
		conns[i].c.Close(websocket.StatusNormalClosure, "bye")
	}
	deadline := time.Now().Add(15 * time.Second)
	for got := openConns(t, s); got[emptied] != 0; got = openConns(t, s) {
		if time.Now().After(deadline) {
			t.Fatalf("open_conns by pid %v 15 s after closing pid %d's", got, emptied)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 4 {
		c := open()
		conns = append(conns, c)
		if c.pid != emptied {
			t.Fatalf("a new connection went to pid %d (open_conns %v), want %d, which had none", c.pid, openConns(t, s), emptied)
		}
	}
	if got := openConns(t, s); got[pids[0]] != 4 || got[pids[1]] != 4 {
		t.Fatalf("/stats open_conns by pid %v, want 4 for each of %v", got, pids)
	}
}

// openConns reads /stats: each runner's open_conns, by pid.
func openConns(t *testing.T, s *gwtest.Server) map[int]int {
	t.Helper()
	code, body := gwtest.Get(t, "http://"+s.Addr("stats")+"/stats")
	var st struct {
		Apps []struct {
			Runners []struct {
				PID   int `json:"pid"`
				Conns int `json:"open_conns"`
			} `json:"runners"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st.Apps) != 1 {
		t.Fatalf("/stats: %d %v %s", code, err, body)
	}
	out := map[int]int{}
	for _, r := range st.Apps[0].Runners {
		out[r.PID] = r.Conns
	}
	return out
}
