package pool

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// housePeriod is how often the owner checks RSS and idle runners: once a
// second, or a quarter of worker_idle if that is shorter, so a runner
// idle too long retires within a quarter of worker_idle of its time.
func (p *Pool) housePeriod() time.Duration {
	return max(min(time.Second, p.opts.WorkerIdle/4), 10*time.Millisecond)
}

// watchPeriod is how often the watchdog scans the slots (0 = never). It
// enforces the request deadline and the slowlog by scanning the slots'
// start times a few times per period, where a timer per request would sit
// on the hot path (uWSGI's harakiri is checked the same way, once a
// second). A deadline is thus met within a tenth of it (5 ms to 250 ms).
func (p *Pool) watchPeriod() time.Duration {
	period := p.opts.Timeout
	if s := p.opts.SlowAfter; s > 0 && (period <= 0 || s < period) {
		period = s
	}
	if period <= 0 {
		return 0
	}
	return min(max(period/10, 5*time.Millisecond), 250*time.Millisecond)
}

// scan is one watchdog pass over every runner's slots, a draining
// runner's too: its requests have deadlines as well.
func (p *Pool) scan() {
	now := time.Now().UnixNano()
	for m := range p.members {
		for i := range m.slots {
			if since := m.slots[i].since.Load(); since != 0 {
				p.check(m, i, time.Duration(now-since))
			}
		}
	}
}

// check logs slot i's request once it is slow and aborts it at its deadline.
func (p *Pool) check(m *member, i int, age time.Duration) {
	st := &m.slots[i]
	slow, timeout := p.opts.SlowAfter, p.opts.Timeout
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.since.Load() == 0 {
		return // ended meanwhile
	}
	if slow > 0 && age >= slow && st.slowSeq != st.seq {
		st.slowSeq = st.seq
		d, ok := m.w.(StackDumper)
		p.log.Warn("slow request", "worker", m.id, "pid", m.w.PID(), "after", slow,
			"method", st.method, "path", st.path, "stacks", ok)
		if ok {
			d.DumpStacks() // the runner writes them to its stderr: gw's log
		}
	}
	if timeout > 0 && age >= timeout && st.abortSeq != st.seq {
		st.abortSeq = st.seq
		m.w.Abort(i)
	}
}

// procRSS reads VmRSS from /proc/PID/status.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.Index(b, []byte("\nVmRSS:"))
	if i < 0 {
		return 0, fmt.Errorf("pid %d: no VmRSS", pid)
	}
	f := bytes.Fields(b[i+7:])
	if len(f) < 2 {
		return 0, fmt.Errorf("pid %d: bad VmRSS", pid)
	}
	kib, err := strconv.ParseInt(string(f[0]), 10, 64)
	return kib << 10, err
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture gw runs on.
const clockTicks = 100

// procCPU is a process's user and system CPU seconds, with its reaped
// children's, from /proc/PID/stat; 0 when it cannot be read.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces and parentheses: fields start after
	// its last ')'. utime, stime, cutime, cstime are fields 14-17.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 15 {
		return 0
	}
	var ticks int64
	for _, s := range f[11:15] {
		n, _ := strconv.ParseInt(string(s), 10, 64)
		ticks += n
	}
	return float64(ticks) / clockTicks
}
