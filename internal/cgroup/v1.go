package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// v1Group makes (or finds) app's directory in each v1 hierarchy of cs,
// its cgroup.procs owned by uid (-1: left as is).
func (m *Manager) v1Group(app string, cs []string, uid, gid int) (*Group, error) {
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
	return g, nil
}

// appDir makes (or finds) app's directory in controller c's hierarchy.
func (m *Manager) appDir(own map[string]string, c, app string) (string, error) {
	base := m.base[c]
	if base == "" {
		parent, ok := own[c]
		if !ok {
			return "", fmt.Errorf("cgroup: no cgroup v1 %s hierarchy on this machine, and no cgroup v2 at %s; remove the cgroup limits (memory_max, pids_max, cpu_weight) or use setrlimit's (memory, processes)", c, DefaultV2Root)
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
