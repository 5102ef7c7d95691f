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
		p.mu.Lock()
		ms := make([]*member, 0, len(p.members))
		for m := range p.members {
			if !m.gone.Load() && !m.retiring.Load() {
				ms = append(ms, m)
			}
		}
		p.mu.Unlock()
		for _, m := range ms {
			rss, err := p.opts.RSS(m.w.PID())
			if err != nil || rss <= p.opts.MaxRSS {
				continue
			}
			p.log.Warn("runner over max_rss", "worker", m.id, "pid", m.w.PID(), "rss", rss, "max_rss", p.opts.MaxRSS)
			p.retire(m, ReasonMaxRSS, false)
		}
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
