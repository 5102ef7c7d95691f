// Package cgroup gives each app that asks for it a cgroup of its own, so its
// runners together stay within memory_max, pids_max and cpu_weight whatever
// their number. Groups live under gw's own cgroup, in a parent per gw
// process ("gw-PID"), one per app below it, and are removed when gw stops.
//
// Only cgroup v1 hierarchies (a mount per controller, as on this project's
// CI machine) are handled. On a v2-only machine an app that sets a cgroup
// limit is refused with an error saying so: gw never runs it unlimited.
package cgroup

import (
	"bufio"
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

// Manager makes and removes gw's app groups. Safe for concurrent use: a
// reload builds an app while the old generation still runs.
type Manager struct {
	mu     sync.Mutex
	base   map[string]string // controller -> gw's parent dir, made on first use
	groups map[string]*Group // by app name
	// mounts finds where each v1 controller's hierarchy has gw's cgroup;
	// tests point it elsewhere.
	mounts func() (map[string]string, error)
}

// New returns a Manager; nothing is made until an app asks for a group.
func New() *Manager {
	return &Manager{base: map[string]string{}, groups: map[string]*Group{}, mounts: ownCgroups}
}

// Group is one app's cgroup in each hierarchy its limits need.
type Group struct {
	dirs map[string]string // controller -> dir
}

// App returns app's group with lim applied (made, or updated at a reload),
// its cgroup.procs files writable by uid (the runners' user, -1 = gw's),
// which the pre-exec helper, running as that user, writes itself into.
// A limit that cannot be applied is an error.
func (m *Manager) App(app string, lim Limits, uid, gid int) (*Group, error) {
	cs := lim.controllers()
	if len(cs) == 0 {
		return nil, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	own, err := m.mounts()
	if err != nil {
		return nil, err
	}
	g := m.groups[app]
	if g == nil {
		g = &Group{dirs: map[string]string{}}
	}
	for _, c := range cs {
		dir, err := m.appDir(own, c, app)
		if err != nil {
			return nil, err
		}
		g.dirs[c] = dir
		if uid >= 0 {
			if err := os.Chown(filepath.Join(dir, "cgroup.procs"), uid, gid); err != nil {
				return nil, fmt.Errorf("cgroup: %w", err)
			}
		}
	}
	if err := g.set(lim); err != nil {
		return nil, err
	}
	m.groups[app] = g
	return g, nil
}

// appDir makes (or finds) app's directory in controller c's hierarchy.
func (m *Manager) appDir(own map[string]string, c, app string) (string, error) {
	base := m.base[c]
	if base == "" {
		parent, ok := own[c]
		if !ok {
			return "", fmt.Errorf("cgroup: no cgroup v1 %s hierarchy on this machine (cgroup v2 is not supported yet); remove the cgroup limits (memory_max, pids_max, cpu_weight) or use setrlimit's (memory, processes)", c)
		}
		sweep(parent)
		base = filepath.Join(parent, fmt.Sprintf("gw-%d", os.Getpid()))
		if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("cgroup: %w (gw needs root, or a delegated writable cgroup, for cgroup limits)", err)
		}
		m.base[c] = base
	}
	dir := filepath.Join(base, app)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("cgroup: %w", err)
	}
	return dir, nil
}

// set writes lim into the group's files (v1 names).
func (g *Group) set(lim Limits) error {
	write := func(c, file string, v int64) error {
		p := filepath.Join(g.dirs[c], file)
		if err := os.WriteFile(p, []byte(strconv.FormatInt(v, 10)), 0); err != nil {
			return fmt.Errorf("cgroup: setting %s: %w", p, err)
		}
		return nil
	}
	if lim.MemoryMax > 0 {
		if err := write("memory", "memory.limit_in_bytes", lim.MemoryMax); err != nil {
			return err
		}
	}
	if lim.PidsMax > 0 {
		if err := write("pids", "pids.max", int64(lim.PidsMax)); err != nil {
			return err
		}
	}
	if lim.CPUWeight > 0 {
		// v2's cpu.weight 100 is v1's cpu.shares 1024, the default.
		if err := write("cpu", "cpu.shares", max(2, int64(lim.CPUWeight)*1024/100)); err != nil {
			return err
		}
	}
	return nil
}

// Procs are the cgroup.procs files a runner of the app joins.
func (g *Group) Procs() []string {
	var out []string
	for _, c := range []string{"memory", "pids", "cpu"} {
		if d, ok := g.dirs[c]; ok {
			out = append(out, filepath.Join(d, "cgroup.procs"))
		}
	}
	return out
}

// HasMemory says whether the group limits memory, so OOMKills counts.
func (g *Group) HasMemory() bool { _, ok := g.dirs["memory"]; return ok }

// OOMKills is how many of the group's processes the OOM killer ended
// (memory.oom_control's oom_kill).
func (g *Group) OOMKills() uint64 {
	return keyed(filepath.Join(g.dirs["memory"], "memory.oom_control"), "oom_kill")
}

// Usage is what the group uses now and how often it hit its limits.
type Usage struct {
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	MemoryMax   int64  `json:"memory_max,omitempty"`
	OOMKills    uint64 `json:"oom_kills"`
	// MemoryFailcnt counts allocations refused at the limit (reclaim
	// usually follows, not a kill).
	MemoryFailcnt uint64 `json:"memory_limit_hits"`
	Pids          int64  `json:"pids,omitempty"`
	PidsMax       int64  `json:"pids_max,omitempty"`
}

// Usage reads the group's counters; what a controller it does not use
// would say stays zero.
func (g *Group) Usage() Usage {
	var u Usage
	if d, ok := g.dirs["memory"]; ok {
		u.MemoryBytes = number(filepath.Join(d, "memory.usage_in_bytes"))
		u.MemoryMax = number(filepath.Join(d, "memory.limit_in_bytes"))
		u.MemoryFailcnt = uint64(number(filepath.Join(d, "memory.failcnt")))
		u.OOMKills = g.OOMKills()
	}
	if d, ok := g.dirs["pids"]; ok {
		u.Pids = number(filepath.Join(d, "pids.current"))
		u.PidsMax = number(filepath.Join(d, "pids.max"))
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
func (m *Manager) Remove() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, g := range m.groups {
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

// ownCgroups maps each v1 controller to the directory of gw's own cgroup
// in its hierarchy, from /proc/self/mountinfo and /proc/self/cgroup.
func ownCgroups() (map[string]string, error) {
	mounts, err := v1Mounts("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "4:memory:/some/path"; v2's line is "0::/path".
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if m, ok := mounts[c]; ok {
				rel, _ := filepath.Rel(m.root, parts[2])
				if strings.HasPrefix(rel, "..") {
					rel = "." // gw's cgroup is above the mount's root (a container): use the root
				}
				out[c] = filepath.Join(m.point, rel)
			}
		}
	}
	return out, sc.Err()
}

type mount struct{ root, point string }

// v1Mounts reads the cgroup v1 mounts of mountinfo by controller.
func v1Mounts(path string) (map[string]mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]mount{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root point opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 || tail[0] != "cgroup" {
			continue
		}
		for _, o := range strings.Split(tail[2], ",") {
			if o != "rw" && o != "ro" {
				out[o] = mount{root: fields[3], point: fields[4]}
			}
		}
	}
	return out, sc.Err()
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
