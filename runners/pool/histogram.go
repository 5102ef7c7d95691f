package pool

import (
	"sync/atomic"
	"time"
)

// Bounds are the upper bounds of Histogram's buckets, in seconds: 0.5 ms to
// 60 s, roughly ×2.5 apart (Prometheus' default buckets stretched to both
// sides). The last bucket counts everything above.
var Bounds = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Histogram counts durations into fixed buckets with atomic adds only, so
// recording on the request path costs a few nanoseconds and no lock.
type Histogram struct {
	counts [17]atomic.Uint64 // len(Bounds)+1
	sum    atomic.Int64      // nanoseconds
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(Bounds) && s > Bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Snapshot is a histogram's state at one moment.
type Snapshot struct {
	Counts []uint64 // per bucket, not cumulative; len(Bounds)+1
	Count  uint64
	Sum    time.Duration
}

// Snapshot copies the counts.
func (h *Histogram) Snapshot() Snapshot {
	s := Snapshot{Counts: make([]uint64, len(h.counts)), Sum: time.Duration(h.sum.Load())}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	return s
}

// Quantile estimates the q-quantile (0..1) by linear interpolation inside
// its bucket; 0 when empty.
func (s Snapshot) Quantile(q float64) time.Duration {
	if s.Count == 0 {
		return 0
	}
	rank := q * float64(s.Count)
	var seen float64
	for i, c := range s.Counts {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			lo := 0.0
			if i > 0 {
				lo = Bounds[i-1]
			}
			hi := lo * 2
			if i < len(Bounds) {
				hi = Bounds[i]
			}
			frac := (rank - seen) / float64(c)
			return time.Duration((lo + frac*(hi-lo)) * float64(time.Second))
		}
		seen += float64(c)
	}
	return time.Duration(Bounds[len(Bounds)-1] * float64(time.Second))
}
