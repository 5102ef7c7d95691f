// Package cache is uWSGI's cache for an app's runners (uwsgi.cache_*),
// held by gw so that every runner of the app sees the same entries: an LRU
// bounded by bytes, with an expiry per entry. Safe for concurrent use.
package cache

import (
	"container/list"
	"strings"
	"sync"
	"time"
)

// entryOverhead is what an entry costs beyond its key and value (list
// element, map slot, header), counted against the size so a flood of
// tiny entries is bounded too.
const entryOverhead = 96

// Cache is one app's cache.
type Cache struct {
	mu   sync.Mutex
	max  int64
	used int64
	lru  list.List // of *entry, most recently used first
	m    map[string]*list.Element
	now  func() time.Time
}

type entry struct {
	key     string
	val     []byte
	expires time.Time // zero: never
}

// New returns a cache holding at most max bytes (keys, values and
// entryOverhead each).
func New(max int64) *Cache {
	return &Cache{max: max, m: map[string]*list.Element{}, now: time.Now}
}

func cost(key string, val []byte) int64 { return int64(len(key)+len(val)) + entryOverhead }

// live returns key's element unless it is missing or expired (then it is
// removed). Under mu.
func (c *Cache) live(key string) *list.Element {
	el := c.m[key]
	if el == nil {
		return nil
	}
	if e := el.Value.(*entry); !e.expires.IsZero() && !c.now().Before(e.expires) {
		c.remove(el)
		return nil
	}
	return el
}

func (c *Cache) remove(el *list.Element) {
	e := el.Value.(*entry)
	c.lru.Remove(el)
	delete(c.m, e.key)
	c.used -= cost(e.key, e.val)
}

// Get returns key's value (a copy is not made: callers must not modify it).
func (c *Cache) Get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.live(key)
	if el == nil {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*entry).val, true
}

// Exists says whether key is there (unexpired).
func (c *Cache) Exists(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live(key) != nil
}

// Set stores val under key for ttl (0: no expiry). Unless overwrite, an
// existing key is left alone and Set returns false (uWSGI's cache_set;
// cache_update overwrites). An entry larger than the whole cache is
// refused (false); others push out the least recently used ones.
func (c *Cache) Set(key string, val []byte, ttl time.Duration, overwrite bool) bool {
	n := cost(key, val)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > c.max {
		return false
	}
	if el := c.live(key); el != nil {
		if !overwrite {
			return false
		}
		c.remove(el)
	}
	for c.used+n > c.max {
		c.remove(c.lru.Back())
	}
	e := &entry{key: key, val: val}
	if ttl > 0 {
		e.expires = c.now().Add(ttl)
	}
	c.m[key] = c.lru.PushFront(e)
	c.used += n
	return true
}

// Resize sets the bytes the cache may hold (a reload that changed the
// app's cache_size); entries beyond it go, least recently used first.
func (c *Cache) Resize(max int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.max = max
	for c.used > c.max {
		c.remove(c.lru.Back())
	}
}

// Del removes key; false if it was not there.
func (c *Cache) Del(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.live(key)
	if el == nil {
		return false
	}
	c.remove(el)
	return true
}

// Clear removes every key that starts with prefix ("" : all).
func (c *Cache) Clear(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, el := range c.m {
		if strings.HasPrefix(key, prefix) {
			c.remove(el)
		}
	}
}

// Used is the bytes the entries cost now.
func (c *Cache) Used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}
