package pool

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// monitor checks every runner's RSS once a second and recycles the ones
// over MaxRSS. gw reads /proc itself, so a runner wedged in a request is
// measured too (and its request deadline ends it).
func (p *Pool) monitor() {
	defer p.wg.Done()
	if p.opts.MaxRSS <= 0 {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		for _, m := range p.appendMembers(nil, false) {
			if m.retiring.Load() {
				continue
			}
			rss, err := p.opts.RSS(m.w.PID())
			if err != nil || rss <= p.opts.MaxRSS {
				continue
			}
			p.log.Warn("runner over max_rss", "worker", m.id, "pid", m.w.PID(), "rss", rss, "max_rss", p.opts.MaxRSS)
			p.retire(m, ReasonMaxRSS, false)
		}
	}
}

// watchdog enforces the request deadline and the slowlog by scanning the
// slots' start times a few times per period, where a timer per request
// would sit on the hot path (uWSGI's harakiri is checked the same way, once
// a second). A deadline is thus met within a tenth of it (5 ms to 250 ms).
func (p *Pool) watchdog() {
	defer p.wg.Done()
	period := p.opts.Timeout
	if s := p.opts.SlowAfter; s > 0 && (period <= 0 || s < period) {
		period = s
	}
	if period <= 0 {
		return
	}
	tick := time.NewTicker(min(max(period/10, 5*time.Millisecond), 250*time.Millisecond))
	defer tick.Stop()
	var ms []*member
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		ms = p.appendMembers(ms[:0], true) // a draining runner's requests have deadlines too
		now := time.Now().UnixNano()
		for _, m := range ms {
			for i := range m.slots {
				if since := m.slots[i].since.Load(); since != 0 {
					p.check(m, i, time.Duration(now-since))
				}
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

// appendMembers appends the runners not yet exited to ms: all of them, or
// only those still taking requests.
func (p *Pool) appendMembers(ms []*member, all bool) []*member {
	p.mu.Lock()
	defer p.mu.Unlock()
	for m := range p.members {
		if all || !m.gone.Load() {
			ms = append(ms, m)
		}
	}
	return ms
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
