package runners

import (
	"testing"
)

// TestAppShared: an app's cache and lock file are the same across its
// generations (two gets, as a reload's launcher makes), so uwsgi.lock()
// and the timer token exclude across them; the cache follows cache_size.
func TestAppShared(t *testing.T) {
	var a appShared
	c1, l1, err := a.get("blog", 0)
	if err != nil {
		t.Fatal(err)
	}
	c1.Set("k", []byte("v"), 0, false)
	c2, l2, err := a.get("blog", 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	if c2 != c1 || l2 != l1 {
		t.Fatalf("a second generation got another cache (%v) or lock file (%v)", c2 != c1, l2 != l1)
	}
	if !c2.Exists("k") {
		t.Error("the cache lost its entry across the reload")
	}
	if c2.Set("big", make([]byte, 2<<10), 0, false) {
		t.Error("a 2 KiB entry fits a cache resized to 1 KiB")
	}
	c3, l3, err := a.get("shop", 0)
	if err != nil {
		t.Fatal(err)
	}
	if c3 == c1 || l3 == l1 || l3.Fd() == l1.Fd() {
		t.Error("two apps share a cache or a lock file")
	}
}
