package runners

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/gwhq/gw/internal/cgroup"
	"github.com/gwhq/gw/internal/config"
	"github.com/gwhq/gw/runners/proc"
)

// limits turns app's limits: into what proc applies to each of its
// runners: rlimits, and the app's cgroup when it sets a cgroup limit. nil
// when the app sets none, so its runners start as they always did. A
// limit that cannot be applied is an error: the app does not start.
func (rt *Runtime) limits(app config.App, cred *syscall.Credential) (*proc.Limits, error) {
	l := app.Limits
	if !l.Rlimited() && !l.Cgrouped() {
		return nil, nil
	}
	if l.Processes > 0 && runsAsRoot(cred) {
		// The kernel does not hold root (CAP_SYS_RESOURCE) to RLIMIT_NPROC.
		return nil, fmt.Errorf("limits.processes: the runners run as root, whom RLIMIT_NPROC does not bind; give the app its own uid: (or use pids_max, a cgroup limit)")
	}
	out := &proc.Limits{}
	for _, r := range []struct {
		key string // under limits:, for the error
		res int
		v   int64
	}{
		{"memory", syscall.RLIMIT_AS, int64(l.Memory)},
		{"open_files", syscall.RLIMIT_NOFILE, int64(l.OpenFiles)},
		{"processes", proc.RlimitNproc, int64(l.Processes)},
		{"cpu_time", syscall.RLIMIT_CPU, int64(l.CPUTime.Seconds())},
	} {
		if r.v > 0 {
			if err := canLower(r.res, uint64(r.v)); err != nil {
				return nil, fmt.Errorf("limits.%s: %w", r.key, err)
			}
			out.Rlimits = append(out.Rlimits, proc.Rlimit{Resource: r.res, Value: uint64(r.v)})
		}
	}
	if l.Cgrouped() {
		uid, gid := -1, -1
		if cred != nil {
			uid, gid = int(cred.Uid), int(cred.Gid)
		}
		g, err := rt.cgroups().App(dirName(app.Name), cgroup.Limits{
			MemoryMax: int64(l.MemoryMax), PidsMax: l.PidsMax, CPUWeight: l.CPUWeight,
		}, uid, gid)
		if err != nil {
			return nil, err
		}
		out.Cgroups, out.CgroupDir = g.Procs(), g.Dir()
		if g.HasMemory() {
			out.OOMKills = g.OOMKills
		}
	}
	return out, nil
}

func runsAsRoot(cred *syscall.Credential) bool {
	if cred == nil {
		return os.Geteuid() == 0
	}
	return cred.Uid == 0
}

// canLower checks at start what the helper would find only in the runner:
// a limit above gw's own hard limit cannot be set unprivileged (the helper
// runs as the runners' user), so it would fail every launch.
func canLower(res int, v uint64) error {
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(res, &cur); err != nil {
		return nil // the helper will say
	}
	if v > cur.Max {
		return fmt.Errorf("%d is above gw's own hard limit %d; a runner can only lower it", v, cur.Max)
	}
	return nil
}

// cgroups is the runtime's cgroup manager, made on first use.
func (rt *Runtime) cgroups() *cgroup.Manager {
	rt.cgOnce.Do(func() { rt.cg.Store(cgroup.New(rt.CgroupRoot)) })
	return rt.cg.Load()
}

// CgroupUsage is app's cgroup usage and limit hits; ok is false when the
// app has no cgroup.
func (rt *Runtime) CgroupUsage(app string) (u cgroup.Usage, ok bool) {
	cg := rt.cg.Load()
	if cg == nil {
		return u, false
	}
	return cg.Usage(dirName(app))
}

// RemoveCgroups removes the apps' cgroups, once their runners are gone.
func (rt *Runtime) RemoveCgroups() error {
	cg := rt.cg.Load()
	if cg == nil {
		return nil
	}
	return cg.Remove()
}

// appsDir holds a private directory per app (0711: enter, not list).
func (rt *Runtime) appsDir() string { return filepath.Join(rt.Dir, "app") }

// privateTmp gives app's runners a directory of their own as TMPDIR (unless
// the app's env: sets one): 0700 and owned by the runners' user, so
// tempfile's files of one tenant are not in a /tmp every other tenant
// lists. Kept across reloads: its runners may still use it.
func (rt *Runtime) privateTmp(spec *proc.Spec, app config.App) error {
	if _, set := app.Env["TMPDIR"]; set {
		return nil
	}
	dir := filepath.Join(rt.appsDir(), dirName(app.Name))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("private TMPDIR: %w", err)
	}
	if c := spec.Cred; c != nil && os.Geteuid() == 0 {
		if err := os.Chown(dir, int(c.Uid), int(c.Gid)); err != nil {
			return fmt.Errorf("private TMPDIR: %w", err)
		}
	}
	spec.Env = proc.SetEnv(spec.Env, "TMPDIR", dir)
	return nil
}

// dirName is app's name as one path element: app names are free text, and
// one with a slash or a ".." must not reach outside gw's directories.
func dirName(app string) string {
	b := []byte(app)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if s := string(b); s != "" && s != "." && s != ".." {
		return s
	}
	return "_" + string(b)
}
