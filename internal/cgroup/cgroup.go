// Package cgroup gives each app that asks for it a cgroup of its own, so its
// runners together stay within memory_max, pids_max and cpu_weight whatever
// their number. Groups live under gw's own cgroup, in a parent per gw
// process ("gw-PID"), one per app below it, and are removed when gw stops.
//
// Both layouts are handled: cgroup v2, the unified hierarchy most machines
// run today (v2.go), and v1, a mount per controller (v1.go). A limit that
// cannot be applied is an error: gw never runs an app unlimited.
package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Limits are one app's cgroup limits; zero is none.
type Limits struct {
	MemoryMax int64 // bytes, all the app's runners together
	PidsMax   int   // processes and threads of all its runners
	CPUWeight int   // 1..10000, 100 = an even share
}

func (l Limits) controllers() []string {
	var cs []string
	if l.MemoryMax > 0 {
		cs = append(cs, "memory")
	}
	if l.PidsMax > 0 {
		cs = append(cs, "pids")
	}
	if l.CPUWeight > 0 {
		cs = append(cs, "cpu")
	}
	return cs
}

// DefaultV2Root is where systemd mounts the unified hierarchy.
const DefaultV2Root = "/sys/fs/cgroup"

// Manager makes and removes gw's app groups. Safe for concurrent use: a
// reload builds an app while the old generation still runs.
type Manager struct {
	mu     sync.Mutex
	v2     string            // the cgroup2 mount in use, "" for v1
	base   map[string]string // controller (v2: "") -> gw's parent dir, made on first use
	groups map[string]*Group // by app name
	// mounts finds where each v1 controller's hierarchy has gw's cgroup;
	// tests point it elsewhere.
	mounts func() (map[string]string, error)
	// own is gw's cgroup in the v2 hierarchy, self the pid that is gw:
	// tests point them elsewhere.
	own  func() (string, error)
	self int
	// enabled are the v2 controllers already enabled below gw's cgroup.
	enabled map[string]bool
}

// New returns a Manager for this machine's layout: cgroup v2 at root when
// root is given or, when it is "", at DefaultV2Root if that is a v2 mount
// (it has cgroup.controllers); else the v1 hierarchies. Nothing is made
// until an app asks for a group.
func New(root string) *Manager {
	m := &Manager{base: map[string]string{}, groups: map[string]*Group{}, enabled: map[string]bool{},
		mounts: ownCgroups, self: os.Getpid()}
	if root == "" {
		if _, err := os.Stat(filepath.Join(DefaultV2Root, "cgroup.controllers")); err == nil {
			root = DefaultV2Root
		}
	}
	if root != "" {
		m.v2 = root
		m.own = func() (string, error) { return ownV2(root, "/proc/self/cgroup") }
	}
	return m
}

// Version is 2 or 1: the layout the manager uses.
func (m *Manager) Version() int {
	if m.v2 != "" {
		return 2
	}
	return 1
}

// Group is one app's cgroup: in v2 one directory, in v1 one in each
// hierarchy its limits need.
type Group struct {
	v2   bool
	dirs map[string]string // controller -> dir; v2: "" -> the one dir
	// fd is the v2 directory, open, for CLONE_INTO_CGROUP: gw places
	// each runner into it as it forks (see Dir).
	fd *os.File
}

