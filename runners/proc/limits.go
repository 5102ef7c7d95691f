package proc

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Limits are applied to a process before it runs any of its own code: the
// cgroups it joins and its rlimits. Go's SysProcAttr has no rlimit field,
// and the alternatives race or are wrong: prlimit(2) on the child's pid
// after Start leaves the interpreter (and an app imported quickly) running
// unlimited for a moment, a moment that grows on a loaded machine; and
// setting them in gw before fork would set them for gw, since rlimits
// belong to the whole process, not to the thread that forks. So Start runs
// gw's own binary as a pre-exec helper (HelperMain): it joins the cgroups,
// sets the limits on itself and execs the runner, which inherits them.
// The helper runs with the runner's credentials already (Go switched them
// in the fork), so an rlimit is set unprivileged and can only be lowered.
type Limits struct {
	Rlimits []Rlimit
	// Cgroups are cgroup.procs files the process writes itself into
	// (the app's cgroup in each hierarchy), writable by its user.
	Cgroups []string
	// CgroupDir is the app's cgroup v2 directory, open: the process is
	// forked straight into it (clone3's CLONE_INTO_CGROUP), by gw, whose
	// credentials v2 checks, before the runner's user takes over.
	CgroupDir *os.File
	// OOMKills reads the count of OOM kills in the app's memory cgroup
	// (nil without one): a SIGKILL while it rose is the cgroup's.
	OOMKills func() uint64
}

// Limit names of Process.LimitHit, the limits: keys whose breach ended a
// runner.
const (
	LimitMemory    = "memory"     // RLIMIT_AS: the shim exited with ExitMemory
	LimitCPUTime   = "cpu_time"   // RLIMIT_CPU: SIGXCPU
	LimitMemoryMax = "memory_max" // the cgroup's OOM killer
)

// ExitMemory is the status a shim exits with after the app hit a
// MemoryError under an address-space limit (EXIT_MEMORY in gw_wsgi.py):
// its heap may be half-updated, so a fresh runner is safer.
const ExitMemory = 5

// LimitHit names the limit that ended the process, "" when none did (or it
// has not exited). Only a process started with Limits has one.
func (p *Process) LimitHit() string {
	lim := p.limits
	if lim == nil || p.cmd.ProcessState == nil {
		return ""
	}
	switch sig := p.KilledBy(); {
	case sig == syscall.SIGXCPU && lim.has(syscall.RLIMIT_CPU):
		return LimitCPUTime
	case sig == syscall.SIGKILL && p.pastCPU(lim):
		return LimitCPUTime // it caught SIGXCPU and ran on to the hard limit
	case sig == syscall.SIGKILL && lim.OOMKills != nil && lim.OOMKills() > p.oomBase:
		return LimitMemoryMax
	case sig == 0 && p.ExitCode() == ExitMemory && lim.has(syscall.RLIMIT_AS):
		return LimitMemory
	}
	return ""
}

// pastCPU says whether the process used all the CPU time lim allows.
func (p *Process) pastCPU(lim *Limits) bool {
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return false
	}
	used := ru.Utime.Sec + ru.Stime.Sec + (ru.Utime.Usec+ru.Stime.Usec)/1e6
	for _, r := range lim.Rlimits {
		if r.Resource == syscall.RLIMIT_CPU {
			return uint64(used) >= r.Value
		}
	}
	return false
}

func (l *Limits) has(res int) bool {
	for _, r := range l.Rlimits {
		if r.Resource == res {
			return true
		}
	}
	return false
}

// Rlimit is one setrlimit(2) limit, soft and hard alike.
type Rlimit struct {
	Resource int // syscall.RLIMIT_AS, ...
	Value    uint64
}

// helperArg is argv[1] of the pre-exec helper: not a command a user types.
const helperArg = "__gw_exec_limited"

// rlimitNames name the resources on the helper's command line and in its
// errors.
var rlimitNames = map[int]string{
	syscall.RLIMIT_AS: "as", syscall.RLIMIT_NOFILE: "nofile", syscall.RLIMIT_CPU: "cpu", RlimitNproc: "nproc",
}

// RlimitNproc is RLIMIT_NPROC, which package syscall does not name.
const RlimitNproc = unix.RLIMIT_NPROC

// self is the pre-exec helper's binary: gw's own, by its /proc link, which
// the runners' user can execute even when the directory holding gw is
// closed to it (the link leads to the file, not through its path), and
// which is still the running gw after an upgrade replaced the file. A test
// binary whose TestMain calls HelperMain serves too.
const self = "/proc/self/exe"

// wrap returns spec run through the helper with lim applied, or spec as
// it is when nothing is for the helper to do (a v2 cgroup only: gw itself
// places the process).
func wrap(spec Spec, lim *Limits) (Spec, error) {
	if len(lim.Rlimits) == 0 && len(lim.Cgroups) == 0 {
		return spec, nil
	}
	// exec.Command would look a bare name up on gw's PATH: do it here, as
	// the helper's syscall.Exec does not search.
	path, err := exec.LookPath(spec.Path)
	if err != nil {
		return spec, err
	}
	args := []string{helperArg}
	for _, r := range lim.Rlimits {
		args = append(args, rlimitNames[r.Resource]+"="+strconv.FormatUint(r.Value, 10))
	}
	for _, c := range lim.Cgroups {
		args = append(args, "cgroup="+c)
	}
	args = append(append(append(args, "--", path), spec.Path), spec.Args...)
	spec.Path, spec.Args = self, args
	return spec, nil
}

// HelperMain is the pre-exec helper: when gw runs with helperArg as its
// first argument, it applies the limits the arguments give and execs the
// runner, never returning; otherwise it returns at once. cmd/gw calls it
// before anything else.
func HelperMain() {
	if len(os.Args) < 2 || os.Args[1] != helperArg {
		return
	}
	if err := helper(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "gw: applying limits: %v\n", err)
		os.Exit(126)
	}
}

func helper(args []string) error {
	var lims []Rlimit
	i := 0
	for ; i < len(args) && args[i] != "--"; i++ {
		k, v, _ := strings.Cut(args[i], "=")
		if k == "cgroup" {
			// "0" is the writing process itself, in v1 and v2 alike.
			if err := os.WriteFile(v, []byte("0"), 0); err != nil {
				return fmt.Errorf("joining cgroup: %w", err)
			}
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		res := -1
		for r, name := range rlimitNames {
			if name == k {
				res = r
			}
		}
		if err != nil || res < 0 {
			return fmt.Errorf("bad argument %q", args[i])
		}
		lims = append(lims, Rlimit{res, n})
	}
	if i+2 > len(args) {
		return fmt.Errorf("no command after --")
	}
	// Last, so nothing of the helper itself counts against them.
	for _, l := range lims {
		// syscall's, not x/sys/unix's: it also tells Go's exec not to
		// restore its saved soft RLIMIT_NOFILE.
		lim := syscall.Rlimit{Cur: l.Value, Max: l.Value}
		if l.Resource == syscall.RLIMIT_CPU {
			// At the hard limit the kernel sends SIGKILL, checked before
			// the soft one's SIGXCPU: a second apart, the runner gets the
			// SIGXCPU that names the limit first.
			lim.Max++
		}
		if err := syscall.Setrlimit(l.Resource, &lim); err != nil {
			return fmt.Errorf("setrlimit %s=%d: %w", rlimitNames[l.Resource], l.Value, err)
		}
	}
	path := args[i+1]
	return syscall.Exec(path, args[i+2:], os.Environ())
}
