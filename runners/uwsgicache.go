package runners

import (
	"bufio"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gwhq/gw/bridge"
	"github.com/gwhq/gw/proto/bridgepb"
	"github.com/gwhq/gw/runners/cache"
	"github.com/gwhq/gw/runners/proc"
)

// uWSGI's cache (uwsgi.cache_*): one per app, held by gw so every runner
// of the app sees the same entries, and kept across the app's reloads
// (Runtime.cache). Each Python runner gets a cache channel, a socketpair
// (--cache-fd): the runner sends a CacheRequest and waits for its
// CacheAnswer, one at a time; a goroutine per runner answers. A channel
// apart from control, so an ASGI app's call (which blocks its event loop,
// as it would under uWSGI) never waits on the loop that reads control.

// CacheSize is the bytes an app's uWSGI cache holds (keys, values and a
// small overhead per entry); the least recently used entries go first.
const CacheSize = 64 << 20

// Cache ops (bridge.proto CacheRequest.op).
const (
	cacheGet = 1 + iota
	cacheSet
	cacheUpdate
	cacheDel
	cacheExists
	cacheClear
)

// appCaches holds each app's cache by name, across reloads.
type appCaches struct {
	mu sync.Mutex
	m  map[string]*cache.Cache
}

func (a *appCaches) get(app string) *cache.Cache {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]*cache.Cache{}
	}
	c := a.m[app]
	if c == nil {
		c = cache.New(CacheSize)
		a.m[app] = c
	}
	return c
}

// cacheChannel adds the cache channel to a runner's start: the runner's
// end as the next inherited fd (--cache-fd).
func (l *bridgeLauncher) cacheChannel(spec *proc.Spec, files *[]*os.File) (net.Conn, error) {
	if l.cache == nil {
		return nil, nil
	}
	c, f, err := socketpair()
	if err != nil {
		return nil, err
	}
	fd := 3 + len(*files)
	*files = append(*files, f)
	spec.Args = append(spec.Args, "--cache-fd", strconv.Itoa(fd))
	return c, nil
}

// serveCache answers a runner's cache requests until the channel closes
// (the runner exited, or the transport's Close). A malformed request ends
// it: the runner's next call then fails.
func serveCache(conn net.Conn, c *cache.Cache) {
	defer conn.Close()
	rd := bridge.NewReader(bufio.NewReader(conn))
	for {
		var req bridgepb.CacheRequest
		if err := rd.Message(bridge.CacheRequest, &req); err != nil {
			return
		}
		var ans bridgepb.CacheAnswer
		key := string(req.Key)
		switch req.Op {
		case cacheGet:
			ans.Value, ans.Ok = c.Get(key)
		case cacheSet, cacheUpdate:
			ttl := time.Duration(min(req.Expires, uint64(1<<31))) * time.Second
			ans.Ok = c.Set(key, req.Value, ttl, req.Op == cacheUpdate)
		case cacheDel:
			ans.Ok = c.Del(key)
		case cacheExists:
			ans.Ok = c.Exists(key)
		case cacheClear:
			c.Clear(key)
			ans.Ok = true
		default:
			return
		}
		if err := bridge.WriteMessage(conn, bridge.CacheAnswer, &ans); err != nil {
			return
		}
	}
}
