package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Cgroup v2 (the unified hierarchy). gw's own cgroup (under systemd, its
// service's, with Delegate=yes) becomes the root of its subtree:
//
//	OWN/supervisor      gw itself, and any runner started before
//	OWN/gw-PID/APP      one per app with cgroup limits
//
// A cgroup with controllers enabled for its children may hold no
// processes itself ("no internal processes"), so before gw enables
// memory, pids or cpu in OWN/cgroup.subtree_control it moves itself (and
// its descendants) into the leaf OWN/supervisor. The hierarchy's root is
// exempt: there gw stays where it is. Runners are placed by gw as it forks
// them (clone3's CLONE_INTO_CGROUP, Group.Dir), not by themselves: a
// runner under another uid may not move itself out of gw's cgroup, since
// v2 checks write access to the cgroup.procs of the common ancestor.

// leaf is the cgroup gw moves itself into.
const leaf = "supervisor"

// ownV2 is gw's cgroup directory under root, from cgroupFile's "0::/PATH".
// A gw already in its leaf (restarted by an upgrade from a gw that moved
// there) uses the leaf's parent, as the first gw did.
func ownV2(root, cgroupFile string) (string, error) {
	b, err := os.ReadFile(cgroupFile)
	if err != nil {
		return "", fmt.Errorf("cgroup: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		p, ok := strings.CutPrefix(line, "0::")
		if !ok {
			continue
		}
		dir := filepath.Join(root, filepath.Clean("/"+p))
		if filepath.Base(dir) == leaf && dir != filepath.Clean(root) {
			dir = filepath.Dir(dir)
		}
		if _, err := os.Stat(filepath.Join(dir, "cgroup.controllers")); err != nil {
			return "", fmt.Errorf("cgroup: gw's cgroup %s is not under the cgroup v2 mount %s: %w", p, root, err)
		}
		return dir, nil
	}
	return "", fmt.Errorf("cgroup: no cgroup v2 line (0::) in %s", cgroupFile)
}

// v2Group makes (or finds) app's directory with controllers cs enabled.
func (m *Manager) v2Group(app string, cs []string) (*Group, error) {
	own, err := m.own()
	if err != nil {
		return nil, err
	}
	offered := words(filepath.Join(own, "cgroup.controllers"))
	for _, c := range cs {
		if !offered[c] {
			return nil, fmt.Errorf("cgroup: the cgroup v2 hierarchy at %s does not offer the %s controller to gw's cgroup %s (its cgroup.controllers: %s); delegate it to gw (systemd: Delegate=yes in gw's unit) or remove the cgroup limits (memory_max, pids_max, cpu_weight)",
				m.v2, c, own, strings.Join(keys(offered), " "))
		}
	}
	base := m.base[""]
	if base == "" {
		sweep(own)
		base = filepath.Join(own, fmt.Sprintf("gw-%d", os.Getpid()))
		if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("cgroup: %w (gw needs root, or a delegated writable cgroup, for cgroup limits)", err)
		}
		m.base[""] = base
	}
	var missing []string
	for _, c := range cs {
		if !m.enabled[c] {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		if err := m.delegate(own, missing); err != nil {
			return nil, err
		}
		if err := enable(base, missing); err != nil {
			return nil, err
		}
		for _, c := range missing {
			m.enabled[c] = true
		}
	}
	if g := m.groups[app]; g != nil {
		return g, nil
	}
	dir := filepath.Join(base, app)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	fd, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	return &Group{v2: true, dirs: map[string]string{"": dir}, fd: fd}, nil
}

// delegate enables cs for own's children, first moving gw out of own into
// its leaf unless own is the hierarchy's root.
func (m *Manager) delegate(own string, cs []string) error {
	if filepath.Clean(own) != filepath.Clean(m.v2) {
		if err := m.toLeaf(own); err != nil {
			return err
		}
	}
	return enable(own, cs)
}

// enable writes "+c ..." into dir's cgroup.subtree_control.
func enable(dir string, cs []string) error {
	p := filepath.Join(dir, "cgroup.subtree_control")
	if err := os.WriteFile(p, []byte("+"+strings.Join(cs, " +")), 0); err != nil {
		return fmt.Errorf("cgroup: enabling %s in %s: %w", strings.Join(cs, ", "), p, err)
	}
	return nil
}

// toLeaf moves gw and its descendants from own into own/supervisor. A
// process of own that is not gw's is an error: gw cannot enable
// controllers there, and moving someone else's process is not its call.
// A few rounds, as a runner may fork while gw moves.
func (m *Manager) toLeaf(own string) error {
	dst := filepath.Join(own, leaf)
	if err := os.Mkdir(dst, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("cgroup: %w", err)
	}
	for range 5 {
		pids := numbers(filepath.Join(own, "cgroup.procs"))
		var others []int
		moved := 0
		for _, pid := range pids {
			if !descends(pid, m.self) {
				others = append(others, pid)
				continue
			}
			err := os.WriteFile(filepath.Join(dst, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
			if err != nil && !errors.Is(err, os.ErrNotExist) && !isESRCH(err) {
				return fmt.Errorf("cgroup: moving pid %d into %s: %w", pid, dst, err)
			}
			moved++
		}
		if len(others) > 0 {
			return fmt.Errorf("cgroup: gw's cgroup %s holds processes that are not gw's (pids %v); cgroup v2 lets no process stay in a cgroup whose children have controllers: run gw in a cgroup of its own (systemd: a service with Delegate=yes)", own, others)
		}
		if moved == 0 {
			return nil
		}
	}
	return fmt.Errorf("cgroup: gw's processes keep appearing in %s; could not move them into %s", own, dst)
}

// descends says whether pid is anc or below it, by parent pids in /proc.
func descends(pid, anc int) bool {
	for range 64 {
		if pid == anc {
			return true
		}
		if pid <= 1 {
			return false
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parens.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if i < 0 || len(f) < 2 {
			return false
		}
		pid, _ = strconv.Atoi(f[1])
	}
	return false
}

func isESRCH(err error) bool {
	return errors.Is(err, syscall.ESRCH)
}

// words reads a file of space-separated words as a set.
func words(path string) map[string]bool {
	b, _ := os.ReadFile(path)
	out := map[string]bool{}
	for _, w := range strings.Fields(string(b)) {
		out[w] = true
	}
	return out
}

func keys(set map[string]bool) []string {
	var out []string
	for k := range set {
		out = append(out, k)
	}
	if len(out) == 0 {
		return []string{"(none)"}
	}
	sort.Strings(out)
	return out
}

// numbers reads a file of one number a line (cgroup.procs).
func numbers(path string) []int {
	b, _ := os.ReadFile(path)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}
