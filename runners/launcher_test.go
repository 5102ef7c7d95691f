package runners

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestNewRuntime: every shim is written when the directory is made,
// read-only, in a directory only its maker may change, so a gw that drops
// to the runners' user afterwards never writes one and that user cannot
// alter one. sock/ and plugin/ go to the user gw will serve as.
func TestNewRuntime(t *testing.T) {
	var owner *syscall.Credential
	uid := uint32(os.Geteuid())
	if uid == 0 {
		owner = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	rt, err := NewRuntime(owner)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Remove()
	subUID := uid // of sock/ and plugin/
	if owner != nil {
		subUID = owner.Uid
	}
	type entry struct {
		mode os.FileMode
		uid  uint32
	}
	want := map[string]entry{
		".":          {os.ModeDir | 0o711, uid},
		"gw_wsgi.py": {0o444, uid},
		"gw_rack.rb": {0o444, uid},
		"gw_psgi.pl": {0o444, uid},
		"sock":       {os.ModeDir | 0o700, subUID},
		"plugin":     {os.ModeDir | 0o711, subUID},
	}
	for name, w := range want {
		fi, err := os.Lstat(filepath.Join(rt.Dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := fi.Sys().(*syscall.Stat_t).Uid; fi.Mode() != w.mode || got != w.uid {
			t.Errorf("%s: %v uid %d, want %v uid %d", name, fi.Mode(), got, w.mode, w.uid)
		}
	}
	if src, err := os.ReadFile(rt.shim("gw_wsgi.py")); err != nil || len(src) == 0 {
		t.Errorf("gw_wsgi.py: %d bytes, %v", len(src), err)
	}
}
