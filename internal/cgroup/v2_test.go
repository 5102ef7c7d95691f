package cgroup

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gwhq/gw/runners/proc"
)

// fakeV2 is a directory tree shaped like a cgroup2 mount with gw's cgroup
// at its root offering ctrls: the kernel's files are plain files, so what
// gw writes can be read back (what the kernel would do with it cannot).
func fakeV2(t *testing.T, ctrls string) *Manager {
	t.Helper()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte(ctrls+"\n"), 0o644)
	m := New(root)
	m.own = func() (string, error) { return root, nil }
	return m
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestV2Files(t *testing.T) {
	m := fakeV2(t, "cpuset cpu io memory pids")
	g, err := m.App("site", Limits{MemoryMax: 64 << 20, PidsMax: 50, CPUWeight: 50}, 65534, 65534)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(m.v2, fmt.Sprintf("gw-%d", os.Getpid()), "site")
	for f, want := range map[string]string{
		"memory.max": "67108864", "pids.max": "50", "cpu.weight": "50",
		"../cgroup.subtree_control": "+memory +pids +cpu", "../../cgroup.subtree_control": "+memory +pids +cpu",
	} {
		if got := read(t, filepath.Join(dir, f)); got != want {
			t.Errorf("%s = %q, want %q", f, got, want)
		}
	}
	if g.Procs() != nil || g.Dir() == nil || g.Dir().Name() != dir {
		t.Errorf("v2 group: procs %v (want none: gw places runners), dir %v", g.Procs(), g.Dir())
	}
	os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "memory.current"), []byte("1234\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "pids.current"), []byte("3\n"), 0o644)
	want := Usage{MemoryBytes: 1234, MemoryMax: 64 << 20, OOMKills: 2, MemoryFailcnt: 7, Pids: 3, PidsMax: 50}
	if u := g.Usage(); u != want || !g.HasMemory() || g.OOMKills() != 2 {
		t.Errorf("usage %+v, want %+v", u, want)
	}
	// A reload keeps the group and rewrites the values; a second app with
	// another controller enables only that one.
	if g2, err := m.App("site", Limits{MemoryMax: 128 << 20}, -1, -1); err != nil || g2 != g || read(t, filepath.Join(dir, "memory.max")) != "134217728" {
		t.Errorf("update: %v, same group %v", err, g2 == g)
	}
	os.Remove(filepath.Join(dir, "../cgroup.subtree_control"))
	if _, err := m.App("other", Limits{CPUWeight: 10}, -1, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "../cgroup.subtree_control")); err == nil {
		t.Errorf("controllers enabled again though they were")
	}
	g.fd.Close()
}

func TestV2Refusals(t *testing.T) {
	m := fakeV2(t, "cpu io")
	_, err := m.App("x", Limits{PidsMax: 10}, -1, -1)
	if err == nil || !strings.Contains(err.Error(), "does not offer the pids controller") || !strings.Contains(err.Error(), "cgroup.controllers: cpu io") {
		t.Errorf("err = %v, want the missing controller named", err)
	}
	// gw's cgroup (not the root) holds a process that is not gw's: the
	// no-internal-processes rule leaves gw no way to enable controllers.
	own := filepath.Join(m.v2, "gw.service")
	os.Mkdir(own, 0o755)
	os.WriteFile(filepath.Join(own, "cgroup.controllers"), []byte("pids"), 0o644)
	os.WriteFile(filepath.Join(own, "cgroup.procs"), []byte("1\n"), 0o644)
	m.own = func() (string, error) { return own, nil }
	_, err = m.App("x", Limits{PidsMax: 10}, -1, -1)
	if err == nil || !strings.Contains(err.Error(), "not gw's (pids [1])") {
		t.Errorf("err = %v, want pid 1 named", err)
	}
}

func TestOwnV2(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"system.slice/gw.service/supervisor"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	for _, d := range []string{"", "system.slice/gw.service", "system.slice/gw.service/supervisor"} {
		os.WriteFile(filepath.Join(root, d, "cgroup.controllers"), nil, 0o644)
	}
	for _, tc := range []struct{ file, want, err string }{
		{"0::/\n", root, ""},
		{"1:name=systemd:/x\n0::/system.slice/gw.service\n", root + "/system.slice/gw.service", ""},
		{"0::/system.slice/gw.service/supervisor\n", root + "/system.slice/gw.service", ""}, // an upgraded gw
		{"0::/elsewhere\n", "", "not under the cgroup v2 mount"},
		{"4:memory:/\n", "", "no cgroup v2 line"},
	} {
		p := filepath.Join(t.TempDir(), "cgroup")
		os.WriteFile(p, []byte(tc.file), 0o644)
		got, err := ownV2(root, p)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ownV2(%q) = %q, %v; want %q, %q", tc.file, got, err, tc.want, tc.err)
		}
	}
}

// realV2 is a cgroup2 mount this test may write into (root), or a skip.
func realV2(t *testing.T) string {
	t.Helper()
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, _ := strings.Cut(line, " - ")
		if f := strings.Fields(pre); strings.HasPrefix(post, "cgroup2 ") && len(f) > 4 && os.Geteuid() == 0 {
			return f[4]
		}
	}
	t.Skip("needs root and a cgroup2 mount")
	return ""
}

