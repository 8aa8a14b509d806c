package loadgen

import (
	"math"
	"testing"
)

// TestBuckets checks the bucket layout over the whole int64 range: every
// value lands in a bucket whose top is at least the value and at most
// 1/histSub above it, and buckets grow with values.
func TestBuckets(t *testing.T) {
	t.Parallel()
	values := []uint64{0, 1, 127, 128, 255, 256, 257, 511, 512, 1000, 1_000_000, 1_234_567_890, 1 << 40, math.MaxInt64}
	for v := uint64(300); v < 1<<62; v = v*3 + 7 {
		values = append(values, v-1, v, v+1)
	}
	last := -1
	var lastV uint64
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, histBuckets)
		}
		high := bucketHigh(i)
		if high < v || float64(high-v) > float64(v)/histSub {
			t.Fatalf("value %d in bucket %d with top %d: off by more than 1/%d", v, i, high, histSub)
		}
		if v >= lastV && i < last {
			t.Fatalf("bucketOf(%d) = %d < bucketOf(%d) = %d", v, i, lastV, last)
		}
		last, lastV = i, v
	}
	if got := bucketOf(math.MaxInt64); got != histBuckets-1 {
		t.Errorf("the largest duration is in bucket %d, want the last, %d", got, histBuckets-1)
	}
	// Every bucket's top maps back to it, and the next value to the next.
	for i := range histBuckets - 1 {
		if bucketOf(bucketHigh(i)) != i || bucketOf(bucketHigh(i)+1) != i+1 {
			t.Fatalf("bucket %d: top %d is in bucket %d, top+1 in %d", i, bucketHigh(i), bucketOf(bucketHigh(i)), bucketOf(bucketHigh(i)+1))
		}
	}
}
