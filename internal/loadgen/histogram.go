package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout: values below 2·histSub nanoseconds have a bucket each;
// above, every power of two is cut into histSub buckets, so a bucket's
// width is at most 1/histSub (0.8 %) of the values in it.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	// histBuckets covers every positive int64: 2·histSub exact buckets,
	// then histSub buckets for each shift from 1 to 64-histSubBits-1.
	histBuckets = 2*histSub + (64-histSubBits-2)*histSub
)

// Histogram counts durations in log-linear buckets, like HdrHistogram: a
// fixed 57 KiB, no allocation when recording, and quantiles within 0.8 %
// of the exact value (exact below 256 ns). Min, max, count and sum are
// exact. The zero Histogram is not usable; use NewHistogram. A Histogram
// is not safe for concurrent use: give each goroutine its own and Merge
// them.
type Histogram struct {
	counts   []uint64
	n        uint64
	sum      time.Duration
	min, max time.Duration
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, histBuckets)}
}

// bucketOf is the index of the bucket holding v ≥ 0.
func bucketOf(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1 // v>>shift is in [histSub, 2·histSub)
	return 2*histSub + (shift-1)*histSub + int(v>>shift) - histSub
}

// bucketHigh is the largest value bucket i holds.
func bucketHigh(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	j := i - 2*histSub
	shift := j/histSub + 1
	low := uint64(j%histSub+histSub) << shift
	return low + (1 << shift) - 1
}

// Record adds one duration; a negative one counts as 0.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds every duration of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min is the smallest duration recorded, 0 if none.
func (h *Histogram) Min() time.Duration { return h.min }

// Max is the largest duration recorded, 0 if none.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the average duration, 0 if none.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the q-quantile (0 < q ≤ 1) by nearest rank: the
// smallest recorded duration d such that at least q of all durations are
// ≤ d, rounded up to the top of its bucket (never above Max). Quantile(1)
// is Max; an empty histogram gives 0.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	// The tolerance keeps float error (0.9·10 = 9.000000000000002) from
	// moving the rank up by one.
	rank := uint64(math.Ceil(q*float64(h.n) - 1e-9))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(bucketHigh(i))
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
