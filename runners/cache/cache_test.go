package cache

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSetGetUpdateDel(t *testing.T) {
	c := New(1 << 20)
	if _, ok := c.Get("a"); ok || c.Exists("a") || c.Del("a") {
		t.Fatal("empty cache has a")
	}
	if !c.Set("a", []byte("1"), 0, false) {
		t.Fatal("set a")
	}
	if c.Set("a", []byte("2"), 0, false) {
		t.Error("set of an existing key overwrote it (uWSGI's cache_set does not)")
	}
	if v, ok := c.Get("a"); !ok || string(v) != "1" {
		t.Errorf("a = %q %v", v, ok)
	}
	if !c.Set("a", []byte("22"), 0, true) {
		t.Error("update a")
	}
	if v, _ := c.Get("a"); string(v) != "22" {
		t.Errorf("a after update = %q", v)
	}
	if want := cost("a", []byte("22")); c.Used() != want {
		t.Errorf("used %d, want %d", c.Used(), want)
	}
	if !c.Del("a") || c.Exists("a") || c.Used() != 0 {
		t.Errorf("del a: exists %v used %d", c.Exists("a"), c.Used())
	}
}

func TestExpiry(t *testing.T) {
	c := New(1 << 20)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	c.Set("short", []byte("x"), time.Second, false)
	c.Set("forever", []byte("y"), 0, false)
	now = now.Add(999 * time.Millisecond)
	if !c.Exists("short") {
		t.Error("short gone before its second")
	}
	now = now.Add(time.Millisecond)
	if _, ok := c.Get("short"); ok {
		t.Error("short still there at its expiry")
	}
	if !c.Set("short", []byte("z"), 0, false) {
		t.Error("set over an expired key refused")
	}
	if !c.Exists("forever") || c.Used() != cost("short", []byte("z"))+cost("forever", []byte("y")) {
		t.Errorf("forever %v, used %d", c.Exists("forever"), c.Used())
	}
}

func TestBoundedLRU(t *testing.T) {
	val := []byte(strings.Repeat("v", 1000))
	per := cost("k00", val)
	c := New(10 * per)
	for i := range 10 {
		c.Set(fmt.Sprintf("k%02d", i), val, 0, false)
	}
	c.Get("k00") // used: k01 is now the least recently used
	c.Set("k10", val, 0, false)
	if c.Exists("k01") || !c.Exists("k00") || !c.Exists("k10") {
		t.Errorf("after an 11th entry: k00 %v k01 %v k10 %v; want k01 pushed out", c.Exists("k00"), c.Exists("k01"), c.Exists("k10"))
	}
	if c.Used() > 10*per {
		t.Errorf("used %d over the limit %d", c.Used(), 10*per)
	}
	if c.Set("huge", make([]byte, 11*per), 0, false) {
		t.Error("an entry larger than the cache was taken")
	}
}

func TestClearPrefix(t *testing.T) {
	c := New(1 << 20)
	c.Set("a\x00x", nil, 0, false)
	c.Set("b\x00x", nil, 0, false)
	c.Clear("a\x00")
	if c.Exists("a\x00x") || !c.Exists("b\x00x") {
		t.Error("Clear(a) did not clear just a's keys")
	}
	c.Clear("")
	if c.Used() != 0 {
		t.Errorf("used %d after clearing all", c.Used())
	}
}

// TestResize: a smaller size (a reload that lowered cache_size) pushes out
// the least recently used entries at once, and bounds later sets.
func TestResize(t *testing.T) {
	c := New(1 << 20)
	for i := range 10 {
		c.Set(fmt.Sprint(i), make([]byte, 100), 0, false)
	}
	c.Get("0") // most recently used now
	c.Resize(3 * cost("0", make([]byte, 100)))
	for _, k := range []string{"0", "8", "9"} {
		if !c.Exists(k) {
			t.Errorf("%s gone after the resize, want the 3 most recently used kept", k)
		}
	}
	if c.Exists("1") || c.Used() > 3*cost("0", make([]byte, 100)) {
		t.Errorf("after the resize: 1 exists %v, used %d", c.Exists("1"), c.Used())
	}
	if c.Set("big", make([]byte, 600), 0, false) {
		t.Error("an entry larger than the resized cache was taken")
	}
}