// TestV2RealKernel runs the v2 path against this machine's kernel. Here
// (v1 holds memory, pids and cpu) the unified hierarchy offers only
// hugetlb, which stands in for them: joining, the no-internal-processes
// rule, the move into the leaf, enabling a controller, CLONE_INTO_CGROUP
// through proc.Start and cleanup are the kernel's; the limit files are not.
func TestV2RealKernel(t *testing.T) {
	mnt := realV2(t)
	// A cgroup limit the hierarchy cannot apply is refused, naming it.
	if !words(filepath.Join(mnt, "cgroup.controllers"))["memory"] {
		_, err := New(mnt).App("x", Limits{MemoryMax: 64 << 20}, -1, -1)
		if err == nil || !strings.Contains(err.Error(), "does not offer the memory controller") {
			t.Errorf("memory_max without the memory controller: %v", err)
		}
	}
	if !words(filepath.Join(mnt, "cgroup.controllers"))["hugetlb"] {
		t.Skip("the cgroup2 mount offers no hugetlb controller to stand in")
	}
	rootCtl := filepath.Join(mnt, "cgroup.subtree_control")
	if !words(rootCtl)["hugetlb"] {
		if err := os.WriteFile(rootCtl, []byte("+hugetlb"), 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.WriteFile(rootCtl, []byte("-hugetlb"), 0) })
	}
	own := filepath.Join(mnt, fmt.Sprintf("gwtest-%d", os.Getpid()))
	if err := os.Mkdir(own, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(filepath.Join(own, leaf))
		os.Remove(own)
	})
	// "gw": a process cloned into own, as systemd would start it.
	ownFD, err := os.Open(own)
	if err != nil {
		t.Fatal(err)
	}
	defer ownFD.Close()
	gw := exec.Command("sleep", "60")
	gw.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(ownFD.Fd())}
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Process.Kill(); gw.Wait() })
	rel := strings.TrimPrefix(own, mnt)
	if got := cgroupOf(t, gw.Process.Pid); got != rel {
		t.Fatalf("cloned into %q, want %q", got, rel)
	}
	err = os.WriteFile(filepath.Join(own, "cgroup.subtree_control"), []byte("+hugetlb"), 0)
	if !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("enabling a controller in a cgroup with a process: %v, want EBUSY (no internal processes)", err)
	}

	m := New(mnt)
	m.own = func() (string, error) { return own, nil }
	m.self = gw.Process.Pid
	g, err := m.v2Group("site", []string{"hugetlb"})
	if err != nil {
		t.Fatal(err)
	}
	m.groups["site"] = g
	if got := cgroupOf(t, gw.Process.Pid); got != rel+"/supervisor" {
		t.Errorf("gw in %q, want moved to its leaf", got)
	}
	base := filepath.Join(own, fmt.Sprintf("gw-%d", os.Getpid()))
	for _, d := range []string{own, base} {
		if !words(filepath.Join(d, "cgroup.subtree_control"))["hugetlb"] {
			t.Errorf("%s: hugetlb not enabled", d)
		}
	}
	if !words(filepath.Join(base, "site", "cgroup.controllers"))["hugetlb"] {
		t.Errorf("the app's group does not have hugetlb")
	}

	// A runner started by proc lands in the app's group at its fork.
	p, err := proc.Start(proc.Spec{Path: "sleep", Args: []string{"60"}, Limits: &proc.Limits{CgroupDir: g.Dir()}},
		proc.Files{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := cgroupOf(t, p.PID()); got != rel+"/"+filepath.Base(base)+"/site" {
		t.Errorf("runner in %q", got)
	}
	if n := numbers(filepath.Join(base, "site", "cgroup.procs")); len(n) != 1 || n[0] != p.PID() {
		t.Errorf("site's cgroup.procs %v, want [%d]", n, p.PID())
	}
	p.Signal(syscall.SIGKILL)
	<-p.Done()
	if err := m.Remove(); err != nil {
		t.Errorf("Remove: %v", err)
	}
	for _, d := range []string{base} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", d, err)
		}
	}
	os.WriteFile(filepath.Join(own, "cgroup.subtree_control"), []byte("-hugetlb"), 0)
}

// cgroupOf is pid's v2 cgroup path.
func cgroupOf(t *testing.T, pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p
		}
	}
	return ""
}

// TestV2FailedSetClosesDir: a new group whose limits cannot be written is
// dropped whole. It used to keep its directory open (the CLONE_INTO_CGROUP
// fd): never handed out nor in m.groups, so no Remove closed it, one fd
// lost per failed start of the app.
func TestV2FailedSetClosesDir(t *testing.T) {
	m := fakeV2(t, "memory pids")
	dir := filepath.Join(m.v2, fmt.Sprintf("gw-%d", os.Getpid()), "site")
	// memory.max a directory: writing it fails, as a kernel refusing the
	// value would.
	if err := os.MkdirAll(filepath.Join(dir, "memory.max"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := m.App("site", Limits{MemoryMax: 64 << 20}, -1, -1); err == nil || !strings.Contains(err.Error(), "memory.max") {
		t.Fatalf("err = %v, want memory.max named", err)
	}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if p, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); p == dir {
			t.Errorf("fd %s still open on %s after the failed App", fd.Name(), dir)
		}
	}
	if _, ok := m.Usage("site"); ok {
		t.Errorf("a group whose limits failed is listed")
	}
}
