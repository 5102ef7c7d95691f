package cgroup

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// requireV1 skips unless this machine offers writable v1 hierarchies for
// memory and pids (root on the CI machine).
func requireV1(t *testing.T) map[string]string {
	t.Helper()
	own, err := ownCgroups()
	if err != nil || own["memory"] == "" || own["pids"] == "" || own["cpu"] == "" || os.Geteuid() != 0 {
		t.Skipf("needs root and cgroup v1 memory, pids and cpu hierarchies (have %v, err %v, euid %d)", own, err, os.Geteuid())
	}
	return own
}

func TestGroupLimitsAndOOM(t *testing.T) {
	requireV1(t)
	m := New("")
	t.Cleanup(func() {
		if err := m.Remove(); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
	g, err := m.App("oomtest", Limits{MemoryMax: 64 << 20, PidsMax: 50, CPUWeight: 50}, 65534, 65534)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(g.Procs()); got != 3 {
		t.Fatalf("procs files %v, want memory, pids and cpu", g.Procs())
	}
	for _, p := range g.Procs() {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 65534 {
			t.Errorf("%s belongs to uid %d, want the runners' 65534", p, uid)
		}
	}
	cpu, _ := os.ReadFile(filepath.Join(g.dirs["cpu"], "cpu.shares"))
	if strings.TrimSpace(string(cpu)) != "512" {
		t.Errorf("cpu.shares %q, want 512 for cpu_weight 50", cpu)
	}
	// A process of the group that touches 200 MiB: the OOM killer ends it.
	script := "for f in " + strings.Join(g.Procs(), " ") + "; do echo $$ > $f; done; " +
		`exec python3 -c "b = bytearray(200 << 20); b[::4096] = b'x' * len(b[::4096]); print('survived')"`
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	if err == nil || strings.Contains(string(out), "survived") {
		t.Fatalf("allocating 200MiB under memory_max 64MiB: err %v, out %s", err, out)
	}
	if n := g.OOMKills(); n != 1 {
		t.Errorf("OOMKills = %d, want 1", n)
	}
	if u := g.Usage(); u.MemoryMax != 64<<20 || u.PidsMax != 50 || u.OOMKills != 1 {
		t.Errorf("usage %+v", u)
	}
	// Updating at a reload keeps the group.
	g2, err := m.App("oomtest", Limits{MemoryMax: 128 << 20, PidsMax: 50}, -1, -1)
	if err != nil || g2 != g || g.Usage().MemoryMax != 128<<20 {
		t.Errorf("update: %v, same group %v, usage %+v", err, g2 == g, g.Usage())
	}
}

func TestNoLimitsNoGroup(t *testing.T) {
	m := &Manager{mounts: func() (map[string]string, error) { t.Fatal("looked for cgroups"); return nil, nil }}
	if g, err := m.App("x", Limits{}, -1, -1); g != nil || err != nil {
		t.Errorf("App without limits = %v, %v", g, err)
	}
}

func TestMissingHierarchyIsAnError(t *testing.T) {
	m := New("")
	m.mounts = func() (map[string]string, error) { return map[string]string{"memory": t.TempDir()}, nil }
	_, err := m.App("x", Limits{PidsMax: 10}, -1, -1)
	if err == nil || !strings.Contains(err.Error(), "no cgroup v1 pids hierarchy") {
		t.Errorf("err = %v, want the missing hierarchy named", err)
	}
}

func TestV1Mounts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(p, []byte(`31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:5 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`), 0o644)
	got, err := v1Mounts(p)
	if err != nil {
		t.Fatal(err)
	}
	if got["cpu"].point != "/sys/fs/cgroup/cpu,cpuacct" || got["cpuacct"] != got["cpu"] ||
		got["memory"] != (mount{"/docker/abc", "/sys/fs/cgroup/memory"}) || len(got) != 3 {
		t.Errorf("mounts = %+v", got)
	}
}

// TestSweepStale: the groups of a gw that is gone are removed when the next
// one makes its own; a live gw's are left.
func TestSweepStale(t *testing.T) {
	own := requireV1(t)
	parent := own["pids"]
	stale := filepath.Join(parent, "gw-999999999") // above pid_max: never alive
	live := filepath.Join(parent, "gw-1")          // init: always alive
	for _, d := range []string{stale, filepath.Join(stale, "app"), live} {
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.Remove(filepath.Join(stale, "app")); os.Remove(stale); os.Remove(live) })
	m := New("")
	defer m.Remove()
	if _, err := m.App("x", Limits{PidsMax: 10}, -1, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale group %s left: %v", stale, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live gw's group was removed: %v", err)
	}
}
