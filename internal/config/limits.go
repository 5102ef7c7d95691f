package config

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// AppLimits are an app's resource limits (the app's limits: mapping; the
// top-level limits: is the gateway's request limits, a different thing).
// Zero means no limit. The first four are setrlimit(2) values that every
// runner process of the app gets (each runner on its own); the cgroup ones
// hold for all the app's runners together and need a writable cgroup
// hierarchy: gw refuses to start the app when one is set and none is
// writable, rather than run it unlimited.
type AppLimits struct {
	Memory    Size          // RLIMIT_AS per runner: address space, not RSS
	OpenFiles int           // RLIMIT_NOFILE per runner
	Processes int           // RLIMIT_NPROC: counted per uid by Linux, threads included
	CPUTime   time.Duration // RLIMIT_CPU per runner, whole seconds; SIGXCPU past it

	MemoryMax Size // cgroup memory limit of the app (memory.max / memory.limit_in_bytes)
	PidsMax   int  // cgroup pids.max of the app: processes and threads of all its runners
	CPUWeight int  // cgroup cpu.weight (1..10000, default 100; v1: cpu.shares scaled)
}

// Rlimited says whether any setrlimit limit is set.
func (l AppLimits) Rlimited() bool {
	return l.Memory > 0 || l.OpenFiles > 0 || l.Processes > 0 || l.CPUTime > 0
}

// Cgrouped says whether the app needs a cgroup of its own.
func (l AppLimits) Cgrouped() bool {
	return l.MemoryMax > 0 || l.PidsMax > 0 || l.CPUWeight > 0
}

// limitKeys are the keys of an app's limits: mapping, for the schema.
var limitKeys = []string{"memory", "open_files", "processes", "cpu_time", "memory_max", "pids_max", "cpu_weight"}

// limitsSchema is the shape of an app's limits: mapping.
func limitsSchema() *schema {
	s := &schema{fields: map[string]*schema{}}
	for _, k := range limitKeys {
		s.fields[k] = &schema{}
	}
	return s
}

// appLimits builds an app's limits: from entry m of apps: (nil for the app
// of the flags, which has none).
func (l *loader) appLimits(m *yaml.Node, ip string) AppLimits {
	var out AppLimits
	n := mappingOf(m, "limits")
	if n == nil {
		return out
	}
	get := func(key string) (value, bool) {
		if _, v := field(n, key); v != nil {
			return value{text: v.Value, node: v, path: ip + ".limits." + key, set: true}, true
		}
		return value{}, false
	}
	if v, ok := get("memory"); ok {
		out.Memory = l.limitSize(v)
	}
	if v, ok := get("memory_max"); ok {
		out.MemoryMax = l.limitSize(v)
	}
	if v, ok := get("open_files"); ok {
		if out.OpenFiles = l.integer(v, 0); out.OpenFiles > 0 && out.OpenFiles < 16 {
			l.c.of(v, "open_files %d leaves a runner no room for its own sockets and pipes; want at least 16 (0 = no limit)", out.OpenFiles)
		}
	}
	if v, ok := get("processes"); ok {
		out.Processes = l.integer(v, 0)
	}
	if v, ok := get("pids_max"); ok {
		out.PidsMax = l.integer(v, 0)
	}
	if v, ok := get("cpu_time"); ok {
		out.CPUTime = l.cpuTime(v)
	}
	if v, ok := get("cpu_weight"); ok {
		if out.CPUWeight = l.integer(v, 0); out.CPUWeight > 10000 {
			l.c.of(v, "cpu_weight must be 1 to 10000 (0 = not set), got %d", out.CPUWeight)
		}
	}
	return out
}

// limitSize is a memory limit: 0 is none, anything below 16MiB no
// interpreter starts in, so it is a typo (a missing unit) rather than a
// limit.
func (l *loader) limitSize(v value) Size {
	s := l.size(v, 0)
	if s > 0 && s < 16<<20 {
		l.c.of(v, "%s is below 16MiB, too small for a runner to start; write a unit (512MiB) or 0 for no limit", v.text)
	}
	return s
}

// cpuTime reads cpu_time: whole seconds ("30") or a duration ("2m").
func (l *loader) cpuTime(v value) time.Duration {
	var d time.Duration
	var n int
	if _, err := fmt.Sscanf(v.text, "%d", &n); err == nil && fmt.Sprint(n) == v.text {
		d = time.Duration(n) * time.Second
	} else if d, err = parseDuration(v.text); err != nil {
		l.c.of(v, "cpu_time: want whole seconds (30) or a duration (2m), got %q", v.text)
		return 0
	}
	if d < 0 || d%time.Second != 0 {
		l.c.of(v, "cpu_time must be whole seconds, at least 0, got %s", v.text)
	}
	return d
}
