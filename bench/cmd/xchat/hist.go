package main

import (
	"math/bits"
	"time"
)

// hist is a latency histogram in microseconds with 32 buckets per power of
// two (about 3 % resolution) from 0 to about 2^40 µs. It is not safe for
// concurrent use: each connection's read loop owns one, merged at the end.
type hist struct {
	counts [histBuckets]int64
	n      int64
}

const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	histBuckets = 36 * histSub
)

// histIndex is the bucket of v microseconds.
func histIndex(v int64) int {
	if v < 0 {
		v = 0
	}
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - (histSubBits + 1)
	i := (shift+1)*histSub + int(v>>shift) - histSub
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// histLow is the smallest value of bucket i in microseconds.
func histLow(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	shift := i/histSub - 1
	return int64(i%histSub+histSub) << shift
}

// record adds one latency.
func (h *hist) record(d time.Duration) {
	h.counts[histIndex(d.Microseconds())]++
	h.n++
}

// merge adds o's counts to h.
func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the latency below which a fraction q of the recorded
// values lie (the middle of the bucket that holds it), 0 when empty.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n-1)) + 1
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo := histLow(i)
			hi := lo + 1
			if i+1 < histBuckets {
				hi = histLow(i + 1)
			}
			return time.Duration((lo+hi)/2) * time.Microsecond
		}
	}
	return time.Duration(histLow(histBuckets-1)) * time.Microsecond
}