// App returns app's group with lim applied (made, or updated at a reload).
// uid and gid (-1 = gw's) are the runners' user: in v1 the group's
// cgroup.procs files become theirs, which the pre-exec helper, running as
// that user, writes itself into; in v2 gw places runners itself (Dir).
// A limit that cannot be applied is an error.
func (m *Manager) App(app string, lim Limits, uid, gid int) (*Group, error) {
	cs := lim.controllers()
	if len(cs) == 0 {
		return nil, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var g *Group
	var err error
	if m.v2 != "" {
		g, err = m.v2Group(app, cs)
	} else {
		g, err = m.v1Group(app, cs, uid, gid)
	}
	if err != nil {
		return nil, err
	}
	if err := g.set(lim); err != nil {
		if m.groups[app] != g {
			g.discard() // new, so nobody else holds it: no Remove would close it
		}
		return nil, err
	}
	m.groups[app] = g
	return g, nil
}

// discard closes a group that was never handed out and removes its
// directories, best effort: a cgroup just made holds no process.
func (g *Group) discard() {
	if g.fd != nil {
		g.fd.Close()
	}
	for _, d := range g.dirs {
		os.Remove(d)
	}
}

// set writes lim into the group's files.
func (g *Group) set(lim Limits) error {
	type file struct {
		c, name string
		v       int64
		on      bool
	}
	files := []file{
		{"memory", "memory.max", lim.MemoryMax, lim.MemoryMax > 0},
		{"pids", "pids.max", int64(lim.PidsMax), lim.PidsMax > 0},
		{"cpu", "cpu.weight", int64(lim.CPUWeight), lim.CPUWeight > 0},
	}
	if !g.v2 {
		files[0].name = "memory.limit_in_bytes"
		// v2's cpu.weight 100 is v1's cpu.shares 1024, the default.
		files[2].name, files[2].v = "cpu.shares", max(2, int64(lim.CPUWeight)*1024/100)
	}
	for _, f := range files {
		if !f.on {
			continue
		}
		p := filepath.Join(g.dir(f.c), f.name)
		if err := os.WriteFile(p, []byte(strconv.FormatInt(f.v, 10)), 0); err != nil {
			return fmt.Errorf("cgroup: setting %s: %w", p, err)
		}
	}
	return nil
}

// dir is the group's directory for controller c ("" when it has none).
func (g *Group) dir(c string) string {
	if g.v2 {
		return g.dirs[""]
	}
	return g.dirs[c]
}

// Procs are the cgroup.procs files a runner of the app joins itself
// (v1); none in v2, where gw places it (Dir).
func (g *Group) Procs() []string {
	if g.v2 {
		return nil
	}
	var out []string
	for _, c := range []string{"memory", "pids", "cpu"} {
		if d, ok := g.dirs[c]; ok {
			out = append(out, filepath.Join(d, "cgroup.procs"))
		}
	}
	return out
}

// Dir is the open v2 directory a runner is cloned into
// (SysProcAttr.UseCgroupFD); nil in v1. Closed by Manager.Remove.
func (g *Group) Dir() *os.File { return g.fd }

// HasMemory says whether the group limits memory, so OOMKills counts.
func (g *Group) HasMemory() bool { return g.memory() != "" }

func (g *Group) memory() string {
	if g.v2 {
		// memory.events exists only with the controller enabled.
		if _, err := os.Stat(filepath.Join(g.dirs[""], "memory.events")); err != nil {
			return ""
		}
	}
	return g.dir("memory")
}

// OOMKills is how many of the group's processes the OOM killer ended
// (v2 memory.events, v1 memory.oom_control: oom_kill).
func (g *Group) OOMKills() uint64 {
	f := "memory.oom_control"
	if g.v2 {
		f = "memory.events"
	}
	return keyed(filepath.Join(g.dir("memory"), f), "oom_kill")
}

// Usage is what the group uses now and how often it hit its limits.
type Usage struct {
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	MemoryMax   int64  `json:"memory_max,omitempty"`
	OOMKills    uint64 `json:"oom_kills"`
	// MemoryFailcnt counts allocations refused at the limit (reclaim
	// usually follows, not a kill): v1 memory.failcnt, v2 memory.events max.
	MemoryFailcnt uint64 `json:"memory_limit_hits"`
	Pids          int64  `json:"pids,omitempty"`
	PidsMax       int64  `json:"pids_max,omitempty"`
}

// Usage reads the group's counters; what a controller it does not use
// would say stays zero.
func (g *Group) Usage() Usage {
	var u Usage
	if d := g.memory(); d != "" {
		if g.v2 {
			u.MemoryBytes = number(filepath.Join(d, "memory.current"))
			u.MemoryMax = number(filepath.Join(d, "memory.max"))
			u.MemoryFailcnt = keyed(filepath.Join(d, "memory.events"), "max")
		} else {
			u.MemoryBytes = number(filepath.Join(d, "memory.usage_in_bytes"))
			u.MemoryMax = number(filepath.Join(d, "memory.limit_in_bytes"))
			u.MemoryFailcnt = uint64(number(filepath.Join(d, "memory.failcnt")))
		}
		u.OOMKills = g.OOMKills()
	}
	if d := g.dir("pids"); d != "" {
		u.Pids = number(filepath.Join(d, "pids.current"))
		u.PidsMax = number(filepath.Join(d, "pids.max")) // v2's "max" (none) reads 0
	}
	return u
}

// sweep removes the groups a gw that died without cleaning up (SIGKILL)
// left in parent: "gw-PID" whose process is gone. The kernel refuses to
// remove a cgroup that still has processes, so nothing alive is touched.
func sweep(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, "gw-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "gw-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // that gw (or a process reusing its pid) is alive
		}
		apps, _ := os.ReadDir(d)
		for _, a := range apps {
			if a.IsDir() {
				os.Remove(filepath.Join(d, a.Name()))
			}
		}
		os.Remove(d)
	}
}

// Usage is app's group's Usage; ok is false when it has none.
func (m *Manager) Usage(app string) (u Usage, ok bool) {
	m.mu.Lock()
	g := m.groups[app]
	m.mu.Unlock()
	if g == nil {
		return u, false
	}
	return g.Usage(), true
}

// Remove removes every group and gw's parents; a group whose processes
// have not all gone yet stays (the kernel refuses), reported in the error.
// In v2 gw itself stays in its leaf (supervisor), where it moved.
func (m *Manager) Remove() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, g := range m.groups {
		if g.fd != nil {
			g.fd.Close()
		}
		for _, d := range g.dirs {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	for _, b := range m.base {
		if err := os.Remove(b); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	m.groups, m.base = map[string]*Group{}, map[string]string{}
	return errors.Join(errs...)
}

func number(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// keyed reads "key N" from a file of such lines.
func keyed(path, key string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
