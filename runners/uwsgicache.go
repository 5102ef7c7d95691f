package runners

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

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

// CacheSize is the bytes an app's uWSGI cache holds unless its
// cache_size says (keys, values and a small overhead per entry); the
// least recently used entries go first.
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

// appShared holds by app name what every runner of a Python app shares,
// across the app's reloads, so that the runners of two generations, which
// serve side by side while the old one drains, share them too: the
// uwsgi.cache_* and the uwsgi.lock() file (whose record locks also elect
// the runner that fires timers, cron and the spooler: gw_wsgi.py section 11).
type appShared struct {
	mu sync.Mutex
	m  map[string]*shared
}

type shared struct {
	cache *cache.Cache
	lock  *os.File
}

// get returns app's cache, resized to size bytes (0: CacheSize), and its
// lock file.
func (a *appShared) get(app string, size int64) (*cache.Cache, *os.File, error) {
	if size <= 0 {
		size = CacheSize
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]*shared{}
	}
	s := a.m[app]
	if s == nil {
		lock, err := uwsgiLockFile()
		if err != nil {
			return nil, nil, err
		}
		s = &shared{cache: cache.New(size), lock: lock}
		a.m[app] = s
	}
	s.cache.Resize(size)
	return s.cache, s.lock, nil
}

// UwsgiLocks returns each Python app's lock file by app name: what a
// SIGUSR2 upgrade passes to the next gw, so that uwsgi.lock() and the
// timer token hold across both gws' runners while the old ones drain.
func (rt *Runtime) UwsgiLocks() map[string]*os.File {
	rt.shared.mu.Lock()
	defer rt.shared.mu.Unlock()
	out := make(map[string]*os.File, len(rt.shared.m))
	for app, s := range rt.shared.m {
		out[app] = s.lock
	}
	return out
}

// AdoptUwsgiLock makes f app's lock file (one the previous gw passed):
// call it before the app's first launch.
func (rt *Runtime) AdoptUwsgiLock(app string, f *os.File) {
	rt.shared.mu.Lock()
	defer rt.shared.mu.Unlock()
	if rt.shared.m == nil {
		rt.shared.m = map[string]*shared{}
	}
	if rt.shared.m[app] == nil {
		rt.shared.m[app] = &shared{cache: cache.New(CacheSize), lock: f}
	}
}

// uwsgiLockFile is an app's uwsgi.lock() file: an anonymous memfd, so no
// path exists for another user to open and no directory must be writable
// by the runners' user. Its runners inherit it. It lives as long as gw:
// one descriptor per Python app name ever served.
func uwsgiLockFile() (*os.File, error) {
	fd, err := unix.MemfdCreate("gw-uwsgi-lock", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("uwsgi lock file: %w", err)
	}
	return os.NewFile(uintptr(fd), "gw-uwsgi-lock"), nil
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
